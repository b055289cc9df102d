// Command clusterbench holds the measurements of bench/cluster.sh that need
// more than one HTTP request at a time or sub-millisecond timing:
//
//	clusterbench reads    -url URL -n 2000
//	    sequential GETs of one URL; prints the latency percentiles.
//	clusterbench failover -servers s1=HTTP=RPC=PID,... -round N -acked FILE
//	    finds the leader (GET /v1/status/leader gives its RPC address), runs
//	    -writers clients registering unique services through the followers,
//	    SIGKILLs the leader, and measures the time from the kill to the first
//	    write acknowledged (HTTP 200) among the requests sent after the kill.
//	    Then checks, with ?consistent reads on the survivors, that every
//	    acknowledged write is in the catalog, and appends their names to FILE.
//	clusterbench verify   -http ADDR -acked FILE
//	    the same check on one server (the restarted one, once caught up).
//	clusterbench propagate -http ADDR -dns ADDR -n 50
//	    registers a new service through the HTTP API at ADDR (a server) and
//	    polls the DNS server at -dns (a client agent) every 1 ms until it
//	    answers the service's A record; prints the latency percentiles from
//	    the write's acknowledgement (and from its sending) to the answer.
//
// Results go to stdout as one line of key=value pairs, for the script.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

func main() {
	if len(os.Args) < 2 {
		fatalf("usage: clusterbench reads|failover|verify|propagate [flags]")
	}
	switch os.Args[1] {
	case "reads":
		reads(os.Args[2:])
	case "failover":
		failover(os.Args[2:])
	case "verify":
		verify(os.Args[2:])
	case "propagate":
		propagate(os.Args[2:])
	default:
		fatalf("unknown subcommand %q", os.Args[1])
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "clusterbench: "+format+"\n", args...)
	os.Exit(1)
}

func newClient(timeout time.Duration, conns int) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        4 * conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     30 * time.Second,
		},
	}
}

// ---- reads -------------------------------------------------------------------

func reads(args []string) {
	fs := flag.NewFlagSet("reads", flag.ExitOnError)
	url := fs.String("url", "", "URL to GET")
	n := fs.Int("n", 2000, "measured requests")
	warm := fs.Int("warm", 100, "unmeasured requests first")
	fs.Parse(args)
	client := newClient(10*time.Second, 1)
	get := func() (time.Duration, error) {
		t0 := time.Now()
		resp, err := client.Get(*url)
		if err != nil {
			return 0, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(t0)
		if err != nil {
			return 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return d, nil
	}
	for i := 0; i < *warm; i++ {
		get()
	}
	lat := make([]time.Duration, 0, *n)
	errs := 0
	var firstErr error
	t0 := time.Now()
	for i := 0; i < *n; i++ {
		d, err := get()
		if err != nil {
			errs++
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		lat = append(lat, d)
	}
	wall := time.Since(t0)
	if len(lat) == 0 {
		fatalf("reads: every request failed: %v", firstErr)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		i := int(p*float64(len(lat))+0.5) - 1
		i = max(0, min(i, len(lat)-1))
		return ms(lat[i])
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	fmt.Printf("n=%d errors=%d p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f mean_ms=%.3f rps=%.0f\n",
		len(lat), errs, pct(0.50), pct(0.90), pct(0.99), ms(lat[len(lat)-1]),
		ms(sum/time.Duration(len(lat))), float64(*n)/wall.Seconds())
	if firstErr != nil {
		fmt.Fprintf(os.Stderr, "reads: first error: %v\n", firstErr)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ---- failover ----------------------------------------------------------------

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
	return out
}

func leaderOf(client *http.Client, httpAddr string) (string, error) {
	resp, err := client.Get("http://" + httpAddr + "/v1/status/leader")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var l string
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		return "", err
	}
	return l, nil
}

type ack struct {
	name       string
	sent, done time.Time
}

func failover(args []string) {
	fs := flag.NewFlagSet("failover", flag.ExitOnError)
	serversFlag := fs.String("servers", "", "name=http=rpc=pid,... for every server")
	writers := fs.Int("writers", 4, "concurrent writers, spread over the followers")
	round := fs.Int("round", 1, "round number (part of the service names)")
	pre := fs.Duration("pre", 2*time.Second, "write load before the kill")
	post := fs.Duration("post", 2*time.Second, "write load after the first acknowledged write after the kill")
	maxWait := fs.Duration("max", 30*time.Second, "give up waiting for a write after the kill after this long")
	timeout := fs.Duration("timeout", time.Second, "client timeout of one write (then the writer sends the next one)")
	ackedFile := fs.String("acked", "", "append the names of acknowledged writes to this file")
	fs.Parse(args)
	servers := parseServers(*serversFlag)
	ctl := newClient(2*time.Second, 2)

	// The leader, as every server that answers sees it.
	var leader *server
	leaderRPC := ""
	for _, s := range servers {
		l, err := leaderOf(ctl, s.http)
		if err != nil || l == "" {
			continue
		}
		if leaderRPC != "" && l != leaderRPC {
			fatalf("servers disagree on the leader: %s and %s", leaderRPC, l)
		}
		leaderRPC = l
	}
	for i := range servers {
		if servers[i].rpc == leaderRPC {
			leader = &servers[i]
		}
	}
	if leader == nil {
		fatalf("leader %q is none of the servers' RPC addresses", leaderRPC)
	}
	var followers []server
	for _, s := range servers {
		if s.name != leader.name {
			followers = append(followers, s)
		}
	}

	var (
		mu      sync.Mutex
		acks    []ack
		errs    int
		lastErr error
		killAt  time.Time // zero until the kill
		gotPost = make(chan struct{})
		once    sync.Once
	)
	ctx, cancel := context.WithCancel(context.Background())
	client := newClient(*timeout, *writers)
	var wg sync.WaitGroup
	for w := 0; w < *writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			url := "http://" + followers[w%len(followers)].http + "/v1/catalog/register"
			for seq := 0; ctx.Err() == nil; seq++ {
				name := fmt.Sprintf("fo%d-w%d-%d", *round, w, seq)
				body, _ := json.Marshal(map[string]any{
					"Node": "failover-node", "Address": "10.9.9.9",
					"Service": map[string]any{"ID": name, "Service": name, "Port": 9000},
				})
				sent := time.Now()
				err := put(ctx, client, url, body)
				done := time.Now()
				mu.Lock()
				if err == nil {
					acks = append(acks, ack{name, sent, done})
					if !killAt.IsZero() && !sent.Before(killAt) {
						once.Do(func() { close(gotPost) })
					}
				} else if ctx.Err() == nil {
					errs++
					lastErr = err
				}
				mu.Unlock()
				if err != nil {
					select {
					case <-ctx.Done():
					case <-time.After(10 * time.Millisecond):
					}
				}
			}
		}()
	}

	time.Sleep(*pre)
	mu.Lock()
	ackedBefore := len(acks)
	killAt = time.Now()
	err := syscall.Kill(leader.pid, syscall.SIGKILL)
	mu.Unlock()
	if err != nil {
		cancel()
		fatalf("kill %s (pid %d): %v", leader.name, leader.pid, err)
	}
	timedOut := false
	select {
	case <-gotPost:
		time.Sleep(*post)
	case <-time.After(*maxWait):
		timedOut = true
	}
	cancel()
	wg.Wait()

	// Failover: the first acknowledgement of a request sent after the kill.
	// Also, for information, the first acknowledgement received after the kill
	// of any request (one in flight at the kill may have committed before it).
	var first, firstAny time.Duration = -1, -1
	afterKill := 0
	for _, a := range acks {
		if !a.sent.Before(killAt) {
			afterKill++
			if d := a.done.Sub(killAt); first < 0 || d < first {
				first = d
			}
		}
		if a.done.After(killAt) {
			if d := a.done.Sub(killAt); firstAny < 0 || d < firstAny {
				firstAny = d
			}
		}
	}
	errsAfter := errs

	// Every acknowledged write must be readable on the survivors.
	names := make([]string, len(acks))
	for i, a := range acks {
		names[i] = a.name
	}
	if *ackedFile != "" {
		f, err := os.OpenFile(*ackedFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			fatalf("%v", err)
		}
		w := bufio.NewWriter(f)
		for _, n := range names {
			fmt.Fprintln(w, n)
		}
		w.Flush()
		f.Close()
	}
	var lost []string
	newLeader := ""
	for _, s := range followers {
		n, err := missing(s.http, names, 20*time.Second)
		if err != nil {
			fatalf("checking acknowledged writes on %s: %v", s.name, err)
		}
		lost = append(lost, fmt.Sprintf("lost_%s=%d", s.name, n))
		if l, err := leaderOf(ctl, s.http); err == nil && l != "" {
			newLeader = l
		}
	}
	status := "ok"
	if timedOut {
		status = "timeout"
	}
	fmt.Printf("status=%s killed=%s leader_rpc=%s new_leader_rpc=%s failover_ms=%.0f first_ack_any_ms=%.0f acked=%d acked_before_kill=%d acked_sent_after_kill=%d write_errors=%d %s\n",
		status, leader.name, leaderRPC, newLeader, ms(first), ms(firstAny), len(acks), ackedBefore, afterKill, errsAfter, strings.Join(lost, " "))
	if lastErr != nil {
		fmt.Fprintf(os.Stderr, "failover: last write error: %v\n", lastErr)
	}
}

func put(ctx context.Context, client *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}

// missing counts the names absent from GET /v1/catalog/services?consistent
// on httpAddr, retrying the read (not the count) until it succeeds.
func missing(httpAddr string, names []string, within time.Duration) (int, error) {
	client := newClient(10*time.Second, 1)
	deadline := time.Now().Add(within)
	var lastErr error
	for time.Now().Before(deadline) {
		resp, err := client.Get("http://" + httpAddr + "/v1/catalog/services?consistent")
		if err == nil {
			var svcs map[string][]string
			if resp.StatusCode == http.StatusOK {
				err = json.NewDecoder(resp.Body).Decode(&svcs)
			} else {
				err = fmt.Errorf("HTTP %d", resp.StatusCode)
			}
			resp.Body.Close()
			if err == nil {
				n := 0
				for _, name := range names {
					if _, ok := svcs[name]; !ok {
						n++
					}
				}
				return n, nil
			}
		}
		lastErr = err
		time.Sleep(200 * time.Millisecond)
	}
	return 0, errors.Join(errors.New("no successful consistent read"), lastErr)
}

func verify(args []string) {
	fs := flag.NewFlagSet("verify", flag.ExitOnError)
	httpAddr := fs.String("http", "", "server HTTP address")
	ackedFile := fs.String("acked", "", "file of acknowledged service names")
	fs.Parse(args)
	data, err := os.ReadFile(*ackedFile)
	if err != nil {
		fatalf("%v", err)
	}
	names := strings.Fields(string(data))
	n, err := missing(*httpAddr, names, 20*time.Second)
	if err != nil {
		fatalf("%v", err)
	}
	fmt.Printf("checked=%d lost=%d\n", len(names), n)
}

// ---- propagate -----------------------------------------------------------------

func propagate(args []string) {
	fs := flag.NewFlagSet("propagate", flag.ExitOnError)
	httpAddr := fs.String("http", "", "HTTP address to write through")
	dnsAddr := fs.String("dns", "", "DNS address to watch")
	n := fs.Int("n", 50, "writes")
	fs.Parse(args)
	client := newClient(10*time.Second, 1)
	dc := &dns.Client{Net: "udp", Timeout: time.Second}
	fromAck := make([]time.Duration, 0, *n)
	fromSend := make([]time.Duration, 0, *n)
	stamp := time.Now().UnixNano()
	for i := 0; i < *n; i++ {
		name := fmt.Sprintf("prop-%d-%d", stamp, i)
		body := fmt.Sprintf(`{"Node":"prop-node","Address":"10.9.0.1","Service":{"ID":%q,"Service":%q,"Address":"10.9.%d.%d","Port":80}}`,
			name, name, (i/250)%250, i%250+1)
		sent := time.Now()
		if err := put(context.Background(), client, "http://"+*httpAddr+"/v1/catalog/register", []byte(body)); err != nil {
			fatalf("propagate: register %s: %v", name, err)
		}
		acked := time.Now()
		q := new(dns.Msg)
		q.SetQuestion(name+".service.consul.", dns.TypeA)
		deadline := acked.Add(10 * time.Second)
		for {
			r, _, err := dc.Exchange(q, *dnsAddr)
			if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
				break
			}
			if time.Now().After(deadline) {
				fatalf("propagate: %s not answered by %s within 10 s", name, *dnsAddr)
			}
			time.Sleep(time.Millisecond)
		}
		seen := time.Now()
		fromAck = append(fromAck, seen.Sub(acked))
		fromSend = append(fromSend, seen.Sub(sent))
	}
	pct := func(lat []time.Duration, p float64) float64 {
		sorted := append([]time.Duration(nil), lat...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
		i := int(p*float64(len(sorted))+0.5) - 1
		return ms(sorted[max(0, min(i, len(sorted)-1))])
	}
	fmt.Printf("n=%d ack_p50_ms=%.2f ack_p99_ms=%.2f ack_max_ms=%.2f send_p50_ms=%.2f send_p99_ms=%.2f send_max_ms=%.2f\n",
		*n, pct(fromAck, 0.5), pct(fromAck, 0.99), pct(fromAck, 1), pct(fromSend, 0.5), pct(fromSend, 0.99), pct(fromSend, 1))
}
