package healthcheck

import (
	"fmt"
	"sync"

	"github.com/beacon-dns/beacon/state"
)

// statusHandler decides which results of an interval check are reported,
// as Consul's StatusHandler does: a passing or warning result counts as a
// success and a critical one as a failure; a success is reported only once
// SuccessBeforePassing of them came in a row, a failure only once
// FailuresBeforeCritical did. Until then the check keeps its last reported
// status and output.
type statusHandler struct {
	successBeforePassing   int
	failuresBeforeCritical int
	successes              int
	failures               int
}

func newStatusHandler(successBeforePassing, failuresBeforeCritical int) *statusHandler {
	// Consul starts the counters at the thresholds, so that the first result
	// is reported at once whatever it is.
	return &statusHandler{
		successBeforePassing:   successBeforePassing,
		failuresBeforeCritical: failuresBeforeCritical,
		successes:              successBeforePassing,
		failures:               failuresBeforeCritical,
	}
}

// count records a result and reports whether it is to be reported.
func (h *statusHandler) count(status string) bool {
	if status == state.HealthPassing || status == state.HealthWarning {
		h.successes++
		h.failures = 0
		return h.successes >= h.successBeforePassing
	}
	h.failures++
	h.successes = 0
	return h.failures >= h.failuresBeforeCritical
}

// tailBuffer keeps the last max bytes written to it and counts them all, as
// Consul's circular output buffer does: of a long output the end (where
// errors are) is what matters.
type tailBuffer struct {
	mu    sync.Mutex
	max   int
	data  []byte
	total int64
}

func newTailBuffer(max int) *tailBuffer {
	return &tailBuffer{max: max}
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total += int64(len(p))
	if len(p) >= b.max {
		b.data = append(b.data[:0], p[len(p)-b.max:]...)
		return len(p), nil
	}
	b.data = append(b.data, p...)
	if over := len(b.data) - b.max; over > 0 {
		b.data = b.data[:copy(b.data, b.data[over:])]
	}
	return len(p), nil
}

// String is the kept tail (an HTTP check's body output).
func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.data)
}

// captured is the kept tail, saying how much was dropped if anything was (a
// script check's output).
func (b *tailBuffer) captured() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.total > int64(len(b.data)) {
		return fmt.Sprintf("Captured %d of %d bytes\n...\n%s", len(b.data), b.total, b.data)
	}
	return string(b.data)
}

// truncateTTLOutput bounds the output a TTL update sets, keeping its start as
// Consul's CheckTTL does.
func truncateTTLOutput(output string) string {
	if len(output) <= outputMaxSize {
		return output
	}
	return fmt.Sprintf("%s ... (captured %d of %d bytes)", output[:outputMaxSize], outputMaxSize, len(output))
}

// ttlExpiredOutput is a TTL check's output once it expired (Consul's text).
func ttlExpiredOutput(lastOutput string) string {
	const prefix = "TTL expired"
	if lastOutput == "" {
		return prefix
	}
	return prefix + " (last output before timeout follows): " + lastOutput
}
