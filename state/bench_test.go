package state_test

import (
	"fmt"
	"runtime"
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

// BenchmarkRegisterOnBigNode is BenchmarkRegisterInstance for one node
// holding N services of one instance each (external services registered
// on one node): the node's group is copied one chunk at a time too.
//
//	go test -run '^$' -bench RegisterOnBigNode -benchmem ./state/
func BenchmarkRegisterOnBigNode(b *testing.B) {
	for _, n := range []int{5, 10_000, 50_000} {
		b.Run(fmt.Sprintf("node_of_%d", n), func(b *testing.B) {
			s := state.NewStore()
			idx := uint64(1)
			for i := range n {
				statetest.MustRegister(b, s, idx, statetest.SvcReq("external", "10.0.0.1", fmt.Sprintf("svc-%d", i), fmt.Sprintf("svc-%d", i), 80, nil))
				idx++
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				id := fmt.Sprintf("svc-%d", i%n)
				statetest.MustRegister(b, s, idx, statetest.SvcReq("external", "10.0.0.1", id, id, 81+(i/n)%2, nil))
				idx++
			}
		})
	}
}

// BenchmarkCatalogBytes reports the live heap a store holding 10,000
// services × 5 instances on 1,000 nodes takes, per instance (bench/memory.sh's
// catalog, registered as the FSM applies it, one registration at a time).
//
//	go test -run '^$' -bench CatalogBytes -benchtime 1x ./state/
func BenchmarkCatalogBytes(b *testing.B) {
	const services, perService, nodes = 10_000, 5, 1_000
	for b.Loop() {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		s := state.NewStore()
		idx := uint64(1)
		for svc := range services {
			for i := range perService {
				k := svc*perService + i
				node := fmt.Sprintf("node%d", k%nodes)
				statetest.MustRegister(b, s, idx, &state.RegisterRequest{Node: node, Address: fmt.Sprintf("10.0.%d.%d", k%nodes/256, k%nodes%256),
					Service: &state.Service{ID: fmt.Sprintf("svc%d-%d", svc, i), Service: fmt.Sprintf("svc%d", svc),
						Address: fmt.Sprintf("10.%d.%d.%d", i+1, svc/256, svc%256), Port: 20000 + i, Tags: []string{}, Meta: map[string]string{}}})
				idx++
			}
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(services*perService), "bytes/instance")
		runtime.KeepAlive(s)
	}
}
