package agent

import (
	"testing"
	"time"
)

// The sync interval is Consul's: at least sync_coordinate_interval_min,
// stretched so that a pool sends about sync_coordinate_rate_target updates
// a second, plus a random stagger of up to as much again.
func TestCoordinateSyncInterval(t *testing.T) {
	for _, tc := range []struct {
		members int
		base    time.Duration
	}{
		{1, syncCoordinateIntervalMin},
		{960, syncCoordinateIntervalMin}, // 960 agents / 64 per second = 15 s
		{6400, 100 * time.Second},
	} {
		for range 100 {
			if got := coordinateSyncInterval(tc.members); got < tc.base || got >= 2*tc.base {
				t.Fatalf("%d members: interval %v, want in [%v, %v)", tc.members, got, tc.base, 2*tc.base)
			}
		}
	}
}
