package gossip

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
)

// ErrShutdown is returned by operations on a pool that was shut down.
var ErrShutdown = errors.New("gossip: pool is shut down")

// DefaultLeaveTimeout bounds Leave's wait for the leave message to go out
// when it is given no timeout (serf's BroadcastTimeout).
const DefaultLeaveTimeout = 5 * time.Second

// Pool is one memberlist pool (today: the LAN pool) and this agent's view
// of its members.
type Pool struct {
	cfg       Config
	logger    hclog.Logger
	ml        *memberlist.Memberlist
	meta      []byte // encoded local tags, what NodeMeta returns
	metaLeave []byte // the same with the leave intent, once Leave began
	leaving   atomic.Bool
	localIP   netip.Addr // advertised gossip address
	localPort uint16
	checkDC   bool // refuse members of other datacenters (LAN)

	// mu guards members. It is taken inside memberlist's callbacks (which
	// hold memberlist's node lock), so nothing may call into memberlist
	// while holding it.
	mu      sync.RWMutex
	members map[string]Member

	events *eventQueue

	// keyring is memberlist's (nil: plaintext gossip). keyMu serialises
	// its changes and their writes to the keyring file.
	keyring *memberlist.Keyring
	keyMu   sync.Mutex

	// Cluster-wide requests (messages.go): the calls waiting for answers
	// by request ID, and the received messages waiting for the handler.
	callMu   sync.Mutex
	calls    map[string]chan wireResponse
	inbox    chan []byte
	replySem chan struct{}

	// lifecycle serialises Leave and Shutdown: memberlist panics on a
	// Leave after Shutdown.
	lifecycle    sync.Mutex
	closed       atomic.Bool
	stop         chan struct{}
	spawnMu      sync.Mutex // orders spawn's wg.Add before Shutdown's wg.Wait
	wg           sync.WaitGroup
	shutdownOnce sync.Once
	shutdownErr  error
}

// NewLAN starts the LAN pool: it binds cfg.BindAddr (TCP and UDP) and is
// ready to be joined and to join. On error nothing is left running.
func NewLAN(cfg Config) (*Pool, error) {
	ip, port, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	logger = logger.Named("gossip.lan")
	tags := localTags(&cfg)
	meta, err := encodeMeta(tags)
	if err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	tags[tagLeaving] = "1"
	metaLeave, err := encodeMeta(tags)
	if err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	buffer := cfg.EventBuffer
	if buffer == 0 {
		buffer = DefaultEventBuffer
	}
	keyring, err := setupKeyring(&cfg, logger)
	if err != nil {
		return nil, err
	}
	p := &Pool{
		cfg: cfg, logger: logger, meta: meta, metaLeave: metaLeave, localIP: ip, checkDC: true,
		members:  make(map[string]Member),
		events:   newEventQueue(buffer),
		keyring:  keyring,
		calls:    make(map[string]chan wireResponse),
		inbox:    make(chan []byte, inboxSize),
		replySem: make(chan struct{}, replySenders),
		stop:     make(chan struct{}),
	}
	// memberlist.Create calls back (NotifyJoin for ourselves) before it
	// returns; the delegate only touches p.members, p.events and p.inbox,
	// all ready.
	ml, err := memberlist.Create(cfg.memberlistConfig(ip, port, logger, &delegate{p}, keyring))
	if err != nil {
		// Create tears down what it started, except after a failure to
		// compute the advertise address, which an explicit IP rules out.
		return nil, fmt.Errorf("gossip: starting LAN pool on %s: %w", cfg.BindAddr, err)
	}
	p.ml = ml
	p.localPort = ml.LocalNode().Port
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		p.events.run(p.stop)
	}()
	go func() {
		defer p.wg.Done()
		p.handleMessages()
	}()
	logger.Info("LAN gossip pool started", "node", cfg.NodeName, "role", cfg.Role,
		"datacenter", cfg.Datacenter, "addr", net.JoinHostPort(ip.String(), strconv.Itoa(int(p.localPort))),
		"encrypted", keyring != nil)
	return p, nil
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
	n, err := p.ml.Join(addrs)
	if err != nil {
		return n, fmt.Errorf("gossip: joining %s: %w", strings.Join(addrs, ", "), err)
	}
	return n, nil
}

// RetryJoin joins addrs, retrying every interval (DefaultRetryJoinInterval
// when zero) until at least one other member was reached. Our own address
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
		if n > 0 {
			p.logger.Info("joined the LAN pool", "contacted", n, "of", len(others), "attempt", attempt)
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

// isSelf reports whether a join address names this pool's own address.
// Only IP literals are recognised; names are not resolved.
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
// are forgotten (memberlist itself forgets them after a while).
func (p *Pool) Members() []Member {
	p.mu.RLock()
	out := make([]Member, 0, len(p.members))
	for _, m := range p.members {
		out = append(out, m.clone())
	}
	p.mu.RUnlock()
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

// LocalMember is this agent as the pool advertises it.
func (p *Pool) LocalMember() Member {
	p.mu.RLock()
	m, ok := p.members[p.cfg.NodeName]
	p.mu.RUnlock()
	if ok {
		return m.clone()
	}
	// Not reached: memberlist reports ourselves joined before Create returns.
	m = Member{Name: p.cfg.NodeName, Addr: p.localIP.String(), Port: p.localPort,
		Tags: localTags(&p.cfg), Status: StatusAlive}
	m.parseTags()
	return m
}

// Forget removes a failed or left member from the table (reaping after
// reconnect_timeout, force-leave). It refuses alive members and ourselves.
// A forgotten member that comes back is reported joined again.
func (p *Pool) Forget(name string) error {
	if name == p.cfg.NodeName {
		return errors.New("gossip: cannot forget the local member")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	m, ok := p.members[name]
	if !ok {
		return fmt.Errorf("gossip: no member %q", name)
	}
	if m.Status != StatusFailed && m.Status != StatusLeft {
		return fmt.Errorf("gossip: member %q is %s; only failed or left members can be forgotten", name, m.Status)
	}
	delete(p.members, name)
	p.logger.Info("forgot member", "member", name, "status", m.Status)
	return nil
}

// Events delivers member changes, ourselves included, oldest first.
// Delivery never blocks gossip: while the consumer lags, a member's newer
// event replaces its older one still waiting (join then failed reads as
// failed; see eventQueue), so memory stays bounded by the pool's size and
// every member's latest state is always delivered. A member announcing its
// leave is no event (its Status shows leaving); its leave is. The channel
// is closed by Shutdown. Read it from one goroutine; a consumer that starts
// late, or a new leader, should reconcile from Members() as well.
func (p *Pool) Events() <-chan Event { return p.events.out }

// Leave announces that this agent leaves gracefully, so the others mark it
// left (not failed): it advertises its leave intent and waits for that to
// go out, then has memberlist announce the leave and waits for that, both
// within timeout (DefaultLeaveTimeout when zero), then LeavePropagateDelay
// while still answering probes. The pool keeps running; call Shutdown next.
// On a timeout some members may see this agent as failed.
func (p *Pool) Leave(timeout time.Duration) error {
	if timeout <= 0 {
		timeout = DefaultLeaveTimeout
	}
	deadline := time.Now().Add(timeout)
	p.lifecycle.Lock()
	if p.closed.Load() {
		p.lifecycle.Unlock()
		return ErrShutdown
	}
	p.logger.Info("leaving the LAN pool")
	var errs []error
	if !p.leaving.Swap(true) {
		// memberlist re-reads NodeMeta and gossips it with a new
		// incarnation; this returns once that broadcast is done.
		if err := p.ml.UpdateNode(timeout); err != nil {
			errs = append(errs, fmt.Errorf("broadcasting the leave intent: %w", err))
		}
		// Gossip does not keep order: a member the intent's broadcast
		// missed would take the leave that follows for a failure. Tell
		// every member directly too, within half the time left; those
		// that do not answer still have the broadcast.
		ctx, cancel := context.WithTimeout(context.Background(), time.Until(deadline)/2)
		if _, err := p.call(ctx, wireRequest{Op: opLeaveIntent}, func() wireResponse {
			return wireResponse{From: p.cfg.NodeName, OK: true}
		}); err != nil {
			p.logger.Debug("telling members of the leave directly", "error", err)
		}
		cancel()
	}
	// memberlist.Leave waits forever when given no timeout.
	if err := p.ml.Leave(max(time.Until(deadline), time.Millisecond)); err != nil {
		errs = append(errs, err)
	}
	p.lifecycle.Unlock()
	if len(errs) > 0 {
		err := fmt.Errorf("gossip: leave: %w", errors.Join(errs...))
		p.logger.Warn("leave not fully announced; some members may see this agent as failed", "error", err)
		return err
	}
	delay := p.cfg.LeavePropagateDelay
	if delay == 0 {
		delay = DefaultLeavePropagateDelay
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-p.stop:
	}
	return nil
}

// Shutdown stops the pool without announcing anything: the others detect
// it as failed unless Leave came first. It stops memberlist's listeners and
// timers and this package's goroutines, and closes the Events channel. A
// request or answer being sent to a member is let finish (at most
// TCPTimeout). It is safe to call more than once.
func (p *Pool) Shutdown() error {
	p.shutdownOnce.Do(func() {
		p.lifecycle.Lock()
		p.spawnMu.Lock()
		p.closed.Store(true)
		p.spawnMu.Unlock()
		p.shutdownErr = p.ml.Shutdown()
		p.lifecycle.Unlock()
		close(p.stop)
		p.wg.Wait()
		p.logger.Info("LAN gossip pool shut down")
	})
	return p.shutdownErr
}

// nodeChange is what memberlist reported about a node.
type nodeChange int

const (
	nodeJoined nodeChange = iota
	nodeUpdated
	nodeGone // left or dead: the node's State tells which
)

// observe records a change memberlist reported and queues its event. It runs
// inside memberlist's callbacks, with memberlist's node lock held: it must
// not block and must not call into memberlist.
func (p *Pool) observe(n *memberlist.Node, change nodeChange) {
	m, leaving, err := memberFromNode(n)
	if err != nil {
		p.logger.Warn("member's metadata cannot be decoded; keeping it with no tags",
			"member", m.Name, "addr", m.Addr, "error", err)
	}
	p.mu.Lock()
	prev, known := p.members[m.Name]
	var typ EventType
	switch change {
	case nodeJoined:
		m.Status, typ = StatusAlive, MemberJoin
		if leaving {
			m.Status = StatusLeaving
		}
	case nodeUpdated:
		m.Status, typ = StatusAlive, MemberUpdate
		if leaving {
			// The leave intent: no event until the leave itself.
			m.Status, typ = StatusLeaving, 0
		}
	case nodeGone:
		// memberlist reports a graceful leave and a failure alike; the
		// leave intent tells them apart. (memberlist v0.6.0 leaves
		// Node.State unset here; should it ever be set, it counts too.)
		if leaving || n.State == memberlist.StateLeft || (known && prev.Status == StatusLeaving) {
			m.Status, typ = StatusLeft, MemberLeave
		} else {
			m.Status, typ = StatusFailed, MemberFailed
		}
	}
	p.members[m.Name] = m
	p.mu.Unlock()
	p.emit(typ, m, "")
}

// lateLeave handles a leave intent that arrives after the member was
// already declared failed: gossip does not keep order, so the leave may
// overtake the intent. It is then left after all. memberlist drops such a
// late alive message (its incarnation is not newer), so this looks at every
// alive message, before memberlist does (AliveDelegate).
func (p *Pool) lateLeave(n *memberlist.Node) {
	m, leaving, err := memberFromNode(n)
	if err != nil || !leaving {
		return
	}
	p.mu.Lock()
	prev, ok := p.members[m.Name]
	if !ok || prev.Status != StatusFailed {
		p.mu.Unlock()
		return
	}
	prev.Status = StatusLeft
	p.members[m.Name] = prev
	p.mu.Unlock()
	p.emit(MemberLeave, prev, " (its leave intent came after it was declared failed)")
}

// emit logs a member's change and queues its event (none when typ is 0).
func (p *Pool) emit(typ EventType, m Member, note string) {
	switch typ {
	case 0:
		p.logger.Info("member is leaving", "member", m.Name)
		return
	case MemberJoin:
		p.logger.Info("member joined", "member", m.Name, "addr", m.Addr, "role", m.Role, "datacenter", m.Datacenter)
	case MemberUpdate:
		p.logger.Info("member updated", "member", m.Name, "addr", m.Addr)
	case MemberLeave:
		p.logger.Info("member left"+note, "member", m.Name)
	case MemberFailed:
		p.logger.Warn("member failed", "member", m.Name, "addr", m.Addr)
	}
	if p.events.push(Event{Type: typ, Member: m.clone()}) {
		p.logger.Debug("events consumer lagging: coalesced a pending event", "member", m.Name, "event", typ)
	}
}

// checkPeer refuses, in the LAN pool, a member of another datacenter: two
// datacenters' LAN pools must never merge. A member whose metadata cannot
// be decoded is let in (and logged on join) with empty tags.
func (p *Pool) checkPeer(n *memberlist.Node) error {
	if !p.checkDC {
		return nil
	}
	tags, err := decodeMeta(n.Meta)
	if err != nil {
		return nil
	}
	if dc, ok := tags[TagDC]; ok && dc != p.cfg.Datacenter {
		return fmt.Errorf("member %s is in datacenter %q, this LAN pool is %q", n.Name, dc, p.cfg.Datacenter)
	}
	return nil
}

// delegate is what memberlist calls back. It is a separate type so that
// Pool's method set holds only its API.
type delegate struct{ p *Pool }

var (
	_ memberlist.Delegate         = (*delegate)(nil)
	_ memberlist.EventDelegate    = (*delegate)(nil)
	_ memberlist.ConflictDelegate = (*delegate)(nil)
	_ memberlist.AliveDelegate    = (*delegate)(nil)
	_ memberlist.MergeDelegate    = (*delegate)(nil)
)

// NodeMeta returns the encoded local tags, checked against the limit when
// the pool was created.
func (d *delegate) NodeMeta(limit int) []byte {
	meta := d.p.meta
	if d.p.leaving.Load() {
		meta = d.p.metaLeave
	}
	if len(meta) > limit { // memberlist would panic
		d.p.logger.Error("node metadata over the limit; advertising none", "size", len(meta), "limit", limit)
		return nil
	}
	return meta
}

// NotifyMsg takes the cluster-wide requests and their answers (messages.go).
func (d *delegate) NotifyMsg(b []byte) { d.p.receive(b) }

// Broadcasts and state exchange are not used.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

func (d *delegate) NotifyJoin(n *memberlist.Node)   { d.p.observe(n, nodeJoined) }
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.p.observe(n, nodeUpdated) }
func (d *delegate) NotifyLeave(n *memberlist.Node)  { d.p.observe(n, nodeGone) }

func (d *delegate) NotifyConflict(existing, other *memberlist.Node) {
	d.p.logger.Error("two agents use the same node name; names must be unique",
		"member", existing.Name, "known_addr", existing.Address(), "other_addr", other.Address())
}

func (d *delegate) NotifyAlive(peer *memberlist.Node) error {
	if err := d.p.checkPeer(peer); err != nil {
		return err
	}
	d.p.lateLeave(peer)
	return nil
}

func (d *delegate) NotifyMerge(peers []*memberlist.Node) error {
	for _, n := range peers {
		if err := d.p.checkPeer(n); err != nil {
			d.p.logger.Error("refusing to merge with another datacenter's pool", "error", err)
			return err
		}
	}
	return nil
}
