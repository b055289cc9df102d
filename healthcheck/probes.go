package healthcheck

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// A probe runs an interval check once and returns its result. When ctx is
// cancelled (the check is removed) it returns promptly; its result is then
// ignored.
type probe func(ctx context.Context) (status, output string)

func newProbe(s spec, logger hclog.Logger) probe {
	switch s.typ {
	case TypeHTTP:
		return newHTTPProbe(s, logger)
	case TypeTCP:
		return newTCPProbe(s, logger)
	case TypeGRPC:
		return newGRPCProbe(s)
	case TypeScript:
		return newScriptProbe(s, logger)
	}
	panic("healthcheck: no probe for check type " + s.typ) // parseDefinition admits no other
}

// userAgent is Consul's, kept so that targets that single out health check
// requests (in logs, or to skip authentication) treat ours the same.
const userAgent = "Consul Health Check"

func newHTTPProbe(s spec, logger hclog.Logger) probe {
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
		// Consul disables keep-alives so that a check never fails on a
		// connection the target closed while it sat idle between runs.
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: s.def.TLSSkipVerify},
	}
	// Redirects are followed with Go's default policy, as Consul does unless
	// a check sets DisableRedirects (which beacon's definitions do not have).
	client := &http.Client{Timeout: s.timeout, Transport: transport}
	method := httpMethod(s.def)
	url := s.def.HTTP

	return func(ctx context.Context) (string, string) {
		req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(s.def.Body))
		if err != nil {
			return state.HealthCritical, err.Error()
		}
		// A copy: each run's defaults must not leak into the definition.
		req.Header = http.Header(s.def.Header).Clone()
		if req.Header == nil {
			req.Header = make(http.Header)
		}
		if host := req.Header.Get("Host"); host != "" {
			req.Host = host
		}
		if req.Header.Get("User-Agent") == "" {
			req.Header.Set("User-Agent", userAgent)
		}
		if req.Header.Get("Accept") == "" {
			req.Header.Set("Accept", "text/plain, text/*, */*")
		}

		resp, err := client.Do(req)
		if err != nil {
			return state.HealthCritical, err.Error()
		}
		defer resp.Body.Close()
		body := newTailBuffer(outputMaxSize)
		if _, err := io.Copy(body, resp.Body); err != nil {
			logger.Warn("Check error while reading body", "error", err)
		}

		output := fmt.Sprintf("HTTP %s %s: %s Output: %s", method, url, resp.Status, body.String())
		switch {
		case resp.StatusCode >= 200 && resp.StatusCode <= 299:
			return state.HealthPassing, output
		case resp.StatusCode == http.StatusTooManyRequests:
			// The target is up but shedding load: warning, as in Consul.
			return state.HealthWarning, output
		default:
			return state.HealthCritical, output
		}
	}
}

func newTCPProbe(s spec, logger hclog.Logger) probe {
	dialer := &net.Dialer{Timeout: s.timeout}
	addr := s.def.TCP
	return func(ctx context.Context) (string, string) {
		conn, err := dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			logger.Warn("Check socket connection failed", "error", err)
			return state.HealthCritical, err.Error()
		}
		conn.Close()
		return state.HealthPassing, fmt.Sprintf("TCP connect %s: Success", addr)
	}
}

// newGRPCProbe asks the gRPC health checking protocol's Check of
// "host:port" (the whole server) or "host:port/service".
func newGRPCProbe(s spec) probe {
	server, service, _ := strings.Cut(s.def.GRPC, "/")
	creds := insecure.NewCredentials()
	if s.def.GRPCUseTLS {
		creds = credentials.NewTLS(&tls.Config{InsecureSkipVerify: s.def.TLSSkipVerify})
	}
	target := s.def.GRPC
	return func(ctx context.Context) (string, string) {
		ctx, cancel := context.WithTimeout(ctx, s.timeout)
		defer cancel()
		// passthrough: the address goes to the dialer as it is, as with the
		// grpc.Dial Consul uses (grpc.NewClient would resolve it via DNS).
		conn, err := grpc.NewClient("passthrough:///"+server, grpc.WithTransportCredentials(creds))
		if err != nil {
			return state.HealthCritical, err.Error()
		}
		defer conn.Close()
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			return state.HealthCritical, err.Error()
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return state.HealthCritical, fmt.Sprintf("gRPC %s serving status: %s", target, resp.GetStatus())
		}
		return state.HealthPassing, fmt.Sprintf("gRPC check %s: success", target)
	}
}
