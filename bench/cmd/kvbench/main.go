// Command kvbench holds the measurements of bench/kv.sh: KV throughput
// through a 3-server cluster, the wake-up latency of many blocking watchers
// on one key, and loading many keys for the memory figure.
//
//	kvbench fill  -servers SPEC -prefix bench/ -n 10000 [-concurrency 64] [-size 100]
//	    PUTs keys PREFIX0 … PREFIX(n-1) once each, -concurrency at a time,
//	    requests spread over the servers; retries a failed PUT (up to 5
//	    times) so that every key exists afterwards; prints the rate.
//	kvbench load  -servers SPEC -op put|get|consistent|stale [-concurrency 64]
//	              [-keys 10000] [-warmup 2s] [-duration 10s] [-size 100]
//	    -concurrency clients, client i bound to server i mod 3, each sending
//	    one request after another on a keep-alive connection: PUT
//	    /v1/kv/bench/<n> (a -size byte value) or GET /v1/kv/bench/<n> in the
//	    default mode, ?consistent or ?stale, n uniformly random below -keys.
//	    Requests completed in the -duration window after -warmup count; the
//	    CPU of the beacon processes, of kvbench itself and of the whole
//	    machine is read from /proc at the window's edges.
//	kvbench watch -servers SPEC [-watchers 1000] [-target all|leader|follower]
//	              [-rounds 3] [-settle 3s] [-key watched]
//	    per round: -watchers concurrent GET /v1/kv/KEY?index=N&wait=5m
//	    (spread in turn over the target servers), waits until every request
//	    is sent and the watchers are parked (a blocking-query gauge from
//	    /v1/agent/metrics when the servers have one, else a settle window),
//	    then one PUT of KEY through the leader; the time from the PUT's
//	    acknowledgement (and from its sending) to each watcher's response
//	    (its first byte).
//	kvbench count -http ADDR -prefix mem/
//	    the number of keys under PREFIX on ADDR (GET ?keys&stale).
//	kvbench fsync -dir DIR [-duration 3s]
//	    4 KiB appends, each followed by fdatasync, one after another: the
//	    disk's floor for one Raft commit.
//
// SPEC is name=http=rpc=pid,... for every server (pid may be 0 for fill).
// Results go to stdout as lines of key=value pairs, for the script.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/beacon-dns/beacon/bench/internal/proc"
)

func main() {
	if len(os.Args) < 2 {
		fatalf("usage: kvbench fill|load|watch|count|fsync|ceiling [flags]")
	}
	switch os.Args[1] {
	case "fill":
		fill(os.Args[2:])
	case "load":
		load(os.Args[2:])
	case "watch":
		watch(os.Args[2:])
	case "count":
		count(os.Args[2:])
	case "fsync":
		fsyncProbe(os.Args[2:])
	case "ceiling":
		ceiling(os.Args[2:])
	default:
		fatalf("unknown subcommand %q", os.Args[1])
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kvbench: "+format+"\n", args...)
	os.Exit(1)
}

// newClient is a keep-alive client that keeps up to conns idle connections
// per server, so that every concurrent client keeps its connection.
func newClient(timeout time.Duration, conns int) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        4 * conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

type server struct {
	name, http, rpc string
	pid             int
}

func parseServers(s string) []server {
	var out []server
	for _, f := range strings.Split(s, ",") {
		p := strings.Split(f, "=")
		if len(p) != 4 {
			fatalf("bad -servers entry %q (want name=http=rpc=pid)", f)
		}
		pid, err := strconv.Atoi(p[3])
		if err != nil {
			fatalf("bad pid in %q", f)
		}
		out = append(out, server{p[0], p[1], p[2], pid})
	}
	if len(out) == 0 {
		fatalf("no servers")
	}
	return out
}

// leader finds the leader among servers (GET /v1/status/leader gives its
// RPC address).
func leader(client *http.Client, servers []server) (*server, error) {
	rpc := ""
	for _, s := range servers {
		resp, err := client.Get("http://" + s.http + "/v1/status/leader")
		if err != nil {
			continue
		}
		var l string
		err = json.NewDecoder(resp.Body).Decode(&l)
		resp.Body.Close()
		if err == nil && l != "" {
			rpc = l
			break
		}
	}
	for i := range servers {
		if servers[i].rpc == rpc {
			return &servers[i], nil
		}
	}
	return nil, fmt.Errorf("leader %q is none of the servers", rpc)
}

// value is a size-byte printable value whose first bytes carry seq.
func value(size int, seq uint64) []byte {
	v := bytes.Repeat([]byte("x"), size)
	s := strconv.FormatUint(seq, 36)
	copy(v, s)
	return v
}

// do sends one request and reads the whole response; any status but 200
// (and for reads, a missing body) is an error.
func do(ctx context.Context, client *http.Client, method, url string, body []byte) ([]byte, http.Header, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return nil, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return b, resp.Header, fmt.Errorf("%s %s: HTTP %d: %s", method, url, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return b, resp.Header, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// pct is the p-quantile (nearest rank) of sorted.
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func sortDur(ds []time.Duration) []time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}

// ---- fill --------------------------------------------------------------------

func fill(args []string) {
	fs := flag.NewFlagSet("fill", flag.ExitOnError)
	serversFlag := fs.String("servers", "", "name=http=rpc=pid,... (requests go to them in turn)")
	prefix := fs.String("prefix", "bench/", "key prefix")
	n := fs.Int("n", 10000, "keys")
	conc := fs.Int("concurrency", 64, "requests in flight")
	size := fs.Int("size", 100, "value size (bytes)")
	fs.Parse(args)
	servers := parseServers(*serversFlag)
	client := newClient(30*time.Second, *conc)
	var next, errs, retried atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv := servers[w%len(servers)]
			for {
				i := next.Add(1) - 1
				if i >= int64(*n) {
					return
				}
				url := fmt.Sprintf("http://%s/v1/kv/%s%d", srv.http, *prefix, i)
				v := value(*size, uint64(i))
				for try := 0; ; try++ {
					_, _, err := do(context.Background(), client, http.MethodPut, url, v)
					if err == nil {
						break
					}
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					if try == 5 {
						fatalf("fill: %s: giving up after %d tries: %v", url, try+1, err)
					}
					retried.Add(1)
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	wall := time.Since(t0)
	fmt.Printf("n=%d errors=%d seconds=%.2f rate=%.0f\n", *n, errs.Load(), wall.Seconds(), float64(*n)/wall.Seconds())
	if e := firstErr.Load(); e != nil {
		fmt.Fprintf(os.Stderr, "fill: first error: %s\n", e)
	}
}

// ---- count -------------------------------------------------------------------

func count(args []string) {
	fs := flag.NewFlagSet("count", flag.ExitOnError)
	addr := fs.String("http", "", "HTTP API address")
	prefix := fs.String("prefix", "mem/", "key prefix")
	fs.Parse(args)
	b, _, err := do(context.Background(), newClient(60*time.Second, 1), http.MethodGet,
		"http://"+*addr+"/v1/kv/"+*prefix+"?keys&stale", nil)
	if err != nil {
		fatalf("count: %v", err)
	}
	var keys []string
	if err := json.Unmarshal(b, &keys); err != nil {
		fatalf("count: %v", err)
	}
	fmt.Printf("keys=%d\n", len(keys))
}

// ---- fsync ---------------------------------------------------------------------

// fsyncProbe appends 4 KiB and fdatasyncs, one after another, for -duration
// in a file under -dir: what one Raft log commit costs this disk at least
// (raft-boltdb writes its pages, then fdatasync).
func fsyncProbe(args []string) {
	fs := flag.NewFlagSet("fsync", flag.ExitOnError)
	dir := fs.String("dir", os.TempDir(), "directory on the disk the servers use")
	duration := fs.Duration("duration", 3*time.Second, "how long")
	fs.Parse(args)
	f, err := os.CreateTemp(*dir, "fsync-probe-")
	if err != nil {
		fatalf("fsync: %v", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := bytes.Repeat([]byte{0xa5}, 4096)
	var lat []time.Duration
	t0 := time.Now()
	for time.Since(t0) < *duration {
		t := time.Now()
		if _, err := f.Write(buf); err != nil {
			fatalf("fsync: %v", err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			fatalf("fsync: %v", err)
		}
		lat = append(lat, time.Since(t))
	}
	wall := time.Since(t0)
	lat = sortDur(lat)
	fmt.Printf("fsyncs=%d per_s=%.0f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
		len(lat), float64(len(lat))/wall.Seconds(), ms(pct(lat, 0.5)), ms(pct(lat, 0.99)), ms(pct(lat, 1)))
}

// ---- CPU from /proc ------------------------------------------------------------

// machineTicks is the busy time of all cores (all but idle and iowait,
// steal included), the iowait and the steal time, in clock ticks, from
// /proc/stat.
func machineTicks() (busy, iowait, steal int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i := 1; i <= 8 && i < len(f); i++ {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		switch i {
		case 4:
		case 5:
			iowait = v
		default:
			busy += v
			if i == 8 {
				steal = v
			}
		}
	}
	return busy, iowait, steal
}

type cpuSample struct {
	at              time.Time
	beacon          map[string]int64
	self            int64
	machine, iowait int64
	steal           int64
}

func sampleCPU(servers []server) cpuSample {
	s := cpuSample{at: time.Now(), beacon: map[string]int64{}}
	s.machine, s.iowait, s.steal = machineTicks()
	for _, srv := range servers {
		if srv.pid > 0 {
			t, err := proc.Ticks(strconv.Itoa(srv.pid))
			if err == nil {
				s.beacon[srv.name] = t
			}
		}
	}
	s.self, _ = proc.Ticks("self")
	return s
}

// ---- load --------------------------------------------------------------------

func load(args []string) {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	serversFlag := fs.String("servers", "", "name=http=rpc=pid,...")
	op := fs.String("op", "put", "put, get (default mode), consistent or stale")
	conc := fs.Int("concurrency", 64, "clients")
	keys := fs.Int("keys", 10000, "keys bench/0 … bench/(keys-1)")
	warmup := fs.Duration("warmup", 2*time.Second, "unmeasured load first")
	duration := fs.Duration("duration", 10*time.Second, "measured window")
	size := fs.Int("size", 100, "value size of a PUT (bytes)")
	clkTck := fs.Float64("clk-tck", 100, "clock ticks per second (getconf CLK_TCK)")
	fs.Parse(args)
	servers := parseServers(*serversFlag)
	query := map[string]string{"put": "", "get": "", "consistent": "?consistent", "stale": "?stale"}
	q, ok := query[*op]
	if !ok {
		fatalf("load: unknown -op %q", *op)
	}
	method := http.MethodGet
	if *op == "put" {
		method = http.MethodPut
	}
	ctl := newClient(5*time.Second, 2)
	ldr, err := leader(ctl, servers)
	if err != nil {
		fatalf("load: %v", err)
	}
	client := newClient(30*time.Second, *conc)

	type result struct {
		lat  []time.Duration
		errs int
		err  string
	}
	results := make([]result, *conc)
	var (
		start   = time.Now()
		winFrom = start.Add(*warmup)
		winTo   = winFrom.Add(*duration)
	)
	ctx, cancel := context.WithDeadline(context.Background(), winTo.Add(time.Second))
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv := servers[w%len(servers)]
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			res := &results[w]
			res.lat = make([]time.Duration, 0, 1<<14)
			var body []byte
			for seq := uint64(0); ; seq++ {
				t0 := time.Now()
				if t0.After(winTo) {
					return
				}
				url := fmt.Sprintf("http://%s/v1/kv/bench/%d%s", srv.http, rng.IntN(*keys), q)
				if method == http.MethodPut {
					body = value(*size, seq<<8|uint64(w))
				}
				_, _, err := do(ctx, client, method, url, body)
				t1 := time.Now()
				if t1.Before(winFrom) || t1.After(winTo) {
					continue
				}
				if err != nil {
					res.errs++
					if res.err == "" {
						res.err = err.Error()
					}
					continue
				}
				res.lat = append(res.lat, t1.Sub(t0))
			}
		}()
	}
	time.Sleep(time.Until(winFrom))
	c0 := sampleCPU(servers)
	time.Sleep(time.Until(winTo))
	c1 := sampleCPU(servers)
	wg.Wait()

	window := c1.at.Sub(c0.at).Seconds()
	cores := func(a, b int64) float64 { return float64(b-a) / *clkTck / window }
	var all []time.Duration
	perSrv := map[string][]time.Duration{}
	errs := 0
	firstErr := ""
	for w, r := range results {
		all = append(all, r.lat...)
		name := servers[w%len(servers)].name
		perSrv[name] = append(perSrv[name], r.lat...)
		errs += r.errs
		if firstErr == "" {
			firstErr = r.err
		}
	}
	all = sortDur(all)
	beaconCores := 0.0
	var perCPU []string
	for _, s := range servers {
		c := cores(c0.beacon[s.name], c1.beacon[s.name])
		beaconCores += c
		role := "follower"
		if s.name == ldr.name {
			role = "leader"
		}
		l := sortDur(perSrv[s.name])
		perCPU = append(perCPU, fmt.Sprintf("cpu_%s=%.2f ops_%s=%.0f p50_%s=%.3f p99_%s=%.3f role_%s=%s",
			s.name, c, s.name, float64(len(l))/duration.Seconds(), s.name, ms(pct(l, 0.5)), s.name, ms(pct(l, 0.99)), s.name, role))
	}
	machine := cores(c0.machine, c1.machine)
	gen := cores(c0.self, c1.self)
	opsS := float64(len(all)) / duration.Seconds()
	perOp := func(c float64) float64 {
		if opsS == 0 {
			return 0
		}
		return c / opsS * 1e6
	}
	fmt.Printf("op=%s ops=%d ops_s=%.0f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f errors=%d beacon_cores=%.2f gen_cores=%.2f machine_cores=%.2f other_cores=%.2f steal_cores=%.2f iowait_cores=%.2f beacon_us_op=%.0f gen_us_op=%.0f leader=%s %s\n",
		*op, len(all), opsS, ms(pct(all, 0.5)), ms(pct(all, 0.99)), ms(pct(all, 1)),
		errs, beaconCores, gen, machine, machine-beaconCores-gen, cores(c0.steal, c1.steal), cores(c0.iowait, c1.iowait),
		perOp(beaconCores), perOp(gen), ldr.name, strings.Join(perCPU, " "))
	if firstErr != "" {
		fmt.Fprintf(os.Stderr, "load %s: first error: %s\n", *op, firstErr)
		fmt.Printf("first_error=%q\n", firstErr)
	}
}

// ---- ceiling ---------------------------------------------------------------------

// ceiling serves the answers of a ?stale KV read with nothing behind them:
// net/http with beacon's server timeouts, a body encoded in advance per key
// (the JSON beacon answers for a value of -size bytes) and Consul's
// metadata headers. The same load against it is the ceiling of a KV read
// over HTTP on this machine with this load generator.
func ceiling(args []string) {
	fs := flag.NewFlagSet("ceiling", flag.ExitOnError)
	addr := fs.String("http", "127.0.0.1:0", "address to serve")
	leaderRPC := fs.String("leader", "127.0.0.1:1", "what GET /v1/status/leader answers")
	keys := fs.Int("keys", 10000, "keys bench/0 … bench/(keys-1)")
	size := fs.Int("size", 100, "value size (bytes)")
	fs.Parse(args)
	type dirEntry struct {
		LockIndex   uint64
		Key         string
		Flags       uint64
		Value       []byte
		CreateIndex uint64
		ModifyIndex uint64
	}
	bodies := make(map[string][]byte, *keys)
	for i := range *keys {
		k := fmt.Sprintf("bench/%d", i)
		b, err := json.Marshal([]dirEntry{{Key: k, Value: value(*size, uint64(i)), CreateIndex: uint64(i + 10), ModifyIndex: uint64(i + 10)}})
		if err != nil {
			fatalf("ceiling: %v", err)
		}
		bodies[k] = b
	}
	leaderBody := []byte(strconv.Quote(*leaderRPC))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status/leader", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(leaderBody)
	})
	mux.HandleFunc("GET /v1/kv/{key...}", func(w http.ResponseWriter, r *http.Request) {
		b, ok := bodies[r.PathValue("key")]
		h := w.Header()
		h.Set("X-Consul-Index", "10010")
		h.Set("X-Consul-KnownLeader", "true")
		h.Set("X-Consul-LastContact", "0")
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fatalf("ceiling: %v", err)
	}
	// adminapi's timeouts, so both pay for the same deadlines.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 10*time.Minute + 10*time.Minute/16 + 30*time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	fatalf("ceiling: %v", srv.Serve(ln))
}

// ---- watch -------------------------------------------------------------------

type watcher struct {
	srv    *server
	sent   atomic.Bool
	first  time.Time // first response byte
	done   time.Time
	status int
	index  uint64
	value  []byte
	err    error
	doneAt atomic.Bool
}

func watch(args []string) {
	fs := flag.NewFlagSet("watch", flag.ExitOnError)
	serversFlag := fs.String("servers", "", "name=http=rpc=pid,...")
	n := fs.Int("watchers", 1000, "blocking watchers")
	target := fs.String("target", "all", "all (spread in turn over the servers), leader, or follower (one follower)")
	rounds := fs.Int("rounds", 3, "rounds (a new set of watchers and one PUT each)")
	settle := fs.Duration("settle", 3*time.Second, "settle window after every request is sent, when the servers show no blocking-query gauge")
	key := fs.String("key", "watched", "the watched key")
	wait := fs.String("wait", "5m", "the watchers' wait")
	fs.Parse(args)
	servers := parseServers(*serversFlag)
	ctl := newClient(10*time.Second, 4)
	ldr, err := leader(ctl, servers)
	if err != nil {
		fatalf("watch: %v", err)
	}
	var targets []*server
	for i := range servers {
		s := &servers[i]
		switch {
		case *target == "all",
			*target == "leader" && s.name == ldr.name,
			*target == "follower" && s.name != ldr.name && len(targets) == 0:
			targets = append(targets, s)
		}
	}
	if len(targets) == 0 {
		fatalf("watch: no server for -target %s", *target)
	}
	var names []string
	for _, t := range targets {
		names = append(names, t.name)
	}
	fmt.Printf("setup watchers=%d target=%s servers=%s leader=%s put_via=%s\n", *n, *target, strings.Join(names, ","), ldr.name, ldr.name)

	// One connection per watcher; they are kept between rounds.
	wclient := &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConns:        2 * *n,
		MaxIdleConnsPerHost: *n,
		IdleConnTimeout:     10 * time.Minute,
		DisableCompression:  true,
	}}
	keyURL := func(s *server) string { return "http://" + s.http + "/v1/kv/" + *key }

	var allAck, allSent []time.Duration
	perSrvAck := map[string][]time.Duration{}
	totals := struct{ early, failed, bad, late int }{}
	for r := 1; r <= *rounds; r++ {
		// The key's current value and index, as each target server sees it.
		old := value(100, uint64(r)<<32)
		if _, _, err := do(context.Background(), ctl, http.MethodPut, keyURL(ldr), old); err != nil {
			fatalf("watch: %v", err)
		}
		idx := map[string]uint64{}
		for _, t := range targets {
			_, h, err := do(context.Background(), ctl, http.MethodGet, keyURL(t), nil)
			if err != nil {
				fatalf("watch: %v", err)
			}
			idx[t.name], _ = strconv.ParseUint(h.Get("X-Consul-Index"), 10, 64)
		}
		ws := make([]*watcher, *n)
		var sent, finished atomic.Int64
		allDone := make(chan struct{})
		ctx, cancel := context.WithCancel(context.Background())
		tLaunch := time.Now()
		for i := range ws {
			w := &watcher{srv: targets[i%len(targets)]}
			ws[i] = w
			go func() {
				defer func() {
					w.doneAt.Store(true)
					if finished.Add(1) == int64(*n) {
						close(allDone)
					}
				}()
				trace := &httptrace.ClientTrace{
					WroteRequest: func(httptrace.WroteRequestInfo) {
						if !w.sent.Swap(true) {
							sent.Add(1)
						}
					},
					GotFirstResponseByte: func() { w.first = time.Now() },
				}
				url := fmt.Sprintf("%s?index=%d&wait=%s", keyURL(w.srv), idx[w.srv.name], *wait)
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, url, nil)
				resp, err := wclient.Do(req)
				if err != nil {
					w.err = err
					w.done = time.Now()
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				w.done = time.Now()
				w.status, w.err = resp.StatusCode, err
				w.index, _ = strconv.ParseUint(resp.Header.Get("X-Consul-Index"), 10, 64)
				var ents []struct{ Value string }
				if json.Unmarshal(b, &ents) == nil && len(ents) == 1 {
					w.value, _ = base64.StdEncoding.DecodeString(ents[0].Value)
				}
			}()
		}
		// Every request sent…
		deadline := time.Now().Add(60 * time.Second)
		for sent.Load() < int64(*n) {
			if time.Now().After(deadline) {
				cancel()
				fatalf("watch: only %d of %d requests sent after 60s", sent.Load(), *n)
			}
			time.Sleep(5 * time.Millisecond)
		}
		allSentIn := time.Since(tLaunch)
		// …and parked: a blocking-query gauge if the servers have one, else
		// a settle window.
		parked, how := parkedByMetrics(ctl, targets, *n, 30*time.Second)
		if !parked {
			time.Sleep(*settle)
			how = fmt.Sprintf("settle_%s", *settle)
		}
		early := int(finished.Load())
		conns := established(targets)

		// The write.
		newVal := value(100, uint64(r)<<32|1)
		putSent := time.Now()
		_, _, err := do(context.Background(), ctl, http.MethodPut, keyURL(ldr), newVal)
		putAck := time.Now()
		if err != nil {
			cancel()
			fatalf("watch: the PUT: %v", err)
		}
		late := 0
		select {
		case <-allDone:
		case <-time.After(30 * time.Second):
			for _, w := range ws {
				if !w.doneAt.Load() {
					late++
				}
			}
			cancel()
			<-allDone
		}
		cancel()

		var ack, snt []time.Duration
		within := 0
		failed, bad := 0, 0
		var firstErr error
		srvAck := map[string][]time.Duration{}
		for _, w := range ws {
			if w.err != nil || w.status != http.StatusOK {
				failed++
				if firstErr == nil {
					firstErr = w.err
					if firstErr == nil {
						firstErr = fmt.Errorf("HTTP %d", w.status)
					}
				}
				continue
			}
			if !bytes.Equal(w.value, newVal) {
				bad++ // answered before the PUT, or with another value
				continue
			}
			d := w.first.Sub(putAck)
			ack = append(ack, d)
			snt = append(snt, w.first.Sub(putSent))
			srvAck[w.srv.name] = append(srvAck[w.srv.name], d)
			if d <= 100*time.Millisecond {
				within++
			}
		}
		ack, snt = sortDur(ack), sortDur(snt)
		var per []string
		for _, t := range targets {
			l := sortDur(srvAck[t.name])
			role := "follower"
			if t.name == ldr.name {
				role = "leader"
			}
			in100 := 0
			for _, d := range l {
				if d <= 100*time.Millisecond {
					in100++
				}
			}
			per = append(per, fmt.Sprintf("%[1]s_role=%[2]s %[1]s_n=%[3]d %[1]s_p50=%.2[4]f %[1]s_max=%.2[5]f %[1]s_in100=%[6]d %[1]s_conns=%[7]d",
				t.name, role, len(l), ms(pct(l, 0.5)), ms(pct(l, 1)), in100, conns[t.name]))
			perSrvAck[t.name] = append(perSrvAck[t.name], l...)
		}
		fmt.Printf("round=%d index=%d parked_by=%s all_sent_ms=%.0f early=%d failed=%d bad_value=%d late=%d woken=%d within100=%d put_ms=%.2f ack_min_ms=%.2f ack_p50_ms=%.2f ack_p99_ms=%.2f ack_max_ms=%.2f send_p50_ms=%.2f send_p99_ms=%.2f send_max_ms=%.2f %s\n",
			r, idx[targets[0].name], how, ms(allSentIn), early, failed, bad, late, len(ack), within, ms(putAck.Sub(putSent)),
			ms(pct(ack, 0)), ms(pct(ack, 0.5)), ms(pct(ack, 0.99)), ms(pct(ack, 1)),
			ms(pct(snt, 0.5)), ms(pct(snt, 0.99)), ms(pct(snt, 1)), strings.Join(per, " "))
		if firstErr != nil {
			fmt.Fprintf(os.Stderr, "watch round %d: first failure: %v\n", r, firstErr)
		}
		allAck = append(allAck, ack...)
		allSent = append(allSent, snt...)
		totals.early += early
		totals.failed += failed
		totals.bad += bad
		totals.late += late
		time.Sleep(500 * time.Millisecond)
	}
	allAck, allSent = sortDur(allAck), sortDur(allSent)
	within := 0
	for _, d := range allAck {
		if d <= 100*time.Millisecond {
			within++
		}
	}
	var per []string
	for _, t := range targets {
		l := sortDur(perSrvAck[t.name])
		role := "follower"
		if t.name == ldr.name {
			role = "leader"
		}
		in100 := 0
		for _, d := range l {
			if d <= 100*time.Millisecond {
				in100++
			}
		}
		per = append(per, fmt.Sprintf("%[1]s_role=%[2]s %[1]s_n=%[3]d %[1]s_p50=%.2[4]f %[1]s_p99=%.2[5]f %[1]s_max=%.2[6]f %[1]s_in100=%[7]d",
			t.name, role, len(l), ms(pct(l, 0.5)), ms(pct(l, 0.99)), ms(pct(l, 1)), in100))
	}
	fmt.Printf("all watchers=%d woken=%d within100=%d early=%d failed=%d bad_value=%d late=%d ack_min_ms=%.2f ack_p50_ms=%.2f ack_p99_ms=%.2f ack_max_ms=%.2f send_p50_ms=%.2f send_p99_ms=%.2f send_max_ms=%.2f %s\n",
		*n**rounds, len(allAck), within, totals.early, totals.failed, totals.bad, totals.late,
		ms(pct(allAck, 0)), ms(pct(allAck, 0.5)), ms(pct(allAck, 0.99)), ms(pct(allAck, 1)),
		ms(pct(allSent, 0.5)), ms(pct(allSent, 0.99)), ms(pct(allSent, 1)), strings.Join(per, " "))
}

// parkedByMetrics polls the servers' /v1/agent/metrics for a gauge of
// blocking queries (a name containing "blocking", as Consul's
// consul.rpc.queries_blocking) until their sum reaches n. It returns false
// at once when a server has no such endpoint or gauge.
func parkedByMetrics(client *http.Client, servers []*server, n int, within time.Duration) (bool, string) {
	deadline := time.Now().Add(within)
	for {
		sum := 0.0
		name := ""
		for _, s := range servers {
			b, _, err := do(context.Background(), client, http.MethodGet, "http://"+s.http+"/v1/agent/metrics", nil)
			if err != nil {
				return false, ""
			}
			var m struct {
				Gauges []struct {
					Name  string
					Value float64
				}
			}
			if json.Unmarshal(b, &m) != nil {
				return false, ""
			}
			found := false
			for _, g := range m.Gauges {
				if strings.Contains(g.Name, "blocking") {
					sum += g.Value
					name, found = g.Name, true
				}
			}
			if !found {
				return false, ""
			}
		}
		if sum >= float64(n) {
			return true, "metric_" + name
		}
		if time.Now().After(deadline) {
			return false, ""
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// established counts the established TCP connections whose local port is
// each server's HTTP port (the server's side of the watchers'
// connections), from /proc/net/tcp and tcp6.
func established(servers []*server) map[string]int {
	ports := map[string]string{} // hex port -> name
	for _, s := range servers {
		_, p, err := net.SplitHostPort(s.http)
		if err != nil {
			continue
		}
		n, _ := strconv.Atoi(p)
		ports[fmt.Sprintf("%04X", n)] = s.name
	}
	out := map[string]int{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || fields[3] != "01" {
				continue
			}
			_, port, ok := strings.Cut(fields[1], ":")
			if !ok {
				continue
			}
			if name, ok := ports[port]; ok {
				out[name]++
			}
		}
		fh.Close()
	}
	return out
}
