package healthcheck

import (
	"fmt"
	"strings"
	"testing"
)

const (
	pass = "passing"
	warn = "warning"
	crit = "critical"
)

// TestStatusHandler follows Consul's StatusHandler: counters start at the
// thresholds, passing and warning count as successes, critical as failures.
func TestStatusHandler(t *testing.T) {
	tests := []struct {
		name                     string
		successBefore, failuresB int
		results                  []string
		reported                 []bool
	}{
		{"no thresholds reports everything", 0, 0,
			[]string{pass, crit, warn, crit, pass},
			[]bool{true, true, true, true, true}},
		{"first result is reported at once", 3, 3,
			[]string{crit},
			[]bool{true}},
		{"first passing result is reported at once", 3, 3,
			[]string{pass},
			[]bool{true}},
		{"failures and successes need consecutive runs", 2, 3,
			[]string{pass, crit, crit, crit, pass, warn, pass},
			[]bool{true, false, false, true, false, true, true}},
		{"a success resets the failure count", 0, 2,
			[]string{pass, crit, pass, crit, crit},
			[]bool{true, false, true, false, true}},
		{"a warning counts as a success, resetting the failure count", 0, 2,
			[]string{pass, crit, warn, crit, crit},
			[]bool{true, false, true, false, true}},
		{"a warning needs the success threshold too", 2, 0,
			[]string{crit, warn, warn, crit, pass, warn},
			[]bool{true, false, true, true, false, true}},
		{"threshold of one is as zero", 1, 1,
			[]string{pass, crit, pass},
			[]bool{true, true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newStatusHandler(tt.successBefore, tt.failuresB)
			for i, status := range tt.results {
				if got := h.count(status); got != tt.reported[i] {
					t.Fatalf("result %d (%s) of %v: reported %v, want %v", i+1, status, tt.results, got, tt.reported[i])
				}
			}
		})
	}
}

func TestTailBuffer(t *testing.T) {
	digits := strings.Repeat("0123456789", 500) // 5000 bytes
	tests := []struct {
		name         string
		max          int
		writes       []string
		wantString   string
		wantCaptured string
	}{
		{"empty", 8, nil, "", ""},
		{"fits", 8, []string{"abc", "def"}, "abcdef", "abcdef"},
		{"exactly full", 6, []string{"abc", "def"}, "abcdef", "abcdef"},
		{"keeps the tail across writes", 4, []string{"abc", "def"}, "cdef", "Captured 4 of 6 bytes\n...\ncdef"},
		{"one long write", 4, []string{"abcdefgh"}, "efgh", "Captured 4 of 8 bytes\n...\nefgh"},
		{"long write after short", 4, []string{"xy", "abcdefgh", "z"}, "fghz", "Captured 4 of 11 bytes\n...\nfghz"},
		{"4 KiB of 5000", outputMaxSize, []string{digits}, digits[5000-4096:],
			fmt.Sprintf("Captured 4096 of 5000 bytes\n...\n%s", digits[5000-4096:])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTailBuffer(tt.max)
			for _, w := range tt.writes {
				if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if got := b.String(); got != tt.wantString {
				t.Errorf("String() = %q, want %q", got, tt.wantString)
			}
			if got := b.captured(); got != tt.wantCaptured {
				t.Errorf("captured() = %q, want %q", got, tt.wantCaptured)
			}
		})
	}
}

func TestTTLOutputs(t *testing.T) {
	long := strings.Repeat("x", 5000)
	tests := []struct{ name, got, want string }{
		{"short update kept", truncateTTLOutput("all good"), "all good"},
		{"4 KiB update kept", truncateTTLOutput(long[:outputMaxSize]), long[:outputMaxSize]},
		{"long update truncated", truncateTTLOutput(long), long[:outputMaxSize] + " ... (captured 4096 of 5000 bytes)"},
		{"expired without output", ttlExpiredOutput(""), "TTL expired"},
		{"expired with output", ttlExpiredOutput("ok"), "TTL expired (last output before timeout follows): ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}
