package cli

import (
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

// The commands reach the agent with Consul's api client; what is beacon's
// own is where they find it (flags, then BEACON_* variables, then Consul's
// CONSUL_*), the timeouts, and the wording of the errors people meet first.

// HTTPAddrEnv names the environment variable that sets the default of
// -http-addr (Consul's CONSUL_HTTP_ADDR is read when it is unset).
const (
	HTTPAddrEnv     = "BEACON_HTTP_ADDR"
	defaultHTTPAddr = "127.0.0.1:8500"
)

// envOf is the value of beacon's variable BEACON_<suffix>, else Consul's
// CONSUL_<suffix>.
func envOf(e *env, suffix string) string {
	if v := e.getenv("BEACON_" + suffix); v != "" {
		return v
	}
	return e.getenv("CONSUL_" + suffix)
}

// connectionFlags are Consul's flags for the token and TLS, besides
// -http-addr. Each defaults to BEACON_<env>, else CONSUL_<env>, read when
// the command runs (so that -h never shows a token).
var connectionFlags = []struct {
	name, env, usage string
	field            func(*api.Config) *string
}{
	{"token", "HTTP_TOKEN", "ACL token to send with the requests (default: BEACON_HTTP_TOKEN or CONSUL_HTTP_TOKEN).",
		func(c *api.Config) *string { return &c.Token }},
	{"token-file", "HTTP_TOKEN_FILE", "File holding the ACL token, which wins over -token " +
		"(default: BEACON_HTTP_TOKEN_FILE or CONSUL_HTTP_TOKEN_FILE).", func(c *api.Config) *string { return &c.TokenFile }},
	{"ca-file", "CACERT", "CA certificate to verify the agent's HTTPS certificate with (default: BEACON_CACERT or CONSUL_CACERT).",
		func(c *api.Config) *string { return &c.TLSConfig.CAFile }},
	{"ca-path", "CAPATH", "Directory of CA certificates (default: BEACON_CAPATH or CONSUL_CAPATH).",
		func(c *api.Config) *string { return &c.TLSConfig.CAPath }},
	{"client-cert", "CLIENT_CERT", "Client certificate for an agent that verifies incoming connections " +
		"(default: BEACON_CLIENT_CERT or CONSUL_CLIENT_CERT).", func(c *api.Config) *string { return &c.TLSConfig.CertFile }},
	{"client-key", "CLIENT_KEY", "Key of -client-cert (default: BEACON_CLIENT_KEY or CONSUL_CLIENT_KEY).",
		func(c *api.Config) *string { return &c.TLSConfig.KeyFile }},
	{"tls-server-name", "TLS_SERVER_NAME", "Server name to verify the agent's certificate against " +
		"(default: BEACON_TLS_SERVER_NAME or CONSUL_TLS_SERVER_NAME).", func(c *api.Config) *string { return &c.TLSConfig.Address }},
}

// addConnectionFlags declares -http-addr and the connection flags.
func addConnectionFlags(e *env, fs *flag.FlagSet) {
	addr := envOf(e, "HTTP_ADDR")
	if addr == "" {
		addr = defaultHTTPAddr
	}
	fs.String("http-addr", addr, "Address of the agent's HTTP API, host:port or http(s)://host:port; "+
		"the default is "+HTTPAddrEnv+" (else CONSUL_HTTP_ADDR) if set")
	for _, f := range connectionFlags {
		fs.String(f.name, "", f.usage)
	}
}

// timeouts of the HTTP client.
type timeouts struct {
	// dial bounds connecting to the agent.
	dial time.Duration
	// request bounds a whole exchange that is neither a blocking query
	// nor a snapshot transfer.
	request time.Duration
	// idle bounds how long a snapshot transfer's connection may carry no
	// byte either way: a large state takes as long as it takes, but a
	// stalled transfer fails.
	idle time.Duration
	// maxWait is the longest the agent holds a blocking query (the
	// contract's limit, and its default wait): a blocking query may take
	// its wait (at most that), a 16th of it as jitter, and the request
	// timeout.
	maxWait time.Duration
}

var defaultTimeouts = timeouts{dial: 5 * time.Second, request: 30 * time.Second, idle: 5 * time.Minute,
	maxWait: 10 * time.Minute}

// client is Consul's api client of one agent, with its transport.
type client struct {
	*api.Client
	transport *http.Transport
}

// close lets go of the client's idle connections and the transport's
// goroutines that watch them: long-running commands, and tests that run
// many commands in one process, end with it.
func (c *client) close() { c.transport.CloseIdleConnections() }

// clientOptions are what a command needs of its client besides the
// flags.
type clientOptions struct {
	// stream (snapshot transfers) lifts the bound on a whole exchange;
	// a connection still fails after the idle timeout without traffic.
	stream bool
	// abort, when set, ends the blocking reads in flight once it is done
	// (api.Lock and api.Semaphore look at their stop channel only between
	// reads, which block for up to 15s).
	abort context.Context
}

// newClient returns a client of the agent the leaf's flags name, in the
// leaf's -datacenter when it has one.
func newClient(e *env, fs *flag.FlagSet, opts clientOptions) (*client, error) {
	scheme := "http"
	if ssl, _ := strconv.ParseBool(envOf(e, "HTTP_SSL")); ssl {
		scheme = "https"
	}
	base, err := parseHTTPAddr(flagString(fs, "http-addr"), scheme)
	if err != nil {
		return nil, err
	}
	cfg := &api.Config{Address: base.Host, Scheme: base.Scheme}
	if fs.Lookup("datacenter") != nil {
		cfg.Datacenter = flagString(fs, "datacenter")
	}
	for _, f := range connectionFlags {
		v := flagString(fs, f.name)
		if v == "" {
			v = envOf(e, f.env)
		}
		*f.field(cfg) = v
	}
	if flagString(fs, "token") != "" && flagString(fs, "token-file") == "" {
		cfg.TokenFile = "" // -token wins over the environment's token file
	}
	if verify, err := strconv.ParseBool(envOf(e, "HTTP_SSL_VERIFY")); err == nil && !verify {
		cfg.TLSConfig.InsecureSkipVerify = true
	}
	tlsConf, err := api.SetupTLSConfig(&cfg.TLSConfig)
	if err != nil {
		return nil, fmt.Errorf("setting up TLS: %w", err)
	}
	t := e.timeouts
	dialer := &net.Dialer{Timeout: t.dial, KeepAlive: 30 * time.Second}
	transport := &http.Transport{Proxy: http.ProxyFromEnvironment, DialContext: dialer.DialContext,
		TLSHandshakeTimeout: t.dial, TLSClientConfig: tlsConf, MaxIdleConns: 2, IdleConnTimeout: 30 * time.Second}
	if opts.stream {
		transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return idleConn{Conn: conn, idle: t.idle}, nil
		}
	}
	cfg.Transport = transport
	cfg.HttpClient = &http.Client{Transport: &agentTransport{base: transport, host: base.Host, timeouts: t,
		clientOptions: opts}}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("setting up the client: %w", err)
	}
	return &client{Client: c, transport: transport}, nil
}

// parseHTTPAddr takes host:port, which gets scheme, or an http(s) URL.
func parseHTTPAddr(addr, scheme string) (*url.URL, error) {
	raw := addr
	if !strings.Contains(raw, "://") {
		raw = scheme + "://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("invalid -http-addr %q: %v", addr, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("invalid -http-addr %q: the scheme must be http or https", addr)
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("invalid -http-addr %q: want host:port or http(s)://host:port", addr)
	}
	return u, nil
}

// agentTransport bounds each exchange with the agent and words the errors
// people meet first.
type agentTransport struct {
	base     http.RoundTripper
	host     string
	timeouts timeouts
	clientOptions
}

// bound is how long an exchange may take: a blocking query (one with
// ?index=) its wait, a 16th of that and the request timeout; a snapshot
// transfer no time at all (0: its connection's idle timeout catches a
// stall); anything else the request timeout.
func (a *agentTransport) bound(r *http.Request) time.Duration {
	q := r.URL.Query()
	switch {
	case a.stream:
		return 0
	case q.Get("index") == "":
		return a.timeouts.request
	}
	wait, err := time.ParseDuration(q.Get("wait"))
	if err != nil || wait <= 0 || wait > a.timeouts.maxWait {
		wait = a.timeouts.maxWait
	}
	return max(wait+wait/16+a.timeouts.request, a.timeouts.request)
}

func (a *agentTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(r.Context())
	if bound := a.bound(r); bound > 0 {
		ctx, cancel = withTimeout(ctx, cancel, bound)
	}
	if a.abort != nil && r.URL.Query().Get("index") != "" {
		stopAbort, cancelRequest := context.AfterFunc(a.abort, cancel), cancel
		cancel = func() { stopAbort(); cancelRequest() }
	}
	if body, ok := r.Body.(sizedBody); ok {
		r = r.Clone(r.Context())
		r.ContentLength = body.size
	}
	resp, err := a.base.RoundTrip(r.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, a.explain(err)
	}
	resp.Body = &agentBody{ReadCloser: resp.Body, done: cancel, explain: a.explain}
	return resp, nil
}

// withTimeout bounds ctx, whose cancel is given, and returns the cancel of
// both.
func withTimeout(ctx context.Context, cancel context.CancelFunc, d time.Duration) (context.Context, context.CancelFunc) {
	bounded, cancelBound := context.WithTimeout(ctx, d)
	return bounded, func() { cancelBound(); cancel() }
}

// explain adds a hint to the errors people meet first.
func (a *agentTransport) explain(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w (is an agent's HTTP API listening on %s? Set -http-addr or %s)", err, a.host, HTTPAddrEnv)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w (the agent at %s did not answer in time)", err, a.host)
	}
	return err
}

// agentBody is an answer's body: its read errors explained, its exchange's
// bound released once it is closed.
type agentBody struct {
	io.ReadCloser
	done    context.CancelFunc
	explain func(error) error
}

func (b *agentBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = b.explain(err)
	}
	return n, err
}

func (b *agentBody) Close() error {
	defer b.done()
	return b.ReadCloser.Close()
}

// sizedBody is a request body of known size, sent with a Content-Length
// (net/http would send a file chunked), so that the agent can refuse an
// upload that is too large before it is sent.
type sizedBody struct {
	io.ReadCloser
	size int64
}

// idleConn fails a read or a write once the connection has carried
// nothing either way for idle: each read or write moves both deadlines, so
// a long upload keeps the response read (which the transport starts at
// once) alive.
type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c idleConn) Read(p []byte) (int, error) {
	c.Conn.SetDeadline(time.Now().Add(c.idle))
	return c.Conn.Read(p)
}

func (c idleConn) Write(p []byte) (int, error) {
	c.Conn.SetDeadline(time.Now().Add(c.idle))
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
