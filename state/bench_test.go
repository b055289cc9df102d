package state_test

import (
	"fmt"
	"testing"

	"github.com/beacon-dns/beacon/state"
	"github.com/beacon-dns/beacon/state/statetest"
)

// BenchmarkRegisterInstance changes one instance at a time (its port) in a
// service that has N instances, one per node: the copy of the service's
// group that every write makes grows with N.
//
//	go test -run '^$' -bench RegisterInstance -benchmem ./state/
func BenchmarkRegisterInstance(b *testing.B) {
	for _, n := range []int{5, 1_000, 10_000, 50_000} {
		b.Run(fmt.Sprintf("service_of_%d", n), func(b *testing.B) {
			s := state.NewStore()
			idx := uint64(1)
			for i := range n {
				statetest.MustRegister(b, s, idx, statetest.SvcReq(fmt.Sprintf("node-%d", i), "10.0.0.1", "web", "web", 80, nil))
				idx++
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				// Node i%n's instance changes port (each round to another
				// one): a real write to a group of n.
				statetest.MustRegister(b, s, idx, statetest.SvcReq(fmt.Sprintf("node-%d", i%n), "10.0.0.1", "web", "web", 81+(i/n)%2, nil))
				idx++
			}
		})
	}
}
