// Command fanout holds the measurements of bench/fanout.sh: what a fleet of
// client agents costs the server whose change feed they follow. It runs
// -replicas client replicas in this one process — beacon's own client code,
// raftstore.NewClient and its Replica, each with its own state store — against
// one real beacon server (a separate process, -http, -rpc, -server-pid), and
// in phases:
//
//  1. sync: starts every replica at once and waits until each holds a full
//     state (Replica().Synced()); the time from NewClient, the index reached,
//     the bytes the server sent, the server's CPU, and this process's live
//     heap before and after (after a GC each time).
//  2. idle (-idle): no writes; the server's CPU, write system calls and the
//     bytes it sends (the stream heartbeats), and its resident memory with
//     the replicas connected against before.
//  3. writes (-duration): -rate writes a second through the server's HTTP
//     API (catalog registrations or KV puts, -write), paced by the clock,
//     from a writer process of its own (this binary with -writer); the
//     server's CPU and write system calls until every replica holds the
//     last write (or -drain-timeout), the bytes sent to the replicas, and
//     every -sample the replicas' lag behind the server: how many indexes,
//     and how long until each reaches the index the server had applied.
//
// The bytes are counted by a TCP proxy in this process that every replica
// dials instead of the server's RPC port (their Servers list names only the
// proxy), so nothing in beacon is changed or instrumented: the count is the
// stream's payload (beacon's frames), without TCP/IP headers.
//
// With -relays R, R relays (client replicas that pass the stream on,
// started first) follow the server through the proxy, and the -replicas
// follow the relays directly: the server streams to the R relays alone,
// the relays' cost falls on this process, and the lag is the replicas',
// two hops from the server.
//
// With -replicas 0 only the idle and write phases run: the server's own cost
// of the writes, the baseline the script subtracts to get the cost of each
// replica.
//
// Results go to stdout as lines of key=value pairs, one line per phase,
// for the script.
//
// Of beacon it imports raftstore and state, to run the client replica code
// itself (the one bench command allowed to: imports_test.go); it reaches
// the server only over its RPC port and HTTP API, as a client agent would.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beacon-dns/beacon/bench/internal/proc"

	"github.com/beacon-dns/beacon/raftstore"
	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/go-hclog"
)

type config struct {
	httpAddr, rpcAddr string
	serverPID         int
	replicas          int
	relays            int
	write             string
	rate              int
	pool              int
	inflight          int
	idle, duration    time.Duration
	sample            time.Duration
	syncTimeout       time.Duration
	drainTimeout      time.Duration
	clkTck            float64
	proxyBuf          int
	cpuProfile        string
	writer            bool
	writerCPUs        string
}

func main() {
	var c config
	flag.StringVar(&c.httpAddr, "http", "127.0.0.1:8500", "the server's HTTP API address")
	flag.StringVar(&c.rpcAddr, "rpc", "127.0.0.1:8300", "the server's RPC address (the replicas reach it through the proxy)")
	flag.IntVar(&c.serverPID, "server-pid", 0, "the server's process id, for its CPU and memory from /proc")
	flag.IntVar(&c.replicas, "replicas", 10, "client replicas to run (0: the writes alone, as a baseline)")
	flag.IntVar(&c.relays, "relays", 0, "relays between the server and the replicas (0: the replicas follow the server)")
	flag.StringVar(&c.write, "write", "catalog", "what a write is: catalog (PUT /v1/catalog/register) or kv (PUT /v1/kv/...)")
	flag.IntVar(&c.rate, "rate", 500, "writes per second")
	flag.IntVar(&c.pool, "pool", 1000, "distinct instances (or keys) the writes cycle through")
	flag.IntVar(&c.inflight, "inflight", 64, "writes in flight at most; a write due while all are out is late")
	flag.DurationVar(&c.idle, "idle", 5*time.Second, "idle phase after the sync (0: none)")
	flag.DurationVar(&c.duration, "duration", 20*time.Second, "write phase (0: none)")
	flag.DurationVar(&c.sample, "sample", 100*time.Millisecond, "lag sampling interval during the writes")
	flag.DurationVar(&c.drainTimeout, "drain-timeout", 2*time.Minute, "bound on the wait, after the writes, for every replica to hold the last one")
	flag.DurationVar(&c.syncTimeout, "sync-timeout", 5*time.Minute, "bound on the sync of every replica")
	flag.Float64Var(&c.clkTck, "clk-tck", 100, "clock ticks per second (getconf CLK_TCK)")
	flag.IntVar(&c.proxyBuf, "proxy-buffer", 32<<10, "the proxy's copy buffer per direction and connection (bytes)")
	flag.StringVar(&c.cpuProfile, "cpuprofile", "", "write this process's CPU profile of the write phase here")
	flag.BoolVar(&c.writer, "writer", false, "be the writer process (the tool starts it for the write phase)")
	flag.StringVar(&c.writerCPUs, "writer-cpus", "", "CPUs for the writer process (taskset -c), e.g. the server's; empty: no pinning")
	flag.Parse()
	if c.writer {
		if err := writerMain(c); err != nil {
			fatalf("writer: %v", err)
		}
		return
	}
	if c.serverPID <= 0 {
		fatalf("-server-pid is required (the server's CPU and memory are read from /proc)")
	}
	if c.replicas < 0 || c.relays < 0 || c.rate < 1 || c.pool < 1 || c.inflight < 1 || c.sample <= 0 {
		fatalf("-replicas and -relays must be ≥ 0; -rate, -pool, -inflight and -sample > 0")
	}
	if c.write != "catalog" && c.write != "kv" {
		fatalf("-write must be catalog or kv, not %q", c.write)
	}
	if err := run(c); err != nil {
		fatalf("%v", err)
	}
}

func run(c config) error {
	api := newAPI(c.httpAddr, c.inflight+4)
	px, err := newProxy(c.rpcAddr, c.proxyBuf)
	if err != nil {
		return err
	}
	defer px.close()

	// The server's memory before any replica.
	rssBefore, err := rssMB(c.serverPID)
	if err != nil {
		return err
	}

	var fleet, relays []*raftstore.Client
	defer func() {
		for _, cl := range slices.Concat(fleet, relays) {
			_ = cl.Shutdown()
		}
	}()
	if c.replicas > 0 && c.relays > 0 {
		relays, err = startRelays(c, px)
		if err != nil {
			return err
		}
	}
	if c.replicas > 0 {
		fleet, err = syncPhase(c, api, px, relays)
		if err != nil {
			return err
		}
	}
	if c.idle > 0 {
		if err := idlePhase(c, px, fleet, relays, rssBefore); err != nil {
			return err
		}
	}
	if c.duration > 0 {
		if err := writePhase(c, api, px, fleet); err != nil {
			return err
		}
	}
	return nil
}

// ---- phase 1: sync -----------------------------------------------------------

// startRelays starts c.relays relays following the server through the
// proxy, and waits until each holds the state.
func startRelays(c config, px *proxy) ([]*raftstore.Client, error) {
	logger := hclog.New(&hclog.LoggerOptions{Name: "fanout", Level: hclog.Warn, Output: os.Stderr})
	proxyAddr := px.addr()
	servers := func() []string { return []string{proxyAddr} }
	relays := make([]*raftstore.Client, 0, c.relays)
	for i := range c.relays {
		r, err := raftstore.NewClient(raftstore.ClientConfig{Servers: servers, RelayAddr: "127.0.0.1:0",
			Logger: logger.Named(fmt.Sprintf("relay%d", i))}, state.NewStore())
		if err != nil {
			return relays, err
		}
		relays = append(relays, r)
	}
	for _, r := range relays {
		if err := r.Replica().WaitApplied(0, c.syncTimeout); err != nil {
			return relays, fmt.Errorf("relay sync: %w", err)
		}
	}
	return relays, nil
}

func syncPhase(c config, api *apiClient, px *proxy, relays []*raftstore.Client) ([]*raftstore.Client, error) {
	heapBefore := liveHeap()
	cpu0 := sampleCPU(c.serverPID)
	bytes0 := px.down.Load()
	indexBefore, err := api.appliedIndex()
	if err != nil {
		return nil, err
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "fanout", Level: hclog.Warn, Output: os.Stderr})
	proxyAddr := px.addr()
	servers := func() []string { return []string{proxyAddr} }

	var relayAddrs func() []string
	if len(relays) > 0 {
		addrs := make([]string, len(relays))
		for i, r := range relays {
			addrs[i] = r.Replica().RelayAddr()
		}
		relayAddrs = func() []string { return addrs }
	}

	start := time.Now()
	fleet := make([]*raftstore.Client, c.replicas)
	for i := range fleet {
		fleet[i], err = raftstore.NewClient(raftstore.ClientConfig{Servers: servers, Relays: relayAddrs,
			Logger: logger.Named(fmt.Sprintf("r%d", i))}, state.NewStore())
		if err != nil {
			return fleet[:i], err
		}
	}
	// WaitApplied(0) returns once the replica holds a full state: the time
	// each took from its NewClient (all were created within microseconds),
	// and the index its state was at.
	took := make([]time.Duration, c.replicas)
	index := make([]uint64, c.replicas)
	errs := make([]error, c.replicas)
	var wg sync.WaitGroup
	for i, cl := range fleet {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = cl.Replica().WaitApplied(0, c.syncTimeout)
			took[i] = time.Since(start)
			index[i] = cl.Replica().AppliedIndex()
		}()
	}
	wg.Wait()
	all := time.Since(start)
	cpu1 := sampleCPU(c.serverPID)
	if err := errors.Join(errs...); err != nil {
		return fleet, fmt.Errorf("sync: %w", err)
	}
	if len(relays) > 0 {
		for _, cl := range fleet {
			if src := cl.Replica().Source(); src == proxyAddr {
				return fleet, errors.New("sync: a replica follows the server, not a relay")
			}
		}
	}
	indexAfter, err := api.appliedIndex()
	if err != nil {
		return fleet, err
	}
	heapAfter := liveHeap()
	// The proxy's buffers are not the replicas': two per connection.
	proxyHeap := float64(2 * c.proxyBuf * c.replicas)
	perReplica := (float64(heapAfter) - float64(heapBefore) - proxyHeap) / float64(c.replicas)
	resyncs := resyncCount(fleet)
	d := cpu1.since(cpu0, c.clkTck)
	fmt.Printf("sync replicas=%d relays=%d all_s=%.3f first_s=%.3f p50_s=%.3f last_s=%.3f index_min=%d index_max=%d server_index_before=%d server_index_after=%d bytes_per_replica=%.0f server_cpu_s=%.3f server_cpu_ms_per_replica=%.2f self_cpu_s=%.3f other_cores=%.2f steal_cores=%.2f heap_before_mb=%.1f heap_after_mb=%.1f heap_per_replica_kb=%.0f resyncs=%d\n",
		c.replicas, len(relays), all.Seconds(), pct(took, 0).Seconds(), pct(took, 0.5).Seconds(), pct(took, 1).Seconds(),
		slices.Min(index), slices.Max(index), indexBefore, indexAfter,
		float64(px.down.Load()-bytes0)/float64(c.replicas), d.server, 1000*d.server/float64(c.replicas), d.self,
		d.other/d.wall, d.steal/d.wall, mb(heapBefore), mb(heapAfter), perReplica/1024, resyncs)
	return fleet, nil
}

// ---- phase 2: idle -----------------------------------------------------------

func idlePhase(c config, px *proxy, fleet, relays []*raftstore.Client, rssBefore float64) error {
	cpu0 := sampleCPU(c.serverPID)
	bytes0, reads0 := px.down.Load(), px.downReads.Load()
	time.Sleep(c.idle) // a measuring window, not synchronisation
	cpu1 := sampleCPU(c.serverPID)
	bytes1, reads1 := px.down.Load(), px.downReads.Load()
	rss, err := rssMB(c.serverPID)
	if err != nil {
		return err
	}
	// Every replica (every relay, with relays) still has its stream: two
	// proxied connections each.
	upstream := fleet
	if len(relays) > 0 {
		upstream = relays
	}
	if open := px.openConns(); open != 2*len(upstream) {
		return fmt.Errorf("idle: %d proxied connections for %d streams from the server", open, len(upstream))
	}
	d := cpu1.since(cpu0, c.clkTck)
	n := float64(max(len(fleet), 1))
	perStream := func(v float64) float64 {
		if len(fleet) == 0 {
			return 0
		}
		return v / float64(len(fleet))
	}
	fmt.Printf("idle replicas=%d relays=%d seconds=%.1f server_cores=%.4f server_us_per_replica_s=%.2f server_syscw_per_replica_s=%.2f bytes_per_replica_s=%.1f reads_per_replica_s=%.2f self_cores=%.2f other_cores=%.2f steal_cores=%.2f server_rss_before_mb=%.1f server_rss_mb=%.1f rss_per_stream_kb=%.1f resyncs=%d\n",
		len(fleet), len(relays), d.wall, d.server/d.wall, perStream(1e6*d.server/d.wall), perStream(float64(d.syscw)/d.wall), float64(bytes1-bytes0)/n/d.wall,
		float64(reads1-reads0)/n/d.wall, d.self/d.wall, d.other/d.wall, d.steal/d.wall,
		rssBefore, rss, perStream(1024*(rss-rssBefore)), resyncCount(fleet))
	return nil
}

// ---- phase 3: writes ---------------------------------------------------------

func writePhase(c config, api *apiClient, px *proxy, fleet []*raftstore.Client) error {
	indexStart, err := api.appliedIndex()
	if err != nil {
		return err
	}
	lag := newLagSampler(api, fleet, c.sample)
	cpu0 := sampleCPU(c.serverPID)
	bytes0, reads0, conns0 := px.down.Load(), px.downReads.Load(), px.accepted.Load()
	lag.start()
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}

	w, writerCPU, err := runWriter(c)
	cpuWritten := sampleCPU(c.serverPID)
	lag.stopSampling()
	if err != nil {
		lag.finish()
		return err
	}

	// The replicas still receiving the last writes (all of them when they
	// apply slower than the writes come): the server keeps sending what
	// it committed during the writes, so its CPU and the bytes count until
	// each replica holds the index after the last write, or drainTimeout.
	indexEnd, err := api.appliedIndex()
	if err != nil {
		lag.finish()
		return err
	}
	drainStart := time.Now()
	drainDeadline := drainStart.Add(c.drainTimeout)
	notDrained := 0
	for _, cl := range fleet {
		if cl.Replica().WaitApplied(indexEnd, max(time.Until(drainDeadline), time.Millisecond)) != nil {
			notDrained++
		}
	}
	drain := time.Since(drainStart)
	cpuDrained := sampleCPU(c.serverPID)
	lag.finish()
	if c.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	bytes1, reads1 := px.down.Load(), px.downReads.Load()
	// The entries the replicas received, for the bytes per entry: all of
	// them unless some did not drain.
	var delivered float64
	for _, cl := range fleet {
		delivered += float64(cl.Replica().AppliedIndex() - min(indexStart, cl.Replica().AppliedIndex()))
	}

	window := cpuWritten.since(cpu0, c.clkTck)
	window.other = max(window.other-writerCPU, 0)
	total := cpuDrained.since(cpu0, c.clkTck)
	ok := float64(w.OK)
	n := float64(max(len(fleet), 1))
	perReplica := func(v, per float64) float64 {
		if len(fleet) == 0 || per == 0 {
			return 0
		}
		return v / n / per
	}
	relaysUsed := c.relays // startRelays runs only with replicas
	if len(fleet) == 0 {
		relaysUsed = 0
	}
	bytesPerEntry := 0.0
	if delivered > 0 {
		bytesPerEntry = float64(bytes1-bytes0) / delivered
	}
	fmt.Printf("writes replicas=%d relays=%d write=%s rate_target=%d seconds=%.1f ok=%d errors=%d late=%d rate=%.1f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f index_start=%d index_end=%d entries=%d server_cores=%.3f server_cpu_s=%.3f server_us_per_write=%.1f server_syscw_per_write=%.2f self_cores=%.2f writer_cores=%.2f other_cores=%.2f steal_cores=%.2f machine_cores=%.2f bytes_per_replica_per_write=%.1f bytes_per_entry_delivered=%.1f reads_per_replica_per_write=%.2f replica_mbit_s_at_rate=%.3f drain_ms=%.1f not_drained=%d reconnects=%d resyncs=%d\n",
		len(fleet), relaysUsed, c.write, c.rate, w.Seconds, w.OK, w.Failed, w.Late, ok/w.Seconds,
		w.P50ms, w.P99ms, w.MaxMs, indexStart, indexEnd, indexEnd-indexStart,
		window.server/window.wall, total.server, 1e6*total.server/max(ok, 1), float64(total.syscw)/max(ok, 1),
		window.self/window.wall, writerCPU/window.wall, window.other/window.wall, window.steal/window.wall, window.busy/window.wall,
		perReplica(float64(bytes1-bytes0), ok), bytesPerEntry,
		perReplica(float64(reads1-reads0), ok), 8*bytesPerEntry*ok/w.Seconds/1e6,
		ms(drain), notDrained, px.accepted.Load()-conns0, resyncCount(fleet))
	if w.FirstError != "" {
		fmt.Printf("first_error=%s\n", strings.ReplaceAll(w.FirstError, " ", "_"))
	}
	if len(fleet) > 0 {
		fmt.Println(lag.report())
	}
	if w.OK == 0 {
		return errors.New("no write succeeded")
	}
	return nil
}

// writerResult is what the writer process reports, as JSON on its stdout.
type writerResult struct {
	OK, Failed, Late    int64
	Seconds             float64
	P50ms, P99ms, MaxMs float64
	FirstError          string
}

// runWriter runs the writes in a process of their own (this binary with
// -writer), on -writer-cpus when given: with hundreds of replicas this
// process is busy applying what they receive, and a writer sharing its
// scheduler (and, pinned, its core) would fall behind the rate and measure
// the replicas instead of the server. It returns the writer's report and
// the CPU seconds it used.
func runWriter(c config) (writerResult, float64, error) {
	self, err := os.Executable()
	if err != nil {
		return writerResult{}, 0, err
	}
	args := []string{self, "-writer", "-http", c.httpAddr, "-write", c.write, "-rate", strconv.Itoa(c.rate),
		"-pool", strconv.Itoa(c.pool), "-inflight", strconv.Itoa(c.inflight), "-duration", c.duration.String()}
	if c.writerCPUs != "" {
		args = append([]string{"taskset", "-c", c.writerCPUs}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return writerResult{}, 0, fmt.Errorf("writer (%s): %w", strings.Join(args, " "), err)
	}
	var r writerResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return writerResult{}, 0, fmt.Errorf("writer's report %q: %w", out.String(), err)
	}
	cpu := (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	return r, cpu, nil
}

// writerMain is the writer process: -rate writes a second for -duration,
// then its report on stdout.
func writerMain(c config) error {
	w := newWriter(newAPI(c.httpAddr, c.inflight+4), c)
	start := time.Now()
	w.run(c.duration)
	lat := w.latencies()
	return json.NewEncoder(os.Stdout).Encode(writerResult{
		OK: w.ok.Load(), Failed: w.failed.Load(), Late: w.late.Load(), Seconds: time.Since(start).Seconds(),
		P50ms: ms(pct(lat, 0.5)), P99ms: ms(pct(lat, 0.99)), MaxMs: ms(pct(lat, 1)), FirstError: w.firstErr,
	})
}

// writer sends c.rate writes a second through the HTTP API for a while.
type writer struct {
	api  *apiClient
	c    config
	sem  chan struct{}
	wg   sync.WaitGroup
	ok   atomic.Int64
	late atomic.Int64
	// failed counts writes that got an error; firstErr is the first.
	failed   atomic.Int64
	errOnce  sync.Once
	firstErr string
	latMu    sync.Mutex
	lat      []time.Duration
}

func newWriter(api *apiClient, c config) *writer {
	return &writer{api: api, c: c, sem: make(chan struct{}, c.inflight)}
}

// run paces by the clock rather than by counting ticks: at every tick it
// sends as many writes as are due since the start, so a late tick (the
// machine is busy) does not lower the rate. A write due while -inflight
// are out is skipped and counted late: the server is not keeping up.
func (w *writer) run(d time.Duration) {
	tick := time.NewTicker(time.Second / time.Duration(min(w.c.rate, 1000)))
	defer tick.Stop()
	start := time.Now()
	due := 0
	for now := start; now.Sub(start) < d; now = <-tick.C {
		target := int(now.Sub(start).Seconds() * float64(w.c.rate))
		for ; due < target; due++ {
			select {
			case w.sem <- struct{}{}:
			default:
				w.late.Add(1)
				continue
			}
			w.wg.Add(1)
			go w.one(due)
		}
	}
	w.wg.Wait()
}

func (w *writer) one(seq int) {
	defer func() { <-w.sem; w.wg.Done() }()
	t0 := time.Now()
	var err error
	if w.c.write == "kv" {
		err = w.api.putKV(seq, w.c.pool)
	} else {
		err = w.api.register(seq, w.c.pool)
	}
	if err != nil {
		w.failed.Add(1)
		w.errOnce.Do(func() { w.firstErr = err.Error() })
		return
	}
	w.ok.Add(1)
	w.latMu.Lock()
	w.lat = append(w.lat, time.Since(t0))
	w.latMu.Unlock()
}

func (w *writer) latencies() []time.Duration {
	w.latMu.Lock()
	defer w.latMu.Unlock()
	return slices.Clone(w.lat)
}

// ---- lag ---------------------------------------------------------------------

// lagSampler measures how far the replicas are behind the server. Every
// interval it reads the server's applied index S over HTTP and notes, for
// every replica, how many indexes it is behind S then; a scanner looks at
// every replica's applied index every lagScan and notes, for each sample,
// when each replica reached its S: the time from the server's answer. The
// answer came after the server applied S, so that time is low by at most
// one HTTP round trip (a few hundred µs here), and high by at most one scan
// period. Scanning (atomic loads) rather than parking a WaitApplied per
// replica and sample keeps the measurement from waking thousands of
// goroutines on every write, which on 2 cores would cost the replicas more
// than the figures are worth.
type lagSampler struct {
	api      *apiClient
	fleet    []*raftstore.Client
	interval time.Duration

	mu      sync.Mutex
	targets []lagTarget // in index order: the server's index only grows
	// next[i] is the first target replica i has not reached yet.
	next     []int
	indexLag []uint64
	timeLag  []time.Duration
	errors   int

	stopSample, sampled chan struct{}
	stopScan, scanned   chan struct{}
}

type lagTarget struct {
	index   uint64
	learned time.Time
}

// lagScan is how often the scanner reads every replica's applied index.
const lagScan = time.Millisecond

func newLagSampler(api *apiClient, fleet []*raftstore.Client, interval time.Duration) *lagSampler {
	return &lagSampler{api: api, fleet: fleet, interval: interval, next: make([]int, len(fleet))}
}

// start begins sampling (every interval) and scanning (every lagScan).
// With no replicas it still reads the server's index every interval, so
// that the baseline run costs the server the same requests.
func (l *lagSampler) start() {
	l.stopSample, l.sampled = make(chan struct{}), make(chan struct{})
	l.stopScan, l.scanned = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(l.sampled)
		tick := time.NewTicker(l.interval)
		defer tick.Stop()
		for {
			select {
			case <-l.stopSample:
				return
			case <-tick.C:
				l.sampleOnce()
			}
		}
	}()
	go func() {
		defer close(l.scanned)
		tick := time.NewTicker(lagScan)
		defer tick.Stop()
		for {
			select {
			case <-l.stopScan:
				l.scan() // what was reached by now counts
				return
			case <-tick.C:
				l.scan()
			}
		}
	}()
}

// stopSampling takes no more samples; the scanner goes on.
func (l *lagSampler) stopSampling() {
	close(l.stopSample)
	<-l.sampled
}

// finish stops the scanner after a last scan: a sample some replica has
// not reached by then counts as unresolved.
func (l *lagSampler) finish() {
	close(l.stopScan)
	<-l.scanned
}

func (l *lagSampler) sampleOnce() {
	s, err := l.api.appliedIndex()
	learned := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.errors++
		return
	}
	l.targets = append(l.targets, lagTarget{index: s, learned: learned})
	for _, cl := range l.fleet {
		l.indexLag = append(l.indexLag, s-min(s, cl.Replica().AppliedIndex()))
	}
}

// scan notes the samples each replica reached since the last scan.
func (l *lagSampler) scan() {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, cl := range l.fleet {
		applied := cl.Replica().AppliedIndex()
		for l.next[i] < len(l.targets) && l.targets[l.next[i]].index <= applied {
			l.timeLag = append(l.timeLag, now.Sub(l.targets[l.next[i]].learned))
			l.next[i]++
		}
	}
}

func (l *lagSampler) report() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	idx := slices.Clone(l.indexLag)
	slices.Sort(idx)
	ipct := func(q float64) uint64 {
		if len(idx) == 0 {
			return 0
		}
		return idx[min(len(idx)-1, int(q*float64(len(idx))))]
	}
	unresolved := len(l.targets)*len(l.fleet) - len(l.timeLag)
	return fmt.Sprintf("lag samples=%d sample_errors=%d points=%d index_p50=%d index_p99=%d index_max=%d time_p50_ms=%.2f time_p99_ms=%.2f time_max_ms=%.2f unresolved=%d",
		len(l.targets), l.errors, len(idx), ipct(0.5), ipct(0.99), ipct(1),
		ms(pct(l.timeLag, 0.5)), ms(pct(l.timeLag, 0.99)), ms(pct(l.timeLag, 1)), unresolved)
}

// ---- the proxy ---------------------------------------------------------------

// proxy forwards TCP connections to the server's RPC port and counts what
// the server sends back (down) and how many reads it took (a lower bound of
// the TCP segments: a read may take several when this process is slow).
type proxy struct {
	ln     net.Listener
	target string
	bufLen int

	down      atomic.Int64
	downReads atomic.Int64
	// accepted counts the connections the replicas opened: one each,
	// more when a replica lost its stream and came back.
	accepted atomic.Int64

	mu     sync.Mutex
	open   map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func newProxy(target string, bufLen int) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	p := &proxy{ln: ln, target: target, bufLen: bufLen, open: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			fmt.Fprintf(os.Stderr, "fanout: proxy: dialing the server: %v\n", err)
			in.Close()
			continue
		}
		if !p.track(in, out) {
			in.Close()
			out.Close()
			return
		}
		p.wg.Add(2)
		go p.pipe(in, out, nil, nil) // replica → server: the stream request only
		go p.pipe(out, in, &p.down, &p.downReads)
	}
}

func (p *proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	for _, c := range conns {
		p.open[c] = struct{}{}
	}
	return true
}

// pipe copies src to dst until either ends, then closes both, so the other
// direction ends too (as the connection would without a proxy).
func (p *proxy) pipe(src, dst net.Conn, count, reads *atomic.Int64) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.open, src)
		delete(p.open, dst)
		p.mu.Unlock()
		src.Close()
		dst.Close()
	}()
	buf := make([]byte, p.bufLen)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if count != nil {
				count.Add(int64(n))
				reads.Add(1)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) openConns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.open)
}

func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	p.ln.Close()
	for c := range p.open {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// ---- the server's HTTP API ---------------------------------------------------

type apiClient struct {
	base   string
	client *http.Client
	// value is a KV write's value after its 12-digit sequence number:
	// 100 bytes in all, as bench/kv.sh writes.
	value []byte
}

func newAPI(addr string, conns int) *apiClient {
	return &apiClient{
		base: "http://" + addr,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}},
		value: bytes.Repeat([]byte("v"), 88),
	}
}

func (a *apiClient) do(method, path string, body []byte, out any) error {
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// register writes instance k = seq mod pool: service fanout-(k/10) (ten
// instances each) on node fanout-node-(k mod 100), its port moving on with
// every round through the pool so that each write changes the catalog.
func (a *apiClient) register(seq, pool int) error {
	k := seq % pool
	body := fmt.Sprintf(`{"Node":"fanout-node-%d","Address":"10.250.0.%d","Service":{"ID":"fanout-%d","Service":"fanout-%d","Address":"10.251.%d.%d","Port":%d}}`,
		k%100, k%100+1, k, k/10, k/250%256, k%250+1, 1024+(seq/pool)%60000)
	return a.do(http.MethodPut, "/v1/catalog/register", []byte(body), nil)
}

// putKV writes key fanout/(seq mod pool), a 100-byte value.
func (a *apiClient) putKV(seq, pool int) error {
	body := append([]byte(fmt.Sprintf("%012d", seq)), a.value...)
	return a.do(http.MethodPut, fmt.Sprintf("/v1/kv/fanout/%d", seq%pool), body, nil)
}

// appliedIndex is the server's Raft applied index (/v1/agent/self,
// Stats.raft.applied_index). Raft counts a batch applied when it hands it
// to the FSM, so it may lead the FSM (whose index the stream follows) by a
// batch being applied: well under a millisecond at these rates.
func (a *apiClient) appliedIndex() (uint64, error) {
	var self struct {
		Stats map[string]map[string]string
	}
	if err := a.do(http.MethodGet, "/v1/agent/self", nil, &self); err != nil {
		return 0, err
	}
	v, ok := self.Stats["raft"]["applied_index"]
	if !ok {
		return 0, errors.New("/v1/agent/self has no Stats.raft.applied_index: is -http a server's?")
	}
	return strconv.ParseUint(v, 10, 64)
}

// ---- /proc and the runtime ---------------------------------------------------

// procSyscw is a process's count of write system calls, from /proc/PID/io
// (readable by its owner and root).
func procSyscw(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw:"); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/io has no syscw", pid)
}

// machineTicks is the busy time of all cores (all but idle and iowait,
// steal included) and the steal time, in clock ticks, from /proc/stat.
func machineTicks() (busy, steal int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i := 1; i <= 8 && i < len(f); i++ {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		if i == 4 || i == 5 { // idle, iowait
			continue
		}
		busy += v
		if i == 8 {
			steal = v
		}
	}
	return busy, steal
}

type cpuSample struct {
	at                          time.Time
	server, self, busy, stealed int64
	// serverSyscw counts the server's write system calls
	// (/proc/PID/io): every flush of a replica's stream is one.
	serverSyscw int64
}

func sampleCPU(pid int) cpuSample {
	s := cpuSample{at: time.Now()}
	s.server, _ = proc.Ticks(strconv.Itoa(pid))
	s.serverSyscw, _ = procSyscw(pid)
	s.self, _ = proc.Ticks("self")
	s.busy, s.stealed = machineTicks()
	return s
}

// cpuDelta is CPU seconds over a window: the server's, this process's
// (replicas, proxy, writer), the machine's busy time, the rest of it
// (other processes, kernel work charged to none, steal), and steal alone.
type cpuDelta struct {
	wall, server, self, busy, other, steal float64
	syscw                                  int64
}

func (b cpuSample) since(a cpuSample, clkTck float64) cpuDelta {
	d := cpuDelta{
		wall:   b.at.Sub(a.at).Seconds(),
		server: float64(b.server-a.server) / clkTck,
		self:   float64(b.self-a.self) / clkTck,
		busy:   float64(b.busy-a.busy) / clkTck,
		steal:  float64(b.stealed-a.stealed) / clkTck,
		syscw:  b.serverSyscw - a.serverSyscw,
	}
	d.other = max(d.busy-d.server-d.self, 0)
	return d
}

// rssMB is a process's VmRSS in MB (2^20 bytes).
func rssMB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmRSS", pid)
}

// liveHeap is this process's live heap after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// resyncCount counts the full states the replicas installed beyond their
// first: each is a replica the feed could not serve (it fell more than the
// feed holds behind), which the figures must not hide.
func resyncCount(fleet []*raftstore.Client) uint64 {
	var n uint64
	for _, cl := range fleet {
		n += max(cl.Replica().SnapshotsInstalled(), 1) - 1
	}
	return n
}

// ---- small helpers -------------------------------------------------------------

func pct(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(math.Floor(q*float64(len(s)))))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mb(b uint64) float64 { return float64(b) / (1 << 20) }

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "fanout: "+format+"\n", args...)
	os.Exit(1)
}
