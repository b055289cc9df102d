package gossip

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/serf/coordinate"
)

// The pool computes a Vivaldi coordinate from its probes: it leaves the
// origin once members probe each other, and has the dimensionality every
// coordinate of the cluster is checked against.
func TestCoordinateFollowsProbes(t *testing.T) {
	sink := newLogSink(t)
	a := startPool(t, sink, testConfig("coord-a", RoleServer))
	b := startPool(t, sink, testConfig("coord-b", RoleClient))
	c, err := a.Coordinate()
	if err != nil {
		t.Fatalf("Coordinate before joining: %v", err)
	}
	if !c.IsValid() || len(c.Vec) != int(coordinate.DefaultConfig().Dimensionality) {
		t.Fatalf("coordinate %+v: want a valid one of %d dimensions", c, coordinate.DefaultConfig().Dimensionality)
	}
	if _, err := b.Join([]string{addrOf(a)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "coordinates refined by probes", func() bool {
		ca, errA := a.Coordinate()
		cb, errB := b.Coordinate()
		return errA == nil && errB == nil && !atOrigin(ca) && !atOrigin(cb)
	})
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Coordinate(); !errors.Is(err, ErrShutdown) {
		t.Errorf("Coordinate after Shutdown: %v, want ErrShutdown", err)
	}
}

func atOrigin(c *coordinate.Coordinate) bool {
	for _, x := range c.Vec {
		if x != 0 {
			return false
		}
	}
	return true
}
