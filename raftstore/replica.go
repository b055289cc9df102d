package raftstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"encoding/json"

	"github.com/beacon-dns/beacon/internal/tlsutil"
	"github.com/beacon-dns/beacon/internal/wire"
	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/go-hclog"
	metrics "github.com/hashicorp/go-metrics/compat"
)

// Replica is a client agent's copy of the state: it follows one server's
// (or relay's, relay.go) state stream, applying every command with the
// FSM's code, and moves to another source when that one fails. Reads (DNS,
// HTTP) take lock-free read transactions on its store as they would on a
// server's.
type Replica struct {
	store           *state.Store
	fsm             *FSM
	servers, relays func() []string
	tls             *tlsutil.Configurator
	logger          hclog.Logger
	// port serves the stream on when the replica relays (relay.go).
	port       *muxListener
	relaySrc   *streamSource
	relayCheck time.Duration

	synced atomic.Bool
	// snapshots counts the full states installed: one at start, more
	// only when the feed could not resume this replica.
	snapshots atomic.Uint64
	// lastFrame is when the last frame arrived, in ns on the monotonic
	// clock since epoch (0: never); staleness is the server's own
	// staleness as of its last heartbeat (ns). Every DNS answer reads
	// them: the monotonic clock is one clock read, and wall-clock steps
	// do not move it. It stands still while the machine is suspended, so
	// just after a resume the age of the last frame reads short until the
	// stream delivers a frame or fails.
	epoch     time.Time
	lastFrame atomic.Int64
	// progress is when the replica last applied a command or a state, or
	// heard its source was at no later index (same clock as lastFrame): a
	// relay whose state stopped moving (cut off, or stuck on a command it
	// cannot apply) stops serving.
	progress  atomic.Int64
	staleness atomic.Int64
	leader    atomic.Pointer[string]
	source    atomic.Pointer[string]
	// serverIndex is the followed source's applied index as of its last
	// heartbeat.
	serverIndex atomic.Uint64

	// appliedMu guards appliedCh, closed (and replaced) when the applied
	// index moves.
	appliedMu sync.Mutex
	appliedCh chan struct{}

	stop chan struct{}
	// ctx ends with stop: dials give up when the replica closes.
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
	connMu   sync.Mutex
	conn     net.Conn
}

// Replica timing.
const (
	replicaDialTimeout = 5 * time.Second
	// replicaRetryMin and replicaRetryMax bound the wait between attempts
	// when no server can be followed.
	replicaRetryMin = 50 * time.Millisecond
	replicaRetryMax = 2 * time.Second
	// relayCheckEvery is how often, give or take half of it, a replica
	// that follows a server looks for a relay to follow instead.
	relayCheckEvery = 10 * time.Second
)

// replicaConfig is what a Replica follows and how.
type replicaConfig struct {
	// servers returns the servers' RPC addresses. relays, when set,
	// returns the relays' addresses (client agents that pass the stream
	// on), followed in preference to a server. Both are called whenever
	// a source is needed.
	servers, relays func() []string
	// relayAddr, when set, is where this replica serves its state
	// stream to other client agents: it relays.
	relayAddr string
	// relayCheck is how long a replica follows a server before it looks
	// for a relay; zero is relayCheckEvery, give or take half of it.
	relayCheck time.Duration
	tls        *tlsutil.Configurator
	logger     hclog.Logger
}

// newReplica starts following a relay or a server, with the TLS material
// of cfg.tls (nil: plaintext), and serves the stream on when it relays.
func newReplica(store *state.Store, cfg replicaConfig) (*Replica, error) {
	logger := cfg.logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	r := &Replica{store: store, fsm: NewFSM(store, logger), servers: cfg.servers, relays: cfg.relays, tls: cfg.tls,
		logger: logger, appliedCh: make(chan struct{}), stop: make(chan struct{}), epoch: time.Now(),
		relayCheck: cfg.relayCheck}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	if r.relayCheck <= 0 {
		r.relayCheck = relayCheckEvery/2 + rand.N(relayCheckEvery)
	}
	empty := ""
	r.leader.Store(&empty)
	r.source.Store(&empty)
	if cfg.relayAddr != "" {
		r.relays = nil // a relay follows servers only: the tree has no cycle
		if err := r.serveRelay(cfg.relayAddr); err != nil {
			r.cancel()
			return nil, err
		}
	}
	r.wg.Add(1)
	go r.run()
	return r, nil
}

// Store is the replica's state store.
func (r *Replica) Store() *state.Store { return r.store }

// Synced reports whether the replica holds a full state.
func (r *Replica) Synced() bool { return r.synced.Load() }

// AppliedIndex is the index of the last command the replica reflects.
func (r *Replica) AppliedIndex() uint64 { return r.fsm.AppliedIndex() }

// IndexLag is how many commands the replica is behind its source, as of
// the source's last heartbeat; 0 once it caught up.
func (r *Replica) IndexLag() uint64 {
	server, applied := r.serverIndex.Load(), r.fsm.AppliedIndex()
	if server <= applied {
		return 0
	}
	return server - applied
}

// SnapshotsInstalled counts the full states the replica has installed.
func (r *Replica) SnapshotsInstalled() uint64 { return r.snapshots.Load() }

// Source is the address of the server or relay followed, "" when none.
func (r *Replica) Source() string { return *r.source.Load() }

// connected reports whether its source was heard from recently.
func (r *Replica) connected() bool {
	last := r.lastFrame.Load()
	return last != 0 && time.Duration(r.sinceEpoch()-last) < streamReadTimeout
}

// sinceEpoch is the monotonic time now, as lastFrame holds it.
func (r *Replica) sinceEpoch() int64 { return max(int64(time.Since(r.epoch)), 1) }

// Leader is the leader's RPC address as the followed source last reported
// it; "" when it knows none or the replica lost its server.
func (r *Replica) Leader() string {
	if !r.connected() {
		return ""
	}
	return *r.leader.Load()
}

// Staleness is how out of date the replica may be: the time since its
// server was last heard from plus how stale that server was. It is the
// largest duration before the first full state arrives. Lock-free.
func (r *Replica) Staleness() time.Duration {
	if !r.synced.Load() {
		return math.MaxInt64
	}
	last := r.lastFrame.Load() // before the clock: a frame arriving between them makes no negative age
	return time.Duration(r.sinceEpoch()-last) + time.Duration(r.staleness.Load())
}

// WaitApplied waits until the replica reflects index idx.
func (r *Replica) WaitApplied(idx uint64, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.appliedMu.Lock()
		ch := r.appliedCh
		r.appliedMu.Unlock()
		if r.synced.Load() && r.fsm.AppliedIndex() >= idx {
			return nil
		}
		select {
		case <-ch:
		case <-deadline.C:
			return fmt.Errorf("local replica did not reach index %d within %s (at %d)", idx, timeout, r.fsm.AppliedIndex())
		case <-r.stop:
			return state.ErrNoLeader
		}
	}
}

func (r *Replica) wakeWaiters() {
	r.appliedMu.Lock()
	close(r.appliedCh)
	r.appliedCh = make(chan struct{})
	r.appliedMu.Unlock()
}

// Close stops following; the store keeps what it has.
func (r *Replica) Close() {
	r.stopOnce.Do(func() {
		close(r.stop)
		r.cancel()
		if r.port != nil {
			r.port.Close() // its streams end with r.stop
		}
		r.connMu.Lock()
		if r.conn != nil {
			r.conn.Close()
		}
		r.connMu.Unlock()
		r.wg.Wait()
	})
}

func (r *Replica) run() {
	defer r.wg.Done()
	failed := ""
	// relayFailures counts the relays that failed in a row: after two,
	// the replica follows a server (and looks for a relay again later),
	// so relays that gossip still lists but that are gone or refuse
	// cannot keep it from the state.
	relayFailures := 0
	wait := replicaRetryMin
	next := "" // a relay that answered a probe: followed next
	for {
		addr, relay, moved := next, true, next != ""
		if !moved {
			addr, relay = r.pick(failed, relayFailures < 2)
		}
		if addr != "" {
			start := time.Now()
			src, err := r.open(addr, relay)
			next = ""
			if err == nil {
				src.moved = moved
				next, err = r.follow(src)
			}
			select {
			case <-r.stop:
				return
			default:
			}
			if next != "" {
				r.logger.Debug("moving from the server to a relay", "server", addr, "relay", next)
				failed, relayFailures, wait = "", 0, replicaRetryMin
				continue
			}
			r.logger.Warn("state stream ended; moving to another source", "source", addr, "relay", relay, "error", err)
			failed = addr
			if relay {
				relayFailures++
			}
			if time.Since(start) > streamReadTimeout {
				wait = replicaRetryMin // it worked for a while: retry at once
				if relay {
					relayFailures = 1 // another relay first, then a server
				}
			}
		}
		select {
		case <-r.stop:
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, replicaRetryMax)
	}
}

// pick chooses what to follow: with tryRelays, a relay other than the one
// that just failed, at random, when there are relays; otherwise any known
// server but the one that just failed, unless it is the only one; and a
// relay after all when no server is known. relay says which it chose.
func (r *Replica) pick(failed string, tryRelays bool) (addr string, relay bool) {
	var relays []string
	if r.relays != nil {
		relays = r.relays()
	}
	if tryRelays {
		if addr := pickOther(relays, failed); addr != "" {
			return addr, true
		}
	}
	servers := r.servers()
	if addr := pickOther(servers, failed); addr != "" {
		return addr, false
	}
	if len(servers) > 0 {
		return servers[0], false
	}
	if addr := pickOther(relays, ""); addr != "" {
		return addr, true
	}
	return "", false
}

// pickOther is one of addrs but failed, at random; "" if there is none.
func pickOther(addrs []string, failed string) string {
	var others []string
	for _, a := range addrs {
		if a != failed {
			others = append(others, a)
		}
	}
	if len(others) == 0 {
		return ""
	}
	return others[rand.N(len(others))]
}

// upstream is a stream the replica opened: from a server or a relay.
type upstream struct {
	addr  string
	relay bool
	conn  net.Conn
	br    *bufio.Reader
	// moved: a relay the replica moved to from a server that still
	// served it. It must not take the replica back in time: a state
	// older than the replica's, first thing (before the relay's second
	// heartbeat, by which it chose between resuming and a snapshot), ends
	// the stream. A restore later lowers the index legitimately.
	moved bool
}

// open dials the server or relay at addr and asks for the stream of what
// the replica holds; closing the replica ends the dial.
func (r *Replica) open(addr string, relay bool) (*upstream, error) {
	var conn net.Conn
	var err error
	if relay {
		conn, err = dialPort(r.ctx, r.tls.Current().OutgoingRelay(), addr, protoStream, replicaDialTimeout)
	} else {
		conn, err = dialServer(r.ctx, r.tls, addr, protoStream, replicaDialTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", addr, err)
	}
	_ = conn.SetWriteDeadline(time.Now().Add(replicaDialTimeout))
	req := streamRequest{Resume: r.synced.Load(), After: r.fsm.AppliedIndex()}
	if err := wire.WriteMsg(conn, &req); err != nil {
		conn.Close()
		return nil, fmt.Errorf("stream request to %s: %w", addr, err)
	}
	return &upstream{addr: addr, relay: relay, conn: conn, br: bufio.NewReaderSize(conn, 64<<10)}, nil
}

// probeRelay asks the relay at addr for the stream and reads its first
// frame, which must be a heartbeat showing the relay at least at index
// after: a relay that has no current state refuses and closes instead,
// and one that is behind the replica is no better source than its server.
// The probe's stream is closed either way; the replica opens a new one,
// from its index then, to move. It gives up when the replica closes.
func (r *Replica) probeRelay(addr string, after uint64) error {
	src, err := r.open(addr, true)
	if err != nil {
		return err
	}
	defer src.conn.Close()
	stop := context.AfterFunc(r.ctx, func() { src.conn.Close() })
	defer stop()
	_ = src.conn.SetReadDeadline(time.Now().Add(streamReadTimeout))
	kind, index, _, err := wire.ReadFrame(src.br, nil, maxStreamFrame)
	switch {
	case err != nil:
		return fmt.Errorf("relay %s: %w", addr, err)
	case kind != frameHeartbeat:
		return fmt.Errorf("relay %s: first frame of kind %d, not a heartbeat", addr, kind)
	case index < after:
		return fmt.Errorf("relay %s is at index %d, behind this replica's %d", addr, index, after)
	}
	return nil
}

// relayFinder probes relays, one at a time, while the replica follows a
// server.
type relayFinder struct {
	last    time.Time // when the last probe started
	probing bool
	// done receives a probe's outcome: the relay's address if it
	// answered, "" if not. It is buffered, so a probe that ends after the
	// stream it was for leaves nothing waiting.
	done chan string
}

// findRelay, at each heartbeat of a server's stream, returns the relay a
// finished probe found, or starts a probe every relayCheck when gossip
// lists a relay; "" until one answers.
func (r *Replica) findRelay(f *relayFinder) string {
	if f.probing {
		select {
		case addr := <-f.done:
			f.probing = false
			return addr
		default:
			return ""
		}
	}
	if !r.synced.Load() || time.Since(f.last) < r.relayCheck {
		return ""
	}
	f.last = time.Now()
	addr := pickOther(r.relays(), "")
	if addr == "" {
		return ""
	}
	f.probing = true
	after := r.fsm.AppliedIndex()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := r.probeRelay(addr, after); err != nil {
			r.logger.Debug("a relay did not answer; staying with the server", "relay", addr, "error", err)
			addr = ""
		}
		f.done <- addr
	}()
	return ""
}

// follow applies what src streams until the stream fails. Following a
// server, it probes a relay every relayCheck when gossip lists one, and
// returns the relay's address (next) once one answers, the server's
// stream going on meanwhile.
func (r *Replica) follow(src *upstream) (next string, err error) {
	conn := src.conn
	r.connMu.Lock()
	select {
	case <-r.stop:
		r.connMu.Unlock()
		conn.Close()
		return "", nil
	default:
	}
	r.conn = conn
	r.connMu.Unlock()
	var finder *relayFinder
	if !src.relay && r.relays != nil {
		finder = &relayFinder{last: time.Now(), done: make(chan string, 1)}
	}
	defer func() {
		r.connMu.Lock()
		r.conn = nil
		r.connMu.Unlock()
		conn.Close()
		empty := ""
		r.source.Store(&empty)
	}()
	r.source.Store(&src.addr)
	buf := make([]byte, 0, 64<<10)
	moved := src.moved // until the first command or state, or the second heartbeat
	heartbeats := 0
	for {
		_ = conn.SetReadDeadline(time.Now().Add(streamReadTimeout))
		kind, index, payload, err := wire.ReadFrame(src.br, buf, maxStreamFrame)
		if err != nil {
			return "", err
		}
		r.lastFrame.Store(r.sinceEpoch())
		switch kind {
		case frameEntry:
			if !r.synced.Load() {
				return "", errors.New("source sent a command before the state")
			}
			moved = false
			if index <= r.fsm.AppliedIndex() {
				continue // already applied (cannot happen: the source resumes after our index)
			}
			if err := r.fsm.applyStreamed(index, payload); err != nil {
				return "", fmt.Errorf("applying streamed command: %w", err)
			}
			r.progress.Store(r.sinceEpoch())
			if src.br.Buffered() < wire.FrameHeaderSize {
				r.wakeWaiters() // the burst is over
			}
		case frameHeartbeat:
			var hb streamHeartbeat
			if err := json.Unmarshal(payload, &hb); err != nil {
				return "", fmt.Errorf("decoding heartbeat: %w", err)
			}
			if heartbeats++; heartbeats >= 2 {
				moved = false
			}
			r.leader.Store(&hb.Leader)
			r.serverIndex.Store(index)
			r.staleness.Store(max(hb.StalenessMs, 0) * int64(time.Millisecond))
			if r.synced.Load() && index <= r.fsm.AppliedIndex() {
				r.progress.Store(r.sinceEpoch()) // caught up with its source
			}
			r.wakeWaiters() // a blocked burst ends with a flush; be sure waiters look
			if finder != nil {
				if addr := r.findRelay(finder); addr != "" {
					return addr, nil
				}
			}
		case frameSnapBegin:
			if moved && index < r.fsm.AppliedIndex() {
				// The relay could not resume the replica (its feed starts
				// after the replica's index, or it holds nothing since its
				// own state) and offers an older state: keep ours.
				return "", fmt.Errorf("the relay offered a state at index %d, older than this replica's %d", index, r.fsm.AppliedIndex())
			}
			moved = false
			if err := r.installSnapshot(conn, src.br, index); err != nil {
				return "", err
			}
		default:
			return "", fmt.Errorf("unexpected stream frame kind %d", kind)
		}
	}
}

// installSnapshot reads the chunks of a snapshot at index and replaces the
// store with it.
func (r *Replica) installSnapshot(conn net.Conn, br *bufio.Reader, index uint64) error {
	// Heartbeats are not sent inside a snapshot, but are tolerated.
	sr := wire.NewChunkReader(br, func(kind byte) bool { return kind == frameHeartbeat },
		func() {
			_ = conn.SetReadDeadline(time.Now().Add(streamReadTimeout))
			r.progress.Store(r.sinceEpoch()) // a state arriving is a state moving: a relay serves on
		})
	restored, err := state.ReadSnapshot(sr)
	if err != nil {
		return fmt.Errorf("reading streamed snapshot: %w", err)
	}
	// ReadSnapshot stops at the last record: read up to the end frame.
	if _, err := io.Copy(io.Discard, sr); err != nil {
		return fmt.Errorf("reading streamed snapshot: %w", err)
	}
	r.fsm.replaceState(restored, index)
	r.synced.Store(true)
	r.snapshots.Add(1)
	r.progress.Store(r.sinceEpoch())
	metrics.IncrCounter([]string{"client", "replica", "resyncs"}, 1)
	r.lastFrame.Store(r.sinceEpoch())
	r.wakeWaiters()
	r.logger.Debug("installed a snapshot from the source", "index", index)
	return nil
}
