package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"
)

// HTTPAddrEnv names the environment variable that sets the default of
// -http-addr (Consul's CONSUL_HTTP_ADDR is read when it is unset).
const HTTPAddrEnv, defaultHTTPAddr = "BEACON_HTTP_ADDR", "127.0.0.1:8500"

// envOf is the value of BEACON_<name>, else of Consul's CONSUL_<name>.
func envOf(e *env, name string) string {
	return cmp.Or(e.getenv("BEACON_"+name), e.getenv("CONSUL_"+name))
}

// connectionFlags are Consul's flags for the token and TLS, with their
// variables, read when the command runs (so that -h shows no token).
var connectionFlags = []struct{ flag, env, usage string }{
	{"token", "HTTP_TOKEN", "ACL token to send"},
	{"token-file", "HTTP_TOKEN_FILE", "File holding the ACL token to send, over -token"},
	{"ca-file", "CACERT", "CA certificate to verify the agent's certificate with"},
	{"client-cert", "CLIENT_CERT", "Client certificate, for an agent that verifies its clients"},
	{"client-key", "CLIENT_KEY", "Key of the client certificate"},
	{"ca-path", "CAPATH", "Directory of CA certificates to verify the agent's certificate with"},
	{"tls-server-name", "TLS_SERVER_NAME", "Name to verify the agent's certificate against, instead of -http-addr's host"},
}

// addConnectionFlags declares -http-addr and the connection flags.
func addConnectionFlags(e *env, fs *flag.FlagSet) {
	fs.String("http-addr", cmp.Or(envOf(e, "HTTP_ADDR"), defaultHTTPAddr), "Address of the agent's HTTP API, "+
		"host:port or http(s)://host:port; the default is "+HTTPAddrEnv+" (else CONSUL_HTTP_ADDR) if set")
	for _, f := range connectionFlags {
		fs.String(f.flag, "", fmt.Sprintf("%s (default: BEACON_%s, else CONSUL_%s).", f.usage, f.env, f.env))
	}
}

// timeouts of the HTTP client: dial; request, of an exchange other than a
// blocking query or a snapshot transfer; idle, how long a transfer may
// carry nothing; maxWait, the longest the agent holds a blocking query.
type timeouts struct{ dial, request, idle, maxWait time.Duration }

var defaultTimeouts = timeouts{dial: 5 * time.Second, request: 30 * time.Second, idle: 5 * time.Minute,
	maxWait: 10 * time.Minute}

// client is Consul's api client of one agent, with its transport. close
// lets go of the idle connections and of the goroutines that watch them
// (tests run many commands in one process).
type client struct {
	*api.Client
	transport *http.Transport
	agent     *agentTransport
}

func (c *client) close() { c.transport.CloseIdleConnections() }

// clientOptions: stream (snapshot transfers) lifts the bound on a whole
// exchange, leaving the idle timeout; follow (a log stream, which ends when
// the command does) lifts both; abort, when set, ends the blocking reads
// in flight once it is done (api.Lock and api.Semaphore look at their stop
// channel only between reads, which block for up to 15s).
type clientOptions struct {
	stream, follow bool
	abort          context.Context
}

// newClient returns a client of the agent the leaf's flags name, in its
// -datacenter if it has one.
func newClient(e *env, fs *flag.FlagSet, opts clientOptions) (*client, error) {
	setting := map[string]string{}
	for _, f := range connectionFlags {
		setting[f.flag] = cmp.Or(flagString(fs, f.flag), envOf(e, f.env))
	}
	if flagString(fs, "token") != "" && flagString(fs, "token-file") == "" {
		setting["token-file"] = "" // -token wins over the environment's token file
	}
	scheme := "http"
	if ssl, _ := strconv.ParseBool(envOf(e, "HTTP_SSL")); ssl {
		scheme = "https"
	}
	base, err := parseHTTPAddr(flagString(fs, "http-addr"), scheme)
	if err != nil {
		return nil, err
	}
	cfg := &api.Config{Address: base.Host, Scheme: base.Scheme, Token: setting["token"],
		TokenFile: setting["token-file"], TLSConfig: api.TLSConfig{CAFile: setting["ca-file"], CAPath: setting["ca-path"],
			CertFile: setting["client-cert"], KeyFile: setting["client-key"], Address: setting["tls-server-name"]}}
	if fs.Lookup("datacenter") != nil {
		cfg.Datacenter = flagString(fs, "datacenter")
	}
	verify, err := strconv.ParseBool(envOf(e, "HTTP_SSL_VERIFY"))
	cfg.TLSConfig.InsecureSkipVerify = err == nil && !verify
	tlsConfig, err := api.SetupTLSConfig(&cfg.TLSConfig)
	if err != nil {
		return nil, fmt.Errorf("setting up TLS: %w", err)
	}
	t := e.timeouts
	dialer := &net.Dialer{Timeout: t.dial, KeepAlive: 30 * time.Second}
	cfg.Transport = &http.Transport{Proxy: http.ProxyFromEnvironment, TLSHandshakeTimeout: t.dial,
		TLSClientConfig: tlsConfig, MaxIdleConns: 2, IdleConnTimeout: 30 * time.Second,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, addr)
			if err != nil || !opts.stream {
				return conn, err
			}
			return idleConn{Conn: conn, idle: t.idle}, nil
		}}
	agent := &agentTransport{base: cfg.Transport, host: base.Host, timeouts: t, clientOptions: opts}
	cfg.HttpClient = &http.Client{Transport: agent}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("setting up the client: %w", err)
	}
	return &client{Client: c, transport: cfg.Transport, agent: agent}, nil
}

// parseHTTPAddr takes host:port, which gets scheme, or an http(s) URL.
func parseHTTPAddr(addr, scheme string) (*url.URL, error) {
	raw := addr
	if !strings.Contains(raw, "://") {
		raw = scheme + "://" + raw
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, fmt.Errorf("invalid -http-addr %q: %v", addr, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("invalid -http-addr %q: the scheme must be http or https", addr)
	case u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "":
		return nil, fmt.Errorf("invalid -http-addr %q: want host:port or http(s)://host:port", addr)
	}
	return u, nil
}

// agentTransport bounds each exchange with the agent and words the errors
// people meet first. answered, when set, sees each answer before the api
// package does (which drops some bodies, a snapshot restore's).
type agentTransport struct {
	base     http.RoundTripper
	host     string
	timeouts timeouts
	clientOptions
	answered func(*http.Response)
}

// bound is how long an exchange may take: a blocking query (?index=) its
// wait (at most maxWait), a 16th of it (the agent's jitter) and the request
// timeout; a snapshot transfer any time (0); others the request timeout.
func (a *agentTransport) bound(r *http.Request) time.Duration {
	q := r.URL.Query()
	switch {
	case a.stream, a.follow:
		return 0
	case q.Get("index") == "":
		return a.timeouts.request
	}
	wait, err := time.ParseDuration(q.Get("wait"))
	if err != nil || wait <= 0 || wait > a.timeouts.maxWait {
		wait = a.timeouts.maxWait
	}
	return wait + wait/16 + a.timeouts.request
}

func (a *agentTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(r.Context())
	release := cancel
	if bound := a.bound(r); bound > 0 {
		var cancelBound context.CancelFunc
		ctx, cancelBound = context.WithTimeout(ctx, bound)
		release = func() { cancelBound(); cancel() }
	}
	if a.abort != nil && r.URL.Query().Get("index") != "" {
		stopAborting, releaseBound := context.AfterFunc(a.abort, cancel), release
		release = func() { stopAborting(); releaseBound() }
	}
	if body, ok := r.Body.(sizedBody); ok {
		r = r.Clone(r.Context())
		r.ContentLength = body.size
	}
	resp, err := a.base.RoundTrip(r.WithContext(ctx))
	if err != nil {
		release()
		return nil, a.explain(err)
	}
	if a.answered != nil {
		a.answered(resp)
	}
	resp.Body = &agentBody{ReadCloser: resp.Body, release: release, explain: a.explain}
	return resp, nil
}

// explain adds a hint to the errors people meet first.
func (a *agentTransport) explain(err error) error {
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w (is an agent's HTTP API listening on %s? Set -http-addr or %s)", err, a.host, HTTPAddrEnv)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Errorf("%w (the agent at %s did not answer in time)", err, a.host)
	}
	return err
}

// agentBody is an answer's body: read errors explained, the exchange's
// bound released once it is closed.
type agentBody struct {
	io.ReadCloser
	release context.CancelFunc
	explain func(error) error
}

func (b *agentBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = b.explain(err)
	}
	return n, err
}

func (b *agentBody) Close() error { defer b.release(); return b.ReadCloser.Close() }

// sizedBody is a request body sent with a Content-Length (net/http sends a
// file chunked), so that the agent can refuse one too large at once.
type sizedBody struct {
	io.ReadCloser
	size int64
}

// idleConn fails a read or a write once the connection carried nothing
// either way for idle: each moves both deadlines, so a long upload keeps
// the response read (which the transport starts at once) alive.
type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c idleConn) Read(p []byte) (int, error) {
	c.SetDeadline(time.Now().Add(c.idle))
	return c.Conn.Read(p)
}

func (c idleConn) Write(p []byte) (int, error) {
	c.SetDeadline(time.Now().Add(c.idle))
	return c.Conn.Write(p)
}

// decoded names a failure to decode the agent's answer to path as such.
func decoded(path string, err error) error {
	var syntax *json.SyntaxError
	var unmarshal *json.UnmarshalTypeError
	if errors.As(err, &syntax) || errors.As(err, &unmarshal) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("decoding the agent's answer to %s: %w", path, err)
	}
	return err
}
