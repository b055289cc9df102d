package gossip

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
)

// ErrShutdown is returned by operations on a pool that was shut down.
var ErrShutdown = errors.New("gossip: pool is shut down")

// serfEventBuffer is the capacity of the channel serf sends its events on;
// a goroutine empties it into the coalescing queue at once.
const serfEventBuffer = 256

// Pool is one serf pool (the LAN pool of a datacenter's agents, or the WAN
// pool of every datacenter's servers) and this agent's view of its members.
type Pool struct {
	cfg Config
	// kind is "LAN" or "WAN", for logs and errors.
	kind      string
	logger    hclog.Logger
	serf      *serf.Serf
	localIP   netip.Addr // advertised gossip address
	localPort uint16

	serfEvents chan serf.Event
	events     *eventQueue
	// userEvents are the user events this agent kept (userevent.go).
	userEvents *userEventLog

	// keyring is memberlist's (nil: plaintext gossip), changed in place by
	// serf's keyring operations.
	keyring *memberlist.Keyring

	closed       atomic.Bool
	stop         chan struct{}
	wg           sync.WaitGroup
	shutdownOnce sync.Once
	shutdownErr  error
}

// NewLAN starts the LAN pool: it binds cfg.BindAddr (TCP and UDP) and is
// ready to be joined and to join. With a snapshot file from an earlier run
// it rejoins the members it knew, unless it had left. On error nothing is
// left running.
func NewLAN(cfg Config) (*Pool, error) { return newPool(cfg, "LAN") }

// NewWAN starts the WAN pool of a server (serf_wan): every datacenter's
// servers, with memberlist's WAN timings, its own keyring and snapshot
// files. The member name is Consul's "<node>.<datacenter>".
func NewWAN(cfg Config) (*Pool, error) {
	if cfg.Role != RoleServer {
		return nil, errors.New("gossip: only servers join the WAN pool")
	}
	cfg.wan = true
	cfg.NodeName = WANName(cfg.NodeName, cfg.Datacenter)
	return newPool(cfg, "WAN")
}

// WANName is a server's name in the WAN pool.
func WANName(node, datacenter string) string { return node + "." + datacenter }

func newPool(cfg Config, kind string) (*Pool, error) {
	ip, port, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	logger = logger.Named("gossip." + strings.ToLower(kind))
	buffer := cfg.EventBuffer
	if buffer == 0 {
		buffer = DefaultEventBuffer
	}
	keyring, err := setupKeyring(&cfg, logger)
	if err != nil {
		return nil, err
	}
	if cfg.SnapshotFile != "" {
		if err := os.MkdirAll(filepath.Dir(cfg.SnapshotFile), 0o700); err != nil {
			return nil, fmt.Errorf("gossip: creating the snapshot directory: %w", err)
		}
	}
	p := &Pool{
		cfg: cfg, kind: kind, logger: logger, localIP: ip, keyring: keyring,
		serfEvents: make(chan serf.Event, serfEventBuffer),
		events:     newEventQueue(buffer),
		userEvents: newUserEventLog(),
		stop:       make(chan struct{}),
	}
	// The transport is bound first: serf leaks a goroutine when it fails
	// after starting, and a taken port is the common failure.
	std := logger.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})
	transport, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{ip.String()}, BindPort: int(port), Logger: std, MetricLabels: cfg.metricLabels()})
	if err != nil {
		return nil, fmt.Errorf("gossip: starting %s pool on %s: %w", kind, cfg.BindAddr, err)
	}
	// serf sends events before Create returns (our own join): drain first.
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		p.events.run(p.stop)
	}()
	go func() {
		defer p.wg.Done()
		p.drainSerf()
	}()
	s, err := serf.Create(cfg.serfConfig(ip, transport, std, localTags(&cfg), keyring, p.serfEvents, mergeDelegate{p}))
	if err != nil {
		_ = transport.Shutdown()
		close(p.stop)
		p.wg.Wait()
		return nil, fmt.Errorf("gossip: starting %s pool on %s: %w", kind, cfg.BindAddr, err)
	}
	p.serf = s
	p.localPort = s.LocalMember().Port
	logger.Info(kind+" gossip pool started", "node", cfg.NodeName, "role", cfg.Role,
		"datacenter", cfg.Datacenter, "addr", net.JoinHostPort(ip.String(), strconv.Itoa(int(p.localPort))),
		"encrypted", keyring != nil)
	return p, nil
}

// drainSerf moves serf's member events into the coalescing queue and its
// user events into the user event log, so that serf, which sends them
// holding its member or event lock, never waits for a consumer.
func (p *Pool) drainSerf() {
	for {
		select {
		case <-p.stop:
			return
		case e := <-p.serfEvents:
			if ue, ok := e.(serf.UserEvent); ok {
				p.receiveUserEvent(ue)
				continue
			}
			me, ok := e.(serf.MemberEvent)
			if !ok {
				continue // queries are not used
			}
			typ := eventTypeOf(me.Type)
			if typ == 0 {
				continue
			}
			for _, sm := range me.Members {
				p.emit(typ, memberFromSerf(sm))
			}
		}
	}
}

func eventTypeOf(t serf.EventType) EventType {
	switch t {
	case serf.EventMemberJoin:
		return MemberJoin
	case serf.EventMemberLeave:
		return MemberLeave
	case serf.EventMemberFailed:
		return MemberFailed
	case serf.EventMemberUpdate:
		return MemberUpdate
	case serf.EventMemberReap:
		return MemberReap
	}
	return 0
}

// emit logs a member's change and queues its event.
func (p *Pool) emit(typ EventType, m Member) {
	switch typ {
	case MemberJoin:
		p.logger.Info("member joined", "member", m.Name, "addr", m.Addr, "role", m.Role, "datacenter", m.Datacenter)
	case MemberUpdate:
		p.logger.Info("member updated", "member", m.Name, "addr", m.Addr)
	case MemberLeave:
		p.logger.Info("member left", "member", m.Name)
	case MemberFailed:
		p.logger.Warn("member failed", "member", m.Name, "addr", m.Addr)
	case MemberReap:
		p.logger.Info("member reaped", "member", m.Name, "status", m.Status)
	}
	if p.events.push(Event{Type: typ, Member: m}) {
		p.logger.Debug("events consumer lagging: coalesced a pending event", "member", m.Name, "event", typ)
	}
}

// Join contacts each address ("ip:port", "host:port", or without port for
// the pool's own port) once and syncs state with it. It returns how many
// were reached; the error is non-nil only when none was.
func (p *Pool) Join(addrs []string) (int, error) {
	if p.closed.Load() {
		return 0, ErrShutdown
	}
	if len(addrs) == 0 {
		return 0, errors.New("gossip: no addresses to join")
	}
	// ignoreOld: replaying old user events is not wanted on a join.
	n, err := p.serf.Join(addrs, true)
	if n == 0 && err != nil {
		return 0, fmt.Errorf("gossip: joining %s: %w", strings.Join(addrs, ", "), err)
	}
	return n, nil
}

// RetryJoin joins addrs, retrying every interval (DefaultRetryJoinInterval
// when zero) until at least one other member was reached (reaching only
// ourselves, through a name of ours, does not count). Our own address
// among addrs is skipped, so every agent can be given the same list; when it
// is the only one, there is nobody to join and RetryJoin returns at once.
// It returns nil once joined, ctx.Err() when ctx is done, ErrShutdown when
// the pool shuts down. One attempt is not interruptible: it takes up to
// TCPTimeout per unreachable address.
func (p *Pool) RetryJoin(ctx context.Context, addrs []string, interval time.Duration) error {
	if len(addrs) == 0 {
		return errors.New("gossip: no addresses to join")
	}
	if interval <= 0 {
		interval = DefaultRetryJoinInterval
	}
	others := make([]string, 0, len(addrs))
	for _, a := range addrs {
		if !p.isSelf(a) {
			others = append(others, a)
		}
	}
	if len(others) == 0 {
		p.logger.Info("join: only our own address was given; waiting to be joined", "addrs", addrs)
		return nil
	}
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		p.logger.Debug("join attempt", "addrs", others, "attempt", attempt)
		n, err := p.Join(others)
		if errors.Is(err, ErrShutdown) {
			return err
		}
		if n > 0 && !p.knowsOthers() {
			// Only ourselves answered: a host name of our own (the same
			// list on every server, as a StatefulSet's pods are given it)
			// is not caught by isSelf.
			n, err = 0, errors.New("only this agent itself answered")
		}
		if n > 0 {
			p.logger.Info("joined the "+p.kind+" pool", "contacted", n, "of", len(others), "attempt", attempt)
			return nil
		}
		p.logger.Warn("join attempt failed; retrying", "addrs", others, "attempt", attempt,
			"retry_in", interval, "error", err)
		t := time.NewTimer(interval)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-p.stop:
			t.Stop()
			return ErrShutdown
		}
	}
}

// knowsOthers reports whether another member is alive in the pool.
func (p *Pool) knowsOthers() bool {
	self := p.serf.LocalMember().Name
	for _, m := range p.serf.Members() {
		if m.Name != self && m.Status == serf.StatusAlive {
			return true
		}
	}
	return false
}

// isSelf reports whether a join address names this pool's own address.
// Only IP literals are recognised; names are not resolved (RetryJoin goes
// on until another member answers).
func (p *Pool) isSelf(addr string) bool {
	if i := strings.IndexByte(addr, '/'); i >= 0 { // memberlist's "node/addr" form
		addr = addr[i+1:]
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil { // no port: memberlist uses the pool's own port
		host, portStr = strings.Trim(addr, "[]"), strconv.Itoa(int(p.localPort))
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return false
	}
	return ip.Unmap() == p.localIP && uint16(port) == p.localPort
}

// Members lists every member the pool knows, sorted by name, ourselves
// included: alive ones, and failed and left ones until they come back or
// are reaped.
func (p *Pool) Members() []Member {
	sms := p.serf.Members()
	out := make([]Member, 0, len(sms))
	for _, sm := range sms {
		out = append(out, memberFromSerf(sm))
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Servers lists the alive servers of our datacenter, sorted by name.
func (p *Pool) Servers() []Member {
	all := p.Members()
	out := all[:0]
	for _, m := range all {
		if m.Status == StatusAlive && m.Role == RoleServer && m.Datacenter == p.cfg.Datacenter {
			out = append(out, m)
		}
	}
	return out
}

// ServersByDatacenter groups the alive servers the pool knows by their
// datacenter, each group sorted by name: in the WAN pool, where a server
// finds every datacenter.
func (p *Pool) ServersByDatacenter() map[string][]Member {
	out := map[string][]Member{}
	for _, m := range p.Members() {
		if m.Status == StatusAlive && m.Role == RoleServer && m.Datacenter != "" {
			out[m.Datacenter] = append(out[m.Datacenter], m)
		}
	}
	return out
}

// EstimatedRTT is the round-trip time to member estimated from the
// network coordinates (Vivaldi) serf keeps; false when the member's is
// not known yet.
func (p *Pool) EstimatedRTT(member string) (time.Duration, bool) {
	other, ok := p.MemberCoordinate(member)
	if !ok {
		return 0, false
	}
	self, err := p.serf.GetCoordinate()
	if err != nil || !self.IsCompatibleWith(other) {
		return 0, false
	}
	return self.DistanceTo(other), true
}

// LocalMember is this agent as the pool advertises it.
func (p *Pool) LocalMember() Member { return memberFromSerf(p.serf.LocalMember()) }

// Events delivers member changes, ourselves included, oldest first.
// Delivery never blocks gossip: while the consumer lags, a member's newer
// event replaces its older one still waiting (join then failed reads as
// failed; see eventQueue), so memory stays bounded by the pool's size and
// every member's latest state is always delivered. The channel is closed by
// Shutdown. Read it from one goroutine; a consumer that starts late, or a
// new leader, should reconcile from Members() as well.
func (p *Pool) Events() <-chan Event { return p.events.out }

// Leave announces that this agent leaves gracefully, so the others mark it
// left (not failed): serf broadcasts its leave intent, memberlist its
// leave, and the pool keeps answering probes for LeavePropagateDelay. The
// pool keeps running; call Shutdown next. On a timeout (serf's broadcast
// timeout, 5 s) some members may see this agent as failed.
func (p *Pool) Leave() error {
	if p.closed.Load() {
		return ErrShutdown
	}
	p.logger.Info("leaving the " + p.kind + " pool")
	if err := p.serf.Leave(); err != nil {
		err = fmt.Errorf("gossip: leave: %w", err)
		p.logger.Warn("leave not fully announced; some members may see this agent as failed", "error", err)
		return err
	}
	return nil
}

// Shutdown stops the pool without announcing anything: the others detect
// it as failed unless Leave came first. It stops serf, memberlist and this
// package's goroutines, and closes the Events channel. It is safe to call
// more than once.
func (p *Pool) Shutdown() error {
	p.shutdownOnce.Do(func() {
		p.closed.Store(true)
		p.shutdownErr = p.serf.Shutdown()
		close(p.stop)
		p.wg.Wait()
		p.logger.Info(p.kind + " gossip pool shut down")
	})
	return p.shutdownErr
}

// mergeDelegate refuses, in the LAN pool, members of another datacenter:
// two datacenters' LAN pools must never merge; in the WAN pool, anything
// but servers named as the WAN names them.
type mergeDelegate struct{ p *Pool }

func (d mergeDelegate) NotifyMerge(members []*serf.Member) error {
	if d.p.cfg.wan {
		for _, m := range members {
			dc := m.Tags[TagDC]
			if m.Tags[TagRole] != roleTagServer || dc == "" || !strings.HasSuffix(m.Name, "."+dc) || len(m.Name) == len(dc)+1 {
				err := fmt.Errorf("member %s (role %q, datacenter %q) is not a server of a datacenter", m.Name, m.Tags[TagRole], m.Tags[TagDC])
				d.p.logger.Error("refusing a WAN member", "error", err)
				return err
			}
		}
		return nil
	}
	for _, m := range members {
		if dc, ok := m.Tags[TagDC]; ok && dc != d.p.cfg.Datacenter {
			err := fmt.Errorf("member %s is in datacenter %q, this LAN pool is %q", m.Name, dc, d.p.cfg.Datacenter)
			d.p.logger.Error("refusing a member of another datacenter", "error", err)
			return err
		}
	}
	return nil
}
