// Package tlsutil owns beacon's TLS: loading an agent's certificate, key and
// CA bundle (the Corefile's `tls CERT KEY CA`), keeping the loaded material
// swappable while the agent runs (a Corefile reload or SIGHUP installs new
// files for new handshakes without dropping established connections), and
// building every *tls.Config the agent uses from it: the server port's
// incoming side (with verify_incoming, a client certificate signed by the
// CA is required), its outgoing side (verify_outgoing: the server's
// certificate is checked against the CA, and with verify_server_hostname
// it must be for server.<datacenter>.<domain>), and the HTTPS API's. The
// minimum version is TLS 1.2 everywhere.
//
// It also makes CAs and agent certificates as Consul's `tls ca create` and
// `tls cert create` do (ECDSA P-256), for the CLI and for tests.
//
// Key material is never logged or put in an error. It must not import any
// beacon package (imports_test.go holds it to that): the agent, raftstore,
// the CLI and corefile build on it.
package tlsutil
