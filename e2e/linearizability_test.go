package e2e

import (
	"cmp"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/hashicorp/consul/api"
)

// TestLinearizableKVUnderLeaderKills checks that the KV store is
// linearizable while its leader is SIGKILLed (or, one time in three,
// frozen with SIGSTOP and thawed once another leads) over and over.
//
// Six clients, each with its own HTTP connections and a request timeout of
// a few seconds, send operations on three keys, back to back, to the three
// servers in turn: consistent reads (GET /v1/kv/k?consistent, or a
// read-only /v1/txn get with ?consistent), writes of unique values (PUT
// /v1/kv/k, or a /v1/txn set, which answers the new ModifyIndex), and
// compare-and-swaps on the ModifyIndex of a value the client read (PUT
// /v1/kv/k?cas=i, or a /v1/txn cas). Meanwhile the test goroutine kills the
// leader (or freezes it), waits for the survivors to elect another and
// acknowledge writes, restarts the killed server (or thaws the frozen one),
// and does it again.
// Every operation is recorded with its call and return times, and the
// history is checked against a sequential model of a register per key with
// porcupine (partitioned by key).
//
// The model. The state of a key is its value ("" while it does not exist)
// and, when some operation reported it, the ModifyIndex of that value.
// Every written value is unique, so every value names exactly one write,
// whose ModifyIndex is the Raft index of that write: a ModifyIndex names
// the value it was written with and the other way round (the test checks
// this of everything it saw before running porcupine). So a CAS with index
// i, where i was read together with value w, succeeds if and only if the
// key holds w: the model checks CAS on the value, and on the index too when
// the state knows it. Writes are applied in Raft order, so a write's new
// ModifyIndex must be above the one it replaces. Reads must return the
// state's value (and its index, once known).
//
// Unknown outcomes. A write that got no definite answer — a timeout, a
// connection that broke, a 5xx (the server may have handed it to a leader
// that committed it) — may have taken effect at any time after it was sent,
// or never: it is recorded with a return time of math.MaxInt64 and an
// "unknown" output, which the model always accepts, applying the write
// (porcupine may place it after everything else, which is the same as it
// never happening). The client then carries on as a new porcupine client,
// as Jepsen does with a crashed process. A write refused at connect time
// never reached a server and is left out; so is a read that failed, which
// has no effect.
//
// It runs about 18 s of operations (at least two kills and a freeze), then checks
// the history with a 60 s limit. BEACON_LINEARIZABILITY_SECONDS=N runs N
// seconds instead (a soak run: more keys, so each partition stays small,
// and a longer check limit).
func TestLinearizableKVUnderLeaderKills(t *testing.T) {
	t.Parallel()
	run := 18 * time.Second
	soak := false
	if v, err := strconv.Atoi(os.Getenv("BEACON_LINEARIZABILITY_SECONDS")); err == nil && v > 0 {
		run, soak = time.Duration(v)*time.Second, true
	}
	const (
		workers   = 6
		minKills  = 2
		minPauses = 1
		// reqTimeout makes a request to a killed or stuck server fail
		// fast; a write then has an unknown outcome.
		reqTimeout = 4 * time.Second
		// pace is the pause between a client's operations: it bounds the
		// history (porcupine's check is exponential in the worst case)
		// and leaves the agents CPU on a loaded machine. It is not
		// synchronisation.
		pace = 10 * time.Millisecond
	)
	nkeys := 3
	checkTimeout := 60 * time.Second
	if soak {
		nkeys = max(3, 3*int(run/(20*time.Second)))
		checkTimeout = max(checkTimeout, run)
	}
	keys := make([]string, nkeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("lin/k%d", i)
	}

	agents := StartCluster(t, 3)
	h := &linHistory{start: time.Now()}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var stopOnce sync.Once
	stopClients := func() {
		stopOnce.Do(func() {
			close(stop)
			wg.Wait()
		})
	}
	defer stopClients() // also when the test fails early
	for w := range workers {
		c := newLinClient(t, h, w, agents, keys, reqTimeout)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.close()
			c.loop(stop, pace)
		}()
	}

	// Chaos, in the test goroutine: Kill, Restart and leaderOf may fail
	// the test, which only the test goroutine may do.
	waitWrites := func(n int64, what string) {
		t.Helper()
		base := h.writesOK.Load()
		eventually(t, 30*time.Second, func() error {
			if got := h.writesOK.Load() - base; got < n {
				return fmt.Errorf("%d of %d writes acknowledged %s", got, n, what)
			}
			return nil
		})
	}
	began := time.Now()
	kills, pauses := 0, 0
	var failovers []time.Duration
	for round := 0; kills < minKills || pauses < minPauses || time.Since(began) < run; round++ {
		waitWrites(20, "before stopping the leader")
		leader := selfLeader(t, agents)
		// Every third round the leader is frozen (SIGSTOP) rather than
		// killed: when it thaws it still believes it leads until it hears
		// of the new term, the moment a read that does not verify its
		// leadership after reading would be stale.
		pause := round%3 == 2
		p := leader.process()
		if pause {
			if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatalf("freezing %s: %v", leader.Opts.Node, err)
			}
			pauses++
		} else {
			leader.Kill(t)
			kills++
		}
		stopped := time.Now()
		next := leaderOtherThan(t, agents, leader)
		waitWrites(10, fmt.Sprintf("after %s was stopped and %s leads", leader.Opts.Node, next.Opts.Node))
		failovers = append(failovers, time.Since(stopped))
		if pause {
			if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatalf("thawing %s: %v", leader.Opts.Node, err)
			}
			eventually(t, 20*time.Second, leader.readyCheck)
		} else {
			leader.Restart(t)
		}
	}
	stopClients()

	// A last consistent read of every key, once the cluster is whole again.
	final := newLinClient(t, h, workers, agents, keys, reqTimeout)
	for i, key := range keys {
		eventually(t, 20*time.Second, func() error {
			return final.get(i%len(agents), key, i%2 == 0)
		})
	}
	final.close()

	ops := h.operations()
	st := h.stats()
	t.Logf("%d operations in %v on %d keys: %d writes acknowledged (%d puts, %d CAS swapped), %d CAS refused, %d reads; "+
		"%d writes with an unknown outcome, %d writes refused at connect and %d failed reads left out; "+
		"%d leader kills and %d freezes, writes acknowledged again %v after each",
		len(ops), time.Since(began).Round(time.Millisecond), len(keys), h.writesOK.Load(), st.puts, st.casOK, st.casFail, st.reads,
		st.unknown, st.refused, st.readErrs, kills, pauses, roundAll(failovers))
	t.Logf("writes with an unknown outcome, why:%s\nreads that failed, why:%s", countsString(st.unknownWhy), countsString(st.readErrWhy))
	if len(h.unexpected) > 0 {
		t.Errorf("unexpected answers:\n%s", strings.Join(h.unexpected, "\n"))
	}
	if err := checkIndexesNameValues(ops); err != nil {
		t.Errorf("the servers disagree with themselves: %v", err)
	}

	model := linModel()
	checkStart := time.Now()
	res, info := porcupine.CheckOperationsVerbose(model, ops, checkTimeout)
	took := time.Since(checkStart)
	t.Logf("porcupine: %s in %v", res, took.Round(time.Millisecond))
	if res != porcupine.Ok {
		path := writeVisualization(t, model, info)
		switch res {
		case porcupine.Illegal:
			t.Errorf("the KV history is NOT linearizable; the visualization is %s (open it in a browser: "+
				"the partition of the key that has no full linearization shows the longest one and where it failed)\n%s",
				path, explainIllegal(model, ops, info))
		default:
			t.Errorf("porcupine could not decide within %v whether the history of %d operations is linearizable (%s); "+
				"the partial visualization is %s", checkTimeout, len(ops), res, path)
		}
	}

	// The run must have exercised something.
	if kills < minKills || pauses < minPauses {
		t.Errorf("%d leader kills and %d freezes, want at least %d and %d", kills, pauses, minKills, minPauses)
	}
	if n := h.writesOK.Load(); n < 100 {
		t.Errorf("%d writes acknowledged, want at least 100", n)
	}
	if st.reads < 100 {
		t.Errorf("%d reads answered, want at least 100", st.reads)
	}
	if st.casOK < 10 || st.casFail < 1 {
		t.Errorf("%d CAS swapped and %d refused, want at least 10 and 1", st.casOK, st.casFail)
	}
}

// selfLeader is the running server that says it leads, asked of itself.
func selfLeader(t *testing.T, agents []*Agent) *Agent {
	t.Helper()
	var leader *Agent
	eventually(t, 20*time.Second, func() error {
		l := leaderOf(t, agents)
		addr, err := l.Client.Status().Leader()
		if err != nil || addr != l.RPCAddr {
			return fmt.Errorf("%s was named leader, but it names %q (%v)", l.Opts.Node, addr, err)
		}
		leader = l
		return nil
	})
	return leader
}

// leaderOtherThan is the server, other than old, that the others name as
// leader and that names itself.
func leaderOtherThan(t *testing.T, agents []*Agent, old *Agent) *Agent {
	t.Helper()
	var leader *Agent
	eventually(t, 20*time.Second, func() error {
		for _, a := range agents {
			if a == old {
				continue
			}
			addr, err := a.Client.Status().Leader()
			if err != nil || addr == "" || addr == old.RPCAddr {
				continue
			}
			for _, b := range agents {
				if b != old && b.RPCAddr == addr {
					if self, err := b.Client.Status().Leader(); err == nil && self == addr {
						leader = b
						return nil
					}
				}
			}
		}
		return fmt.Errorf("no leader other than %s yet", old.Opts.Node)
	})
	return leader
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

func writeVisualization(t *testing.T, model porcupine.Model, info porcupine.LinearizationInfo) string {
	t.Helper()
	// Not under t.TempDir: it must outlive the test.
	f, err := os.CreateTemp("", "beacon-linearizability-*.html")
	if err != nil {
		t.Logf("creating the visualization file: %v", err)
		return "(none)"
	}
	path := f.Name()
	f.Close()
	if err := porcupine.VisualizePath(model, info, path); err != nil {
		t.Logf("writing the visualization: %v", err)
	}
	return path
}

// explainIllegal describes, for each key whose history has no
// linearization, the end of the longest partial linearization found (with
// the state after each step) and the operations that could not follow it,
// earliest deadline first.
func explainIllegal(model porcupine.Model, ops []porcupine.Operation, info porcupine.LinearizationInfo) string {
	describe := func(op porcupine.Operation) string {
		ret := "never"
		if op.Return != math.MaxInt64 {
			ret = time.Duration(op.Return).Round(time.Microsecond).String()
		}
		return fmt.Sprintf("[%v, %s] client %d: %s (%s)", time.Duration(op.Call).Round(time.Microsecond), ret, op.ClientId,
			model.DescribeOperation(op.Input, op.Output), model.DescribeOperationMetadata(op.Metadata))
	}
	var b strings.Builder
	partitions := model.Partition(ops)
	partials := info.PartialLinearizationsOperations()
	for p, part := range partitions {
		if p >= len(partials) {
			break
		}
		var longest []porcupine.Operation
		for _, l := range partials[p] {
			if len(l) > len(longest) {
				longest = l
			}
		}
		if len(longest) == len(part) {
			continue
		}
		key := part[0].Input.(linInput).key
		fmt.Fprintf(&b, "key %s: %d of its %d operations linearize at most; the last of them:\n", key, len(longest), len(part))
		state := model.Init()
		for i, op := range longest {
			_, state = model.Step(state, op.Input, op.Output)
			if i >= len(longest)-8 {
				fmt.Fprintf(&b, "    %s => %s\n", describe(op), model.DescribeState(state))
			}
		}
		done := map[[2]int64]bool{}
		for _, op := range longest {
			done[[2]int64{op.Call, int64(op.ClientId)}] = true
		}
		var rest []porcupine.Operation
		for _, op := range part {
			if !done[[2]int64{op.Call, int64(op.ClientId)}] {
				rest = append(rest, op)
			}
		}
		slices.SortFunc(rest, func(x, y porcupine.Operation) int {
			if x.Return != y.Return {
				return cmp.Compare(x.Return, y.Return)
			}
			return cmp.Compare(x.Call, y.Call)
		})
		fmt.Fprintf(&b, "  and the operations left, earliest return first (none of them can come next):\n")
		for i, op := range rest {
			if i == 8 {
				break
			}
			fmt.Fprintf(&b, "    %s\n", describe(op))
		}
	}
	return b.String()
}

// ---- the model ----

type linKind uint8

const (
	linGet linKind = iota
	linPut
	linCAS
)

// linInput is an operation on one key.
type linInput struct {
	kind  linKind
	key   string
	value string // put, cas: the value written
	from  string // cas: the value the client read with index
	index uint64 // cas: the ModifyIndex the swap is conditioned on
}

// linOutput is what the server answered.
type linOutput struct {
	unknown bool   // a write without a definite answer: it may or may not have happened
	ok      bool   // cas: swapped
	found   bool   // get: the key exists
	value   string // get
	index   uint64 // get: ModifyIndex; put, cas: the new ModifyIndex, 0 when the endpoint does not tell
}

// linState is one key: its value ("" = absent) and the value's ModifyIndex,
// 0 while no operation has told it.
type linState struct {
	value string
	index uint64
}

// linMeta is shown in the visualization's tooltips.
type linMeta struct {
	server string
	via    string
	err    string
}

func linModel() porcupine.Model {
	return porcupine.Model{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			byKey := map[string][]porcupine.Operation{}
			var keys []string
			for _, op := range history {
				k := op.Input.(linInput).key
				if _, ok := byKey[k]; !ok {
					keys = append(keys, k)
				}
				byKey[k] = append(byKey[k], op)
			}
			slices.Sort(keys)
			out := make([][]porcupine.Operation, 0, len(keys))
			for _, k := range keys {
				out = append(out, byKey[k])
			}
			return out
		},
		Init: func() any { return linState{} },
		Step: func(state, input, output any) (bool, any) {
			st, in, out := state.(linState), input.(linInput), output.(linOutput)
			switch in.kind {
			case linGet:
				if !out.found {
					return st.value == "", st
				}
				if out.value != st.value || (st.index != 0 && out.index != st.index) {
					return false, st
				}
				return true, linState{value: st.value, index: out.index}
			case linPut:
				if out.unknown {
					return true, linState{value: in.value}
				}
				if out.index != 0 && out.index <= st.index {
					return false, st
				}
				return true, linState{value: in.value, index: out.index}
			case linCAS:
				match := st.value == in.from && (st.index == 0 || st.index == in.index)
				switch {
				case out.unknown:
					if match {
						return true, linState{value: in.value}
					}
					return true, st
				case out.ok:
					if !match || (out.index != 0 && out.index <= in.index) {
						return false, st
					}
					return true, linState{value: in.value, index: out.index}
				default:
					return !match, st
				}
			}
			return false, st
		},
		Hash: func(state any) uint64 {
			st := state.(linState)
			h := fnv.New64a()
			h.Write([]byte(st.value))
			return h.Sum64() ^ st.index*0x9e3779b97f4a7c15
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(linInput), output.(linOutput)
			var res string
			switch {
			case out.unknown:
				res = "unknown"
			case in.kind == linGet && !out.found:
				res = "absent"
			case in.kind == linGet:
				res = fmt.Sprintf("%s@%d", out.value, out.index)
			case in.kind == linCAS && !out.ok:
				res = "refused"
			default:
				res = "ok"
				if out.index != 0 {
					res += fmt.Sprintf(" @%d", out.index)
				}
			}
			switch in.kind {
			case linGet:
				return fmt.Sprintf("get(%s) -> %s", in.key, res)
			case linPut:
				return fmt.Sprintf("put(%s, %s) -> %s", in.key, in.value, res)
			default:
				return fmt.Sprintf("cas(%s, %s@%d -> %s) -> %s", in.key, in.from, in.index, in.value, res)
			}
		},
		DescribeState: func(state any) string {
			st := state.(linState)
			switch {
			case st.value == "":
				return "absent"
			case st.index == 0:
				return st.value + "@?"
			}
			return fmt.Sprintf("%s@%d", st.value, st.index)
		},
		DescribeOperationMetadata: func(info any) string {
			m, ok := info.(linMeta)
			if !ok {
				return ""
			}
			s := "via " + m.via + " on " + m.server
			if m.err != "" {
				s += ": " + m.err
			}
			return s
		},
	}
}

// checkIndexesNameValues checks what the model relies on: every ModifyIndex
// seen names one value of one key, and every value has one ModifyIndex.
func checkIndexesNameValues(ops []porcupine.Operation) error {
	type kv struct{ key, value string }
	byIndex := map[uint64]kv{}
	byValue := map[kv]uint64{}
	var errs []error
	see := func(key, value string, index uint64) {
		if index == 0 {
			return
		}
		v := kv{key, value}
		if prev, ok := byIndex[index]; ok && prev != v {
			errs = append(errs, fmt.Errorf("ModifyIndex %d seen with %s=%s and %s=%s", index, prev.key, prev.value, key, value))
		}
		byIndex[index] = v
		if prev, ok := byValue[v]; ok && prev != index {
			errs = append(errs, fmt.Errorf("%s=%s seen with ModifyIndex %d and %d", key, value, prev, index))
		}
		byValue[v] = index
	}
	for _, op := range ops {
		in, out := op.Input.(linInput), op.Output.(linOutput)
		switch {
		case in.kind == linGet && out.found:
			see(in.key, out.value, out.index)
		case in.kind == linPut && !out.unknown:
			see(in.key, in.value, out.index)
		case in.kind == linCAS && out.ok:
			see(in.key, in.value, out.index)
		}
		if in.kind == linCAS {
			see(in.key, in.from, in.index) // read by the client before
		}
	}
	return errors.Join(errs...)
}

// ---- the history ----

type linHistory struct {
	start    time.Time
	writesOK atomic.Int64 // acknowledged puts and swapped CAS, for the chaos loop
	clients  atomic.Int64 // porcupine client ids handed out

	mu         sync.Mutex
	ops        []porcupine.Operation
	st         linStats
	unexpected []string
}

type linStats struct {
	puts, casOK, casFail, reads, unknown, refused, readErrs int
	// why writes had an unknown outcome and reads failed, by kind of error
	unknownWhy, readErrWhy map[string]int
}

// now is the time since the start, for Call and Return.
func (h *linHistory) now() int64 { return int64(time.Since(h.start)) }

func (h *linHistory) clientID() int { return int(h.clients.Add(1) - 1) }

func (h *linHistory) add(op porcupine.Operation) {
	in, out := op.Input.(linInput), op.Output.(linOutput)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, op)
	switch {
	case out.unknown:
		h.st.unknown++
	case in.kind == linGet:
		h.st.reads++
	case in.kind == linPut:
		h.st.puts++
	case out.ok:
		h.st.casOK++
	default:
		h.st.casFail++
	}
	if (in.kind == linPut || in.kind == linCAS && out.ok) && !out.unknown {
		h.writesOK.Add(1)
	}
}

func (h *linHistory) count(f func(*linStats)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f(&h.st)
}

func (h *linHistory) odd(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.unexpected) < 20 {
		h.unexpected = append(h.unexpected, fmt.Sprintf(format, args...))
	}
}

func bump(m *map[string]int, k string) {
	if *m == nil {
		*m = map[string]int{}
	}
	(*m)[k]++
}

// errKind sorts a failed request's error for the log.
func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection to the agent broken"
	}
	// An error the agent answered: without addresses, so alike ones add up.
	msg := strings.Join(strings.Fields(err.Error()), " ")
	msg = strings.TrimPrefix(msg, "Failed request: ")
	if m := httpStatusRE.FindStringSubmatch(msg); m != nil {
		msg = "HTTP " + m[1] + ": " + m[2]
	}
	msg = addrRE.ReplaceAllString(msg, "ADDR")
	if len(msg) > 100 {
		msg = msg[:100] + "…"
	}
	return msg
}

var (
	httpStatusRE = regexp.MustCompile(`^Unexpected response code: (\d+) \((.*)\)$`)
	addrRE       = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+:\d+`)
)

// countsString renders error counts, most frequent first.
func countsString(m map[string]int) string {
	kinds := slices.Collect(maps.Keys(m))
	slices.SortFunc(kinds, func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b)) })
	var b strings.Builder
	for _, k := range kinds {
		fmt.Fprintf(&b, "\n    %4d× %s", m[k], k)
	}
	if b.Len() == 0 {
		return " none"
	}
	return b.String()
}

func (h *linHistory) operations() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ops)
}

func (h *linHistory) stats() linStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.st
	st.unknownWhy, st.readErrWhy = maps.Clone(st.unknownWhy), maps.Clone(st.readErrWhy)
	return st
}

// ---- a client ----

// linClient is one client: its own connections to every server, the last
// value it read of each key, and its porcupine client id.
type linClient struct {
	h         *linHistory
	w         int
	agents    []*Agent
	apis      []*api.Client
	transport *http.Transport
	keys      []string
	rng       *rand.Rand
	id        int
	seq       int
	lastRead  map[string]linState
}

func newLinClient(t *testing.T, h *linHistory, w int, agents []*Agent, keys []string, timeout time.Duration) *linClient {
	t.Helper()
	return newLinClientVia(t, h, w, agents, keys, timeout, nil)
}

// newLinClientVia is newLinClient whose requests go through wrap(its
// transport) when wrap is not nil (the partition test times every request).
func newLinClientVia(t *testing.T, h *linHistory, w int, agents []*Agent, keys []string, timeout time.Duration,
	wrap func(http.RoundTripper) http.RoundTripper) *linClient {
	t.Helper()
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     30 * time.Second,
	}
	var rt http.RoundTripper = tr
	if wrap != nil {
		rt = wrap(tr)
	}
	httpClient := &http.Client{Transport: rt, Timeout: timeout}
	c := &linClient{
		h: h, w: w, agents: agents, transport: tr, keys: keys,
		rng:      rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano()))),
		id:       h.clientID(),
		lastRead: map[string]linState{},
	}
	for _, a := range agents {
		cfg := api.DefaultConfig()
		cfg.Address = a.HTTPAddr
		cfg.Scheme = "http"
		cfg.Token = ""
		cfg.HttpClient = httpClient
		ac, err := api.NewClient(cfg)
		if err != nil {
			t.Fatalf("api.NewClient: %v", err)
		}
		c.apis = append(c.apis, ac)
	}
	return c
}

func (c *linClient) close() { c.transport.CloseIdleConnections() }

// loop sends operations, each to the next server, until stop is closed.
func (c *linClient) loop(stop <-chan struct{}, pace time.Duration) {
	timer := time.NewTimer(pace)
	defer timer.Stop()
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		_ = c.step(n)
		timer.Reset(pace)
		select {
		case <-stop:
			return
		case <-timer.C:
		}
	}
}

// step sends the client's n-th operation (a read-then-swap is one) to the
// next server, and returns the error of a request that got no definite
// answer.
func (c *linClient) step(n int) error {
	srv := (c.w + n) % len(c.apis)
	key := c.keys[c.rng.IntN(len(c.keys))]
	viaTxn := c.rng.IntN(2) == 0
	switch p := c.rng.IntN(10); {
	case p < 3:
		return c.get(srv, key, viaTxn)
	case p < 6:
		return c.put(srv, key, viaTxn)
	default:
		// Mostly read-then-swap (the read is an operation of its own),
		// which mostly swaps; sometimes swap on an older read, which
		// mostly is refused.
		last, ok := c.lastRead[key]
		if !ok || c.rng.IntN(4) != 0 {
			if err := c.get(srv, key, c.rng.IntN(2) == 0); err != nil {
				return err
			}
			srv = (srv + 1) % len(c.apis)
			last, ok = c.lastRead[key]
		}
		if ok && last.value != "" {
			return c.cas(srv, key, last, viaTxn)
		}
	}
	return nil
}

func (c *linClient) nextValue() string {
	c.seq++
	return fmt.Sprintf("c%d-%d", c.w, c.seq)
}

// record adds an operation with a definite outcome.
func (c *linClient) record(in linInput, out linOutput, call, ret int64, srv int, via string) {
	c.h.add(porcupine.Operation{ClientId: c.id, Input: in, Output: out, Call: call, Return: ret,
		Metadata: linMeta{server: c.agents[srv].Opts.Node, via: via}})
}

// recordWriteErr records a write that failed with err: left out when it
// never reached a server, else with an unknown outcome. The client goes on
// as a new porcupine client: this operation stays open for ever.
func (c *linClient) recordWriteErr(in linInput, err error, call int64, srv int, via string) {
	if errors.Is(err, syscall.ECONNREFUSED) {
		c.h.count(func(s *linStats) { s.refused++ })
		return
	}
	c.h.count(func(s *linStats) { bump(&s.unknownWhy, errKind(err)) })
	c.h.add(porcupine.Operation{ClientId: c.id, Input: in, Output: linOutput{unknown: true}, Call: call, Return: math.MaxInt64,
		Metadata: linMeta{server: c.agents[srv].Opts.Node, via: via, err: err.Error()}})
	c.id = c.h.clientID()
}

// get reads key with a linearizable read; a failed read is left out (it
// has no effect) and returned.
func (c *linClient) get(srv int, key string, viaTxn bool) error {
	in := linInput{kind: linGet, key: key}
	q := &api.QueryOptions{RequireConsistent: true}
	var out linOutput
	var err error
	via := "GET /v1/kv?consistent"
	call := c.h.now()
	if viaTxn {
		via = "txn get?consistent"
		var ok bool
		var resp *api.KVTxnResponse
		ok, resp, _, err = c.apis[srv].KV().Txn(api.KVTxnOps{{Verb: api.KVGet, Key: key}}, q)
		switch {
		case err != nil:
		case ok && len(resp.Results) == 1 && resp.Results[0] != nil:
			out = linOutput{found: true, value: string(resp.Results[0].Value), index: resp.Results[0].ModifyIndex}
		case !ok && len(resp.Errors) == 1 && strings.Contains(resp.Errors[0].What, "doesn't exist"):
			out = linOutput{}
		default:
			err = fmt.Errorf("txn get answered ok=%v %+v", ok, resp)
			c.h.odd("%s on %s: %v", via, c.agents[srv].Opts.Node, err)
		}
	} else {
		var p *api.KVPair
		p, _, err = c.apis[srv].KV().Get(key, q)
		if err == nil && p != nil {
			out = linOutput{found: true, value: string(p.Value), index: p.ModifyIndex}
		}
	}
	ret := c.h.now()
	if err != nil {
		c.h.count(func(s *linStats) {
			s.readErrs++
			bump(&s.readErrWhy, errKind(err))
		})
		return err
	}
	c.record(in, out, call, ret, srv, via)
	c.lastRead[key] = linState{value: out.value, index: out.index}
	return nil
}

func (c *linClient) put(srv int, key string, viaTxn bool) error {
	in := linInput{kind: linPut, key: key, value: c.nextValue()}
	var out linOutput
	var err error
	via := "PUT /v1/kv"
	call := c.h.now()
	if viaTxn {
		via = "txn set"
		var ok bool
		var resp *api.KVTxnResponse
		ok, resp, _, err = c.apis[srv].KV().Txn(api.KVTxnOps{{Verb: api.KVSet, Key: key, Value: []byte(in.value)}}, nil)
		if err == nil {
			if ok && len(resp.Results) == 1 && resp.Results[0] != nil && resp.Results[0].ModifyIndex != 0 {
				out.index = resp.Results[0].ModifyIndex
			} else {
				err = fmt.Errorf("txn set answered ok=%v %+v", ok, resp)
				c.h.odd("%s on %s: %v", via, c.agents[srv].Opts.Node, err)
			}
		}
	} else {
		_, err = c.apis[srv].KV().Put(&api.KVPair{Key: key, Value: []byte(in.value)}, nil)
	}
	ret := c.h.now()
	if err != nil {
		c.recordWriteErr(in, err, call, srv, via)
		return err
	}
	c.record(in, out, call, ret, srv, via)
	return nil
}

func (c *linClient) cas(srv int, key string, read linState, viaTxn bool) error {
	in := linInput{kind: linCAS, key: key, value: c.nextValue(), from: read.value, index: read.index}
	var out linOutput
	var err error
	via := "PUT /v1/kv?cas"
	call := c.h.now()
	if viaTxn {
		via = "txn cas"
		var ok bool
		var resp *api.KVTxnResponse
		ok, resp, _, err = c.apis[srv].KV().Txn(api.KVTxnOps{{Verb: api.KVCAS, Key: key, Value: []byte(in.value), Index: read.index}}, nil)
		switch {
		case err != nil:
		case ok && len(resp.Results) == 1 && resp.Results[0] != nil && resp.Results[0].ModifyIndex != 0:
			out = linOutput{ok: true, index: resp.Results[0].ModifyIndex}
		case !ok && len(resp.Errors) == 1 && strings.Contains(resp.Errors[0].What, "index is stale"):
			out = linOutput{}
		default:
			err = fmt.Errorf("txn cas answered ok=%v %+v", ok, resp)
			c.h.odd("%s on %s: %v", via, c.agents[srv].Opts.Node, err)
		}
	} else {
		out.ok, _, err = c.apis[srv].KV().CAS(&api.KVPair{Key: key, Value: []byte(in.value), ModifyIndex: read.index}, nil)
	}
	ret := c.h.now()
	if err != nil {
		c.recordWriteErr(in, err, call, srv, via)
		return err
	}
	c.record(in, out, call, ret, srv, via)
	return nil
}
