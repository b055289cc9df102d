package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// client talks to one agent's HTTP API.
type client struct {
	base *url.URL
	http *http.Client
	// request bounds a whole exchange; 0 for none (snapshot transfers).
	request time.Duration
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
	c := &client{base: base, http: &http.Client{Transport: transport}}
	if !stream {
		c.request = t.request
	}
	return c, nil
}

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
// alive, and a stalled agent is noticed.
type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c *idleConn) Read(p []byte) (int, error) {
	c.Conn.SetDeadline(time.Now().Add(c.idle))
	return c.Conn.Read(p)
}

func (c *idleConn) Write(p []byte) (int, error) {
	c.Conn.SetDeadline(time.Now().Add(c.idle))
	return c.Conn.Write(p)
}

// request is one API call.
type request struct {
	method, path string
	query        url.Values
	body         io.Reader
	// length is the body's size, sent as Content-Length; -1 for unknown.
	length      int64
	contentType string
}

// do sends req and returns the response if it is a 200; any other status is
// an error carrying the agent's message. The caller closes the body; cancel
// (always non-nil) ends the request's deadline and must be called once the
// body is read.
func (c *client) do(req request) (*http.Response, context.CancelFunc, error) {
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if c.request > 0 {
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
	if resp.StatusCode != http.StatusOK {
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
