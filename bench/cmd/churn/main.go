// Command churn changes a catalog that bench/cmd/register filled, at a
// fixed rate, for bench/churn.sh: DNS latency while registrations churn.
//
// Every write re-registers one existing instance through the catalog API
// (PUT /v1/catalog/register) with register's layout (same services, IDs,
// nodes and addresses, so it churns the catalog register made, not a new
// one), changing it so that each write is a real change of the catalog:
//
//	meta   (default) the instance's Meta {"churn": "<n>"}
//	tag    the instance's Tags ["churn-<n>"]
//	port   its port, moved by 1 every other generation
//	dereg  PUT /v1/catalog/deregister then register it again (two writes,
//	       counted as one operation; the rate is of operations)
//
// Each change leaves the DNS A answer the same (dereg removes the instance
// for the time between its two writes); the port mode changes the SRV
// answer. The instances are picked at random (-seed) among all of
// -services × -instances.
//
// Pacing is by the clock, as bench/cmd/fanout's writer: at every tick as
// many operations are started as are due since the start, on -workers
// workers; one due while all workers are busy is skipped and counted late.
// After the first successful write it prints "started" on stderr (the
// script starts its DNS load then), and at the end one line on stdout:
//
//	churn mode=meta rate_target=300 seconds=33.0 ok=9900 errors=0 late=0 rate=300.0 p50_ms=… p99_ms=… max_ms=… cpu_s=…
//
// followed by "first_error=…" when a write failed.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type instance struct {
	service, id, node, nodeAddr, addr string
	port                              int
}

// instanceAt is instance k (k = s*instances + i-1) of bench/cmd/register's
// layout: with nodes 0, instance i of every service on node-i; otherwise
// the instances spread over node-0 … node-(nodes-1). Keep it in step with
// register's layout.
func instanceAt(k, instances, nodes int) instance {
	s, i := k/instances, k%instances+1
	name := fmt.Sprintf("svc%04d", s)
	node, nodeAddr := fmt.Sprintf("node-%d", i), fmt.Sprintf("10.0.0.%d", i)
	if nodes > 0 {
		j := k % nodes
		node, nodeAddr = fmt.Sprintf("node-%d", j), fmt.Sprintf("10.0.%d.%d", j/250, j%250+1)
	}
	return instance{
		service:  name,
		id:       fmt.Sprintf("%s-%d", name, i),
		node:     node,
		nodeAddr: nodeAddr,
		addr:     fmt.Sprintf("10.%d.%d.%d", i, s/250, s%250+1),
		port:     20000 + k%45536,
	}
}

type config struct {
	base                       string
	services, instances, nodes int
	rate, workers              int
	duration                   time.Duration
	mode                       string
	seed                       uint64
}

func main() {
	var c config
	httpAddr := flag.String("http", "127.0.0.1:8500", "beacon HTTP API address (a server's)")
	flag.IntVar(&c.services, "services", 1000, "services in the catalog (as given to register)")
	flag.IntVar(&c.instances, "instances", 3, "instances per service (as given to register)")
	flag.IntVar(&c.nodes, "nodes", 0, "nodes the instances are spread over (as given to register; 0: instance i on node-i)")
	flag.IntVar(&c.rate, "rate", 300, "operations per second")
	flag.IntVar(&c.workers, "workers", 8, "operations in flight at most; one due while all are out is late")
	flag.DurationVar(&c.duration, "duration", 30*time.Second, "how long to churn")
	flag.StringVar(&c.mode, "mode", "meta", "what a write changes: meta, tag, port or dereg")
	flag.Uint64Var(&c.seed, "seed", 1, "seed of the random choice of instances")
	flag.Parse()
	switch {
	case c.services < 1 || c.services > 10000 || c.instances < 1 || c.instances > 255:
		fatalf("services must be 1..10000 and instances 1..255")
	case c.nodes < 0 || c.nodes > 62500:
		fatalf("nodes must be 0..62500")
	case c.rate < 1 || c.rate > 100000 || c.workers < 1 || c.duration <= 0:
		fatalf("rate must be 1..100000, workers ≥ 1 and duration > 0")
	case !slices.Contains([]string{"meta", "tag", "port", "dereg"}, c.mode):
		fatalf("mode must be meta, tag, port or dereg, not %q", c.mode)
	}
	c.base = "http://" + *httpAddr
	r := newChurner(c)
	start := time.Now()
	r.run()
	elapsed := time.Since(start)
	lat := r.lat
	slices.Sort(lat)
	var ru syscall.Rusage
	cpu := 0.0
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	fmt.Printf("churn mode=%s rate_target=%d seconds=%.1f ok=%d errors=%d late=%d rate=%.1f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f cpu_s=%.3f\n",
		c.mode, c.rate, elapsed.Seconds(), r.ok.Load(), r.failed.Load(), r.late.Load(),
		float64(r.ok.Load())/elapsed.Seconds(), ms(pct(lat, 0.50)), ms(pct(lat, 0.99)), ms(pct(lat, 1)), cpu)
	if r.firstErr != "" {
		fmt.Printf("first_error=%s\n", r.firstErr)
	}
	if r.ok.Load() == 0 {
		os.Exit(1)
	}
}

type churner struct {
	c      config
	client *http.Client
	jobs   chan int
	wg     sync.WaitGroup
	rng    *rand.Rand
	// gen counts the writes to each instance, so that each one changes it.
	gen     []atomic.Int32
	started sync.Once

	ok, failed, late atomic.Int64
	errOnce          sync.Once
	firstErr         string
	latMu            sync.Mutex
	lat              []time.Duration
}

func newChurner(c config) *churner {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &churner{
		c: c,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			DialContext:           dialer.DialContext,
			ResponseHeaderTimeout: 10 * time.Second,
			IdleConnTimeout:       30 * time.Second,
			MaxIdleConns:          c.workers, MaxIdleConnsPerHost: c.workers, MaxConnsPerHost: c.workers,
		}},
		jobs: make(chan int),
		rng:  rand.New(rand.NewPCG(c.seed, 0x636875726e)),
		gen:  make([]atomic.Int32, c.services*c.instances),
		lat:  make([]time.Duration, 0, int(c.duration.Seconds()+1)*c.rate),
	}
}

// run paces by the clock: at every tick it hands out as many operations as
// are due since the start, so a late tick (a busy machine) does not lower
// the rate; one due while every worker is busy is skipped and counted late.
func (r *churner) run() {
	for w := 0; w < r.c.workers; w++ {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for k := range r.jobs {
				r.one(k)
			}
		}()
	}
	tick := time.NewTicker(time.Second / time.Duration(min(r.c.rate, 1000)))
	defer tick.Stop()
	start := time.Now()
	due := 0
	for now := start; now.Sub(start) < r.c.duration; now = <-tick.C {
		target := int(now.Sub(start).Seconds() * float64(r.c.rate))
		for ; due < target; due++ {
			select {
			case r.jobs <- r.rng.IntN(len(r.gen)):
			default:
				r.late.Add(1)
			}
		}
	}
	close(r.jobs)
	r.wg.Wait()
}

func (r *churner) one(k int) {
	in := instanceAt(k, r.c.instances, r.c.nodes)
	g := int(r.gen[k].Add(1))
	t0 := time.Now()
	var err error
	if r.c.mode == "dereg" {
		err = r.put("/v1/catalog/deregister", fmt.Sprintf(`{"Node":%q,"ServiceID":%q}`, in.node, in.id))
	}
	if err == nil {
		err = r.put("/v1/catalog/register", registration(in, r.c.mode, g))
	}
	if err != nil {
		r.failed.Add(1)
		r.errOnce.Do(func() { r.firstErr = fmt.Sprintf("%s: %v", in.id, err) })
		return
	}
	d := time.Since(t0)
	r.ok.Add(1)
	r.started.Do(func() { fmt.Fprintln(os.Stderr, "started") })
	r.latMu.Lock()
	r.lat = append(r.lat, d)
	r.latMu.Unlock()
}

// registration is register's body for the instance (node, address, service
// ID, name, address, port), changed as the mode says for generation g.
func registration(in instance, mode string, g int) string {
	port, extra := in.port, ""
	switch mode {
	case "meta":
		extra = fmt.Sprintf(`,"Meta":{"churn":"%d"}`, g)
	case "tag":
		extra = fmt.Sprintf(`,"Tags":["churn-%d"]`, g)
	case "port":
		if g%2 == 1 {
			port = 20000 + (port-20000+1)%45536
		}
	}
	return fmt.Sprintf(`{"Node":%q,"Address":%q,"Service":{"ID":%q,"Service":%q,"Address":%q,"Port":%d%s}}`,
		in.node, in.nodeAddr, in.id, in.service, in.addr, port, extra)
}

func (r *churner) put(path, body string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, r.c.base+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d: %s", path, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	if !bytes.Equal(bytes.TrimSpace(msg), []byte("true")) {
		return fmt.Errorf("%s: answered %q, not true", path, bytes.TrimSpace(msg))
	}
	return nil
}

// pct is the q-quantile of sorted durations (0 when there are none).
func pct(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(q*float64(len(d))+0.5) - 1
	return d[max(0, min(i, len(d)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "churn: "+format+"\n", args...)
	os.Exit(1)
}
