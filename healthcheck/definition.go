package healthcheck

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/beacon-dns/beacon/state"
)

// Check kinds, as Consul's HealthCheck.Type names them.
const (
	TypeHTTP   = "http"
	TypeTCP    = "tcp"
	TypeTTL    = "ttl"
	TypeGRPC   = "grpc"
	TypeScript = "script"
)

const (
	// MinInterval is Consul's floor on check intervals: a shorter one is
	// raised to it (with a warning), so that a mistyped interval cannot turn
	// a check into a load generator, or a script check into a fork bomb.
	MinInterval = time.Second

	// defaultTimeout is Consul's timeout of HTTP, TCP and gRPC checks.
	defaultTimeout = 10 * time.Second
	// defaultScriptTimeout is Consul's timeout of script checks (its
	// CheckMonitor's), longer than the network checks' one.
	defaultScriptTimeout = 30 * time.Second

	// outputMaxSize bounds a check's output (Consul's DefaultBufSize), so
	// that a chatty target cannot bloat the catalog.
	outputMaxSize = 4 * 1024
)

// spec is a check definition parsed and with its defaults applied.
type spec struct {
	typ      string
	def      state.CheckDefinition
	interval time.Duration // zero for TTL checks
	timeout  time.Duration // zero for TTL checks
	ttl      time.Duration // TTL checks only
}

// parseDefinition checks that def is a valid definition of a check of kind
// typ, with the errors Consul gives for the same mistakes where it has them,
// and applies its defaults. It does not know whether script checks are
// enabled: Add does.
func parseDefinition(typ string, def state.CheckDefinition) (spec, error) {
	s := spec{typ: typ, def: def}
	var err error
	if s.interval, err = parseDuration("Interval", def.Interval); err != nil {
		return spec{}, err
	}
	if s.timeout, err = parseDuration("Timeout", def.Timeout); err != nil {
		return spec{}, err
	}
	if s.ttl, err = parseDuration("TTL", def.TTL); err != nil {
		return spec{}, err
	}
	if s.interval > 0 && s.ttl > 0 {
		return spec{}, errors.New("both Interval and TTL are set: a check has an interval or a TTL, not both")
	}
	if def.SuccessBeforePassing < 0 {
		return spec{}, fmt.Errorf("SuccessBeforePassing %d must not be negative", def.SuccessBeforePassing)
	}
	if def.FailuresBeforeCritical < 0 {
		return spec{}, fmt.Errorf("FailuresBeforeCritical %d must not be negative", def.FailuresBeforeCritical)
	}

	switch typ {
	case TypeTTL:
		if s.ttl <= 0 {
			return spec{}, errors.New("TTL must be > 0 for TTL checks")
		}
		s.timeout = 0
		return s, nil
	case TypeHTTP:
		err = validateHTTP(def)
	case TypeTCP:
		err = validateHostPort("TCP", def.TCP)
	case TypeGRPC:
		server, _, _ := strings.Cut(def.GRPC, "/")
		err = validateHostPort("GRPC", server)
	case TypeScript:
		if len(def.ScriptArgs) == 0 || def.ScriptArgs[0] == "" {
			err = errors.New("ScriptArgs must name the program to run")
		}
	default:
		return spec{}, fmt.Errorf("unknown check type %q (want http, tcp, ttl, grpc or script)", typ)
	}
	if err != nil {
		return spec{}, err
	}
	if s.interval <= 0 {
		return spec{}, errors.New("script, HTTP, TCP and gRPC checks need an Interval > 0")
	}
	if s.timeout == 0 {
		s.timeout = defaultTimeout
		if typ == TypeScript {
			s.timeout = defaultScriptTimeout
		}
	}
	return s, nil
}

// parseDuration parses one of the definition's Go duration strings; empty
// means unset (zero).
func parseDuration(field, value string) (time.Duration, error) {
	if value == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(value)
	if err != nil {
		return 0, fmt.Errorf("invalid %s: %w", field, err)
	}
	if d < 0 {
		return 0, fmt.Errorf("%s %q must not be negative", field, value)
	}
	return d, nil
}

func validateHTTP(def state.CheckDefinition) error {
	if def.HTTP == "" {
		return errors.New("HTTP must be the URL to check")
	}
	// Building the request checks the method and the URL as each run will.
	req, err := http.NewRequest(httpMethod(def), def.HTTP, nil)
	if err != nil {
		return fmt.Errorf("invalid HTTP check: %w", err)
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return fmt.Errorf("HTTP %q: the scheme must be http or https", def.HTTP)
	}
	if req.URL.Host == "" {
		return fmt.Errorf("HTTP %q: the URL has no host", def.HTTP)
	}
	return nil
}

func validateHostPort(field, addr string) error {
	if addr == "" {
		return fmt.Errorf("%s must be the host:port to check", field)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("invalid %s %q: %w", field, addr, err)
	}
	return nil
}

func httpMethod(def state.CheckDefinition) string {
	if def.Method == "" {
		return http.MethodGet
	}
	return def.Method
}

func validStatus(status string) bool {
	switch status {
	case state.HealthPassing, state.HealthWarning, state.HealthCritical:
		return true
	}
	return false
}
