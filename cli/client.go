package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// client talks to one agent's HTTP API.
type client struct {
	base *url.URL
	http *http.Client
	// request bounds a whole exchange; 0 for none (snapshot transfers).
	request time.Duration
	// margin is what a blocking query may take beyond the agent's wait
	// and its jitter: the time to answer any request.
	margin time.Duration
	// maxWait is the longest wait the agent applies to a blocking query.
	maxWait time.Duration
}

// maxErrorBody is how much of an error response is read for its message.
const maxErrorBody = 64 << 10

// newClient returns a client for the agent that -http-addr names. Streaming
// commands (snapshots) pass stream, which lifts the bound on the whole
// exchange; every connection still fails after the idle timeout without
// traffic.
func newClient(e *env, fs *flag.FlagSet, stream bool) (*client, error) {
	base, err := parseHTTPAddr(fs.Lookup("http-addr").Value.String())
	if err != nil {
		return nil, err
	}
	t := e.timeouts
	dialer := &net.Dialer{Timeout: t.dial, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &idleConn{Conn: conn, idle: t.idle}, nil
		},
		TLSHandshakeTimeout: t.dial,
		MaxIdleConns:        2,
		IdleConnTimeout:     30 * time.Second,
	}
	c := &client{base: base, http: &http.Client{Transport: transport}, margin: t.request, maxWait: t.maxWait}
	if !stream {
		c.request = t.request
	}
	if c.maxWait <= 0 {
		c.maxWait = defaultTimeouts.maxWait
	}
	return c, nil
}

// close lets go of the client's idle connections (and the transport's
// goroutines that watch them): commands that run for long, or in tests
// many times in one process, end with it.
func (c *client) close() { c.http.CloseIdleConnections() }

// parseHTTPAddr takes host:port or an http(s) URL.
func parseHTTPAddr(addr string) (*url.URL, error) {
	raw := addr
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
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
	u.Path = ""
	return u, nil
}

// idleConn fails a read or write once the connection has carried nothing
// either way for idle: each read or write moves both deadlines, so a long
// upload keeps the response read (which the transport starts at once)
// alive, and a stalled agent is noticed. While a blocking query is out on
// the connection (an HTTP/1 connection carries one request at a time) the
// bound is the query's own, since the agent rightly sends nothing until
// the data changes or its wait passes.
type idleConn struct {
	net.Conn
	idle time.Duration
	hold atomic.Pointer[holdToken]
}

// holdToken is one blocking query's claim on a connection's idle bound.
type holdToken struct{ bound time.Duration }

func (c *idleConn) deadline() time.Time {
	d := c.idle
	if h := c.hold.Load(); h != nil && h.bound > d {
		d = h.bound
	}
	return time.Now().Add(d)
}

func (c *idleConn) Read(p []byte) (int, error) {
	c.Conn.SetDeadline(c.deadline())
	return c.Conn.Read(p)
}

func (c *idleConn) Write(p []byte) (int, error) {
	c.Conn.SetDeadline(c.deadline())
	return c.Conn.Write(p)
}

// claim gives the connection tok's bound until release(tok); it moves the
// deadline of a read already pending too (the transport's read loop).
func (c *idleConn) claim(tok *holdToken) {
	c.hold.Store(tok)
	c.Conn.SetDeadline(c.deadline())
}

// release gives up tok's claim unless another query has claimed the
// connection since.
func (c *idleConn) release(tok *holdToken) { c.hold.CompareAndSwap(tok, nil) }

// asIdleConn finds the idleConn under a connection the transport got.
func asIdleConn(conn net.Conn) *idleConn {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	ic, _ := conn.(*idleConn)
	return ic
}

// request is one API call.
type request struct {
	method, path string
	query        url.Values
	body         io.Reader
	// length is the body's size, sent as Content-Length; -1 for unknown.
	length      int64
	contentType string
	// ctx, when set, cancels the call (a lock given up, a watch stopped).
	ctx context.Context
	// blocking marks a blocking query (?index= set): the agent holds it
	// until the data changes or its wait passes, which is wait when set,
	// else the agent's default, at most maxWait; plus up to a 16th of that
	// as jitter. Neither the request timeout nor the idle timeout applies;
	// the bound is that time plus the margin.
	blocking bool
	wait     time.Duration
	// allow404 makes a 404 an answer rather than an error (a KV read of a
	// key that does not exist).
	allow404 bool
}

// blockingBound is how long a blocking query with the given wait may
// legitimately take.
func (c *client) blockingBound(wait time.Duration) time.Duration {
	if wait <= 0 || wait > c.maxWait {
		wait = c.maxWait
	}
	return wait + wait/16 + c.margin
}

// do sends req and returns the response if it is a 200 (or a 404 with
// allow404); any other status is an error carrying the agent's message.
// The caller closes the body; cancel (always non-nil) ends the request's
// deadline and must be called once the body is read.
func (c *client) do(req request) (*http.Response, context.CancelFunc, error) {
	ctx := req.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	cancel := context.CancelFunc(func() {})
	switch {
	case req.blocking:
		bound := c.blockingBound(req.wait)
		var stop context.CancelFunc
		ctx, stop = context.WithTimeout(ctx, bound)
		tok := &holdToken{bound: bound}
		var held atomic.Pointer[idleConn]
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
			if ic := asIdleConn(info.Conn); ic != nil {
				ic.claim(tok)
				held.Store(ic)
			}
		}})
		cancel = func() {
			if ic := held.Load(); ic != nil {
				ic.release(tok)
			}
			stop()
		}
	case c.request > 0:
		ctx, cancel = context.WithTimeout(ctx, c.request)
	}
	u := *c.base
	u.Path = req.path
	u.RawQuery = req.query.Encode()
	hr, err := http.NewRequestWithContext(ctx, req.method, u.String(), req.body)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	if req.body != nil {
		hr.ContentLength = req.length
	}
	if req.contentType != "" {
		hr.Header.Set("Content-Type", req.contentType)
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		cancel()
		return nil, nil, explain(err, c.base)
	}
	if resp.StatusCode != http.StatusOK && !(req.allow404 && resp.StatusCode == http.StatusNotFound) {
		defer resp.Body.Close()
		defer cancel()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, nil, statusError{code: resp.StatusCode, msg: strings.TrimSpace(string(msg))}
	}
	return resp, cancel, nil
}

// statusError is an answer other than 200, worded as Consul's client words it.
type statusError struct {
	code int
	msg  string
}

func (e statusError) Error() string {
	return fmt.Sprintf("Unexpected response code: %d (%s)", e.code, e.msg)
}

// explain adds a hint to the errors people meet first.
func explain(err error, base *url.URL) error {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w (is an agent's HTTP API listening on %s? Set -http-addr or %s)", err, base.Host, HTTPAddrEnv)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w (the agent at %s did not answer in time)", err, base.Host)
	}
	return err
}

// getJSON decodes the response to a GET of path (with query, which may be
// nil) into out.
func (c *client) getJSON(path string, query url.Values, out any) error {
	resp, cancel, err := c.do(request{method: http.MethodGet, path: path, query: query})
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decoding the agent's answer to %s: %w", path, err)
	}
	return nil
}

// send makes a call whose answer is only its status: a 200 is success,
// anything else an error with the agent's message. in, unless nil, goes as
// the JSON body (the keyring's {"Key": ...}).
func (c *client) send(method, path string, query url.Values, in any) error {
	req := request{method: method, path: path, query: query}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		req.body, req.length, req.contentType = bytes.NewReader(b), int64(len(b)), "application/json"
	}
	resp, cancel, err := c.do(req)
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.Body.Close()
	// The call succeeded with the 200; the body is read only so the
	// connection can carry the next call (join takes several).
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	return nil
}

// queryMeta is what a read's answer says besides its data.
type queryMeta struct {
	// index is X-Consul-Index: the index to block on next.
	index uint64
	// found is false for a 404 to a request with allow404.
	found bool
}

// readOpts are a read's blocking and consistency options, sent as Consul's
// client sends them.
type readOpts struct {
	ctx context.Context
	// index > 0 makes the read a blocking query on it.
	index uint64
	// wait is sent as ?wait= when set (with or without an index, as
	// Consul's client does).
	wait time.Duration
	// stale and consistent select the consistency mode; dc the
	// datacenter.
	stale, consistent bool
	dc                string
	// allow404 makes a 404 an answer: found is false.
	allow404 bool
}

// formatWait writes a wait as Consul's client does: whole milliseconds, at
// least 1.
func formatWait(d time.Duration) string {
	ms := d / time.Millisecond
	if d > 0 && ms == 0 {
		ms = 1
	}
	return strconv.FormatInt(int64(ms), 10) + "ms"
}

// query GETs path with q (which it may add to) and the options, and decodes
// a found answer's JSON into out.
func (c *client) query(path string, q url.Values, o readOpts, out any) (queryMeta, error) {
	if q == nil {
		q = url.Values{}
	}
	if o.dc != "" {
		q.Set("dc", o.dc)
	}
	if o.stale {
		q.Set("stale", "")
	}
	if o.consistent {
		q.Set("consistent", "")
	}
	if o.index > 0 {
		q.Set("index", strconv.FormatUint(o.index, 10))
	}
	if o.wait > 0 {
		q.Set("wait", formatWait(o.wait))
	}
	resp, cancel, err := c.do(request{method: http.MethodGet, path: path, query: q, ctx: o.ctx,
		blocking: o.index > 0, wait: o.wait, allow404: o.allow404})
	if err != nil {
		return queryMeta{}, err
	}
	defer cancel()
	defer resp.Body.Close()
	var meta queryMeta
	if s := resp.Header.Get("X-Consul-Index"); s != "" {
		if meta.index, err = strconv.ParseUint(s, 10, 64); err != nil {
			return queryMeta{}, consulErrorf("Failed to parse X-Consul-Index: %v", err)
		}
	}
	if resp.StatusCode == http.StatusNotFound {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return meta, nil
	}
	meta.found = true
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return queryMeta{}, fmt.Errorf("decoding the agent's answer to %s: %w", path, err)
	}
	return meta, nil
}

// maxWriteAnswer bounds the answer to a write (true, false, a session ID).
const maxWriteAnswer = 1 << 20

// write makes a call that changes something and returns its answer's body:
// a KV write's "true" or "false", a session's ID. body is sent as it is
// with contentType; in, when body is nil and in is not, as JSON.
func (c *client) write(ctx context.Context, method, path string, q url.Values, body []byte, contentType string, in any) ([]byte, error) {
	req := request{method: method, path: path, query: q, ctx: ctx}
	if body == nil && in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body, contentType = b, "application/json"
	}
	if body != nil {
		req.body, req.length, req.contentType = bytes.NewReader(body), int64(len(body)), contentType
	}
	resp, cancel, err := c.do(req)
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxWriteAnswer))
	if err != nil {
		return nil, consulErrorf("Failed to read response: %v", err)
	}
	return answer, nil
}

// writeBool is a write whose answer is true or false (KV writes with cas,
// acquire or release; deletes), read as Consul's client reads it.
func (c *client) writeBool(ctx context.Context, method, path string, q url.Values, body []byte) (bool, error) {
	var ct string
	if body != nil {
		ct = "application/octet-stream"
	}
	answer, err := c.write(ctx, method, path, q, body, ct, nil)
	if err != nil {
		return false, err
	}
	return strings.Contains(string(answer), "true"), nil
}

// retryable is Consul's api.IsRetryableError: a network error, or a 500.
func retryable(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return strings.Contains(err.Error(), "Unexpected response code: 500")
}
