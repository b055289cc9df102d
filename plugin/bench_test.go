package discovery

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/state"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/file"
	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/plugin/whoami"
	"github.com/miekg/dns"
)

// The catalog the benchmarks serve: 1,000 services × 3 instances on 100
// nodes, or BEACON_BENCH_CATALOG=SERVICESxINSTANCESxNODES (10000x5x1000 is
// issue 16's 50,000 instances).
var benchServices, benchInstances, benchNodes = 1000, 3, 100

func init() {
	if v := os.Getenv("BEACON_BENCH_CATALOG"); v != "" {
		if _, err := fmt.Sscanf(v, "%dx%dx%d", &benchServices, &benchInstances, &benchNodes); err != nil {
			panic(fmt.Sprintf("BEACON_BENCH_CATALOG=%q: want SERVICESxINSTANCESxNODES: %v", v, err))
		}
	}
}

// benchStore holds benchServices services of benchInstances instances each,
// spread over benchNodes nodes, every node and instance with a passing check.
func benchStore(b testing.TB) *state.Store {
	b.Helper()
	s := state.NewStore()
	idx := uint64(0)
	for n := 0; n < benchNodes; n++ {
		idx++
		err := s.EnsureRegistration(idx, &state.RegisterRequest{
			Node: fmt.Sprintf("node%d", n), Address: fmt.Sprintf("10.0.%d.%d", n/256, n%256),
			Checks: []*state.HealthCheck{{CheckID: state.SerfCheckID, Status: state.HealthPassing}},
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < benchServices; i++ {
		for j := 0; j < benchInstances; j++ {
			idx++
			id := fmt.Sprintf("svc%d-%d", i, j)
			err := s.EnsureRegistration(idx, &state.RegisterRequest{
				Node: fmt.Sprintf("node%d", (i*benchInstances+j)%benchNodes), SkipNodeUpdate: true,
				Service: &state.Service{ID: id, Service: fmt.Sprintf("svc%d", i), Port: 8000 + j},
				Checks:  []*state.HealthCheck{{CheckID: "service:" + id, ServiceID: id, Status: state.HealthPassing}},
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	return s
}

// benchFileZone is the same A records as a zone for the file plugin.
func benchFileZone(b *testing.B) file.File {
	b.Helper()
	var sb strings.Builder
	sb.WriteString("$ORIGIN consul.\n@ 0 IN SOA ns.consul. hostmaster.consul. 1 3600 600 86400 0\n@ 0 IN NS ns.consul.\n")
	for i := 0; i < benchServices; i++ {
		for j := 0; j < benchInstances; j++ {
			n := (i*benchInstances + j) % benchNodes
			fmt.Fprintf(&sb, "svc%d.service 0 IN A 10.0.%d.%d\n", i, n/256, n%256)
		}
	}
	z, err := file.Parse(strings.NewReader(sb.String()), "consul.", "bench", 0)
	if err != nil {
		b.Fatal(err)
	}
	return file.File{Zones: file.Zones{Z: map[string]*file.Zone{"consul.": z}, Names: []string{"consul."}}}
}

// packWriter packs every response, as the server does before sending it,
// into a buffer it reuses.
type packWriter struct {
	test.ResponseWriter
	buf []byte
}

func (w *packWriter) WriteMsg(m *dns.Msg) error {
	out, err := m.PackBuffer(w.buf)
	w.buf = out[:0]
	return err
}

// benchQueries asks for every service once, in a random order (the same
// in every run), as dnsperf's random names do: a cache's working set shows.
func benchQueries(format string, qtype uint16) []*dns.Msg {
	msgs := make([]*dns.Msg, benchServices)
	for i, n := range rand.New(rand.NewPCG(1, 2)).Perm(benchServices) {
		msgs[i] = new(dns.Msg).SetQuestion(fmt.Sprintf(format, n), qtype)
	}
	return msgs
}

func runBench(b *testing.B, h plugin.Handler, msgs []*dns.Msg, wantAnswers int) {
	ctx := context.Background()
	w := &packWriter{buf: make([]byte, 0, 4096)}
	// Check once that the handler answers what is being measured.
	rec := &recordWriter{}
	h.ServeDNS(ctx, rec, msgs[0])
	if wantAnswers >= 0 && (rec.msg == nil || len(rec.msg.Answer) != wantAnswers) {
		b.Fatalf("%s: unexpected answer %v", h.Name(), rec.msg)
	}
	// Every name once first: the measured queries find the cache warm.
	for _, m := range msgs {
		h.ServeDNS(ctx, w, m)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.ServeDNS(ctx, w, msgs[i%len(msgs)])
	}
}

func runBenchParallel(b *testing.B, h plugin.Handler, msgs []*dns.Msg) {
	ctx := context.Background()
	var next atomic.Uint64
	w := &packWriter{buf: make([]byte, 0, 4096)}
	for _, m := range msgs {
		h.ServeDNS(ctx, w, m)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &packWriter{buf: make([]byte, 0, 4096)}
		i := int(next.Add(7919)) // spread the goroutines over the names
		for pb.Next() {
			h.ServeDNS(ctx, w, msgs[i%len(msgs)])
			i++
		}
	})
}

type recordWriter struct {
	test.ResponseWriter
	msg *dns.Msg
}

func (w *recordWriter) WriteMsg(m *dns.Msg) error { w.msg = m; return nil }

func newBenchHandler(b testing.TB) *Discovery {
	cfg := testDNSConfig()
	cfg.ServiceTTL = map[string]time.Duration{}
	return New(benchStore(b), cfg, testAgentConfig())
}

func BenchmarkServeDNS_A(b *testing.B) {
	runBench(b, newBenchHandler(b), benchQueries("svc%d.service.consul.", dns.TypeA), benchInstances)
}

func BenchmarkServeDNS_SRV(b *testing.B) {
	runBench(b, newBenchHandler(b), benchQueries("svc%d.service.consul.", dns.TypeSRV), benchInstances)
}

func BenchmarkServeDNS_NXDOMAIN(b *testing.B) {
	runBench(b, newBenchHandler(b), benchQueries("nosuch%d.service.consul.", dns.TypeA), 0)
}

func BenchmarkServeDNS_A_Parallel(b *testing.B) {
	runBenchParallel(b, newBenchHandler(b), benchQueries("svc%d.service.consul.", dns.TypeA))
}

// The references the A path is held to: the file plugin serving the same
// records, and whoami, which reads nothing.

func BenchmarkFile_A(b *testing.B) {
	runBench(b, benchFileZone(b), benchQueries("svc%d.service.consul.", dns.TypeA), benchInstances)
}

func BenchmarkFile_A_Parallel(b *testing.B) {
	runBenchParallel(b, benchFileZone(b), benchQueries("svc%d.service.consul.", dns.TypeA))
}

func BenchmarkWhoami_A(b *testing.B) {
	runBench(b, whoami.Whoami{}, benchQueries("svc%d.service.consul.", dns.TypeA), -1)
}

// BenchmarkServeDNS_A_CacheMiss is the A path when every query finds its
// cache entry gone: a read of the store each time.
func BenchmarkServeDNS_A_CacheMiss(b *testing.B) {
	d := newBenchHandler(b)
	msgs := benchQueries("svc%d.service.consul.", dns.TypeA)
	ctx := context.Background()
	w := &packWriter{buf: make([]byte, 0, 4096)}
	z, _, _ := d.match("consul.")
	keys := make([]cacheKey, len(msgs))
	names := make([]string, len(msgs))
	for i := range msgs {
		names[i] = strings.TrimSuffix(msgs[i].Question[0].Name, ".service.consul.")
		keys[i] = cacheHash(z.index, names[i], "")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % len(msgs)
		t := d.cache.entries.Load()
		if e := t.load(keys[j]); e != nil {
			t.store(keys[j], e, nil)
		}
		d.ServeDNS(ctx, w, msgs[j])
	}
}

func BenchmarkServeDNS_NodeA(b *testing.B) {
	runBench(b, newBenchHandler(b), benchQueries("node%d.node.consul.", dns.TypeA)[:benchNodes], 1)
}
