package gossip

import (
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"
	"time"

	"github.com/hashicorp/go-hclog"
	metrics "github.com/hashicorp/go-metrics/compat"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
)

// Config is what a pool is started with.
type Config struct {
	NodeName   string // the member's name; unique in the pool
	NodeID     string // the agent's stable node ID, advertised in TagID
	Datacenter string
	Role       Role

	// BindAddr is "ip:port" (serf_lan): gossip listens there on TCP and UDP
	// and advertises it. The IP must be a concrete address (not 0.0.0.0 or
	// ::), since it is what the other members reach this one at. Port 0
	// picks a free port (tests).
	BindAddr string
	// RPCAddr is advertised by servers: where they take Raft and RPC.
	RPCAddr string
	// RelayAddr is advertised by client agents that relay the state
	// stream: where other client agents follow it.
	RelayAddr string
	// WANAddr is advertised by servers in the LAN pool: the address of
	// their WAN pool, which the datacenter's other servers join, so every
	// server of a datacenter is in the WAN pool without join_wan on each
	// (Consul's WAN flood join).
	WANAddr string
	// BootstrapExpect is advertised by servers started with it.
	BootstrapExpect int

	Logger hclog.Logger

	// LocalServices lists the agent's services, which user events with a
	// service filter are matched against; nil when it has none. It is
	// called from the goroutine that receives gossip's events: it must
	// not block for long.
	LocalServices func() []LocalService

	// SnapshotFile is where serf keeps the members it knows (Consul's
	// data_dir/serf/local.snapshot), so that a restarted agent rejoins them
	// without a join address. Empty keeps nothing.
	SnapshotFile string
	// ReconnectTimeout is how long a failed member is kept, and tried
	// again, before it is reaped (MemberReap); zero is serf's 24 h.
	ReconnectTimeout time.Duration
	// ReconnectInterval is how often the pool tries to reach a failed
	// member again (DefaultReconnectInterval when zero): what heals a
	// partition, since failure detection stops probing the dead.
	ReconnectInterval time.Duration

	// Tuning. Zero means memberlist.DefaultLANConfig's value (or the default
	// named); production leaves them zero, tests shorten them.
	ProbeInterval    time.Duration // how often a member probes another (1s)
	ProbeTimeout     time.Duration // how long a probe waits for an ack (500ms)
	GossipInterval   time.Duration // how often broadcasts are gossiped (200ms)
	SuspicionMult    int           // suspicion timeout = SuspicionMult × log10(N) × ProbeInterval, at least 1× (4)
	PushPullInterval time.Duration // full state sync with a random member (30s)
	TCPTimeout       time.Duration // every TCP exchange: join, push/pull, TCP ping fallback (10s)
	// LeavePropagateDelay is how long Leave keeps the pool up after the leave
	// went out, so members that have not heard it yet still get answers to
	// their probes instead of suspecting this one (1s, as serf).
	LeavePropagateDelay time.Duration
	// ReapInterval is how often failed and left members are checked for
	// reaping (serf's 15s).
	ReapInterval time.Duration
	// EventBuffer is the capacity of the Events channel (128).
	EventBuffer int

	// EncryptKey (the `encrypt` property) is a base64 AES key of 16, 24 or
	// 32 bytes that encrypts gossip. It starts the keyring when there is no
	// keyring file yet; once there is one, the file wins (see keyring.go).
	EncryptKey string
	// KeyringFile is where the keyring is kept (Consul's
	// data_dir/serf/local.keyring): loaded at start when it exists, created
	// from EncryptKey otherwise, rewritten by every keyring change. Empty
	// keeps the keyring in memory only.
	KeyringFile string

	// wan marks the WAN pool (NewWAN): memberlist's WAN timings.
	wan bool
}

// Defaults that serf and memberlist do not provide.
const (
	DefaultLeavePropagateDelay = time.Second
	DefaultEventBuffer         = 128
	DefaultRetryJoinInterval   = 30 * time.Second // Consul's retry_interval
	// DefaultReconnectInterval is far below serf's 30 s: a member back from
	// a partition is alive again everywhere within seconds. An attempt is
	// one join to one failed member, each agent trying with a probability
	// that makes the pool try every failed member about once an interval.
	DefaultReconnectInterval = 2 * time.Second
)

// validate checks cfg and returns the bind IP and port.
func (cfg *Config) validate() (netip.Addr, uint16, error) {
	var zero netip.Addr
	if cfg.NodeName == "" {
		return zero, 0, errors.New("gossip: node name is required")
	}
	if cfg.Datacenter == "" {
		return zero, 0, errors.New("gossip: datacenter is required")
	}
	switch cfg.Role {
	case RoleServer:
		if cfg.RPCAddr == "" {
			return zero, 0, errors.New("gossip: a server must advertise its RPC address")
		}
		if _, _, err := net.SplitHostPort(cfg.RPCAddr); err != nil {
			return zero, 0, fmt.Errorf("gossip: RPC address %q: %v", cfg.RPCAddr, err)
		}
	case RoleClient:
	default:
		return zero, 0, fmt.Errorf("gossip: role %q is neither %q nor %q", cfg.Role, RoleServer, RoleClient)
	}
	if cfg.BootstrapExpect < 0 {
		return zero, 0, fmt.Errorf("gossip: bootstrap_expect %d is negative", cfg.BootstrapExpect)
	}
	ap, err := netip.ParseAddrPort(cfg.BindAddr)
	if err != nil {
		return zero, 0, fmt.Errorf("gossip: bind address %q is not ip:port: %v", cfg.BindAddr, err)
	}
	ip := ap.Addr().Unmap()
	if ip.IsUnspecified() || ip.IsMulticast() {
		return zero, 0, fmt.Errorf("gossip: bind address %q: gossip advertises the address it binds, so it must be a concrete IP", cfg.BindAddr)
	}
	if ip.Zone() != "" {
		return zero, 0, fmt.Errorf("gossip: bind address %q: IPv6 zones are not supported", cfg.BindAddr)
	}
	for name, d := range map[string]time.Duration{
		"probe interval": cfg.ProbeInterval, "probe timeout": cfg.ProbeTimeout,
		"gossip interval": cfg.GossipInterval, "push/pull interval": cfg.PushPullInterval,
		"TCP timeout": cfg.TCPTimeout, "leave propagate delay": cfg.LeavePropagateDelay,
		"reconnect timeout": cfg.ReconnectTimeout, "reconnect interval": cfg.ReconnectInterval,
		"reap interval": cfg.ReapInterval,
	} {
		if d < 0 {
			return zero, 0, fmt.Errorf("gossip: %s %v is negative", name, d)
		}
	}
	if cfg.SuspicionMult < 0 || cfg.EventBuffer < 0 {
		return zero, 0, errors.New("gossip: suspicion multiplier and event buffer must not be negative")
	}
	return ip, ap.Port(), nil
}

// metricLabels label the pool's serf and memberlist metrics with its
// network, as Consul's: the LAN and WAN pools of a server emit the same
// names.
func (cfg *Config) metricLabels() []metrics.Label {
	network := "lan"
	if cfg.wan {
		network = "wan"
	}
	return []metrics.Label{{Name: "network", Value: network}}
}

// serfConfig builds the serf configuration of a pool: serf's defaults on
// memberlist's LAN (or WAN) defaults, with our addresses, tags, logger,
// snapshot, keyring and any tuning cfg sets.
func (cfg *Config) serfConfig(ip netip.Addr, transport *memberlist.NetTransport, std *log.Logger, tags map[string]string,
	keyring *memberlist.Keyring, events chan<- serf.Event, merge serf.MergeDelegate) *serf.Config {
	port := transport.GetAutoBindPort()
	mc := memberlist.DefaultLANConfig()
	if cfg.wan {
		mc = memberlist.DefaultWANConfig()
	}
	mc.Name = cfg.NodeName
	mc.Transport = transport
	mc.BindAddr = ip.String()
	mc.BindPort = port
	mc.AdvertiseAddr = ip.String()
	mc.AdvertisePort = port
	mc.Logger = std
	setDuration(&mc.ProbeInterval, cfg.ProbeInterval)
	setDuration(&mc.ProbeTimeout, cfg.ProbeTimeout)
	setDuration(&mc.GossipInterval, cfg.GossipInterval)
	setDuration(&mc.PushPullInterval, cfg.PushPullInterval)
	setDuration(&mc.TCPTimeout, cfg.TCPTimeout)
	if cfg.SuspicionMult > 0 {
		mc.SuspicionMult = cfg.SuspicionMult
	}
	// Encryption: with a keyring, memberlist encrypts everything it sends
	// with the primary key and, verifying both ways, neither accepts nor
	// sends plaintext, so an agent without a key in the keyring cannot
	// take part. (Consul's encrypt_verify_incoming/outgoing turn them off
	// to upshift a running plaintext cluster; beacon does not offer that.)
	// The keyring object is shared with serf's keyring operations, which
	// change it in place. Without one, gossip is plaintext.
	if keyring != nil {
		mc.Keyring = keyring
		mc.GossipVerifyIncoming = true
		mc.GossipVerifyOutgoing = true
	}

	sc := serf.DefaultConfig()
	sc.NodeName = cfg.NodeName
	// serf hands its labels on to memberlist.
	sc.MetricLabels = cfg.metricLabels()
	sc.Tags = tags
	sc.MemberlistConfig = mc
	sc.Logger = std
	sc.EventCh = events
	sc.Merge = merge
	sc.SnapshotPath = cfg.SnapshotFile
	sc.KeyringFile = cfg.KeyringFile
	// Said, not left to serf's default: FireUserEvent checks against it.
	sc.UserEventSizeLimit = MaxUserEventBytes
	// A failed member is kept, and tried again, for ReconnectTimeout
	// before it is reaped.
	setDuration(&sc.ReconnectTimeout, cfg.ReconnectTimeout)
	sc.ReconnectInterval = DefaultReconnectInterval
	setDuration(&sc.ReconnectInterval, cfg.ReconnectInterval)
	setDuration(&sc.ReapInterval, cfg.ReapInterval)
	sc.LeavePropagateDelay = DefaultLeavePropagateDelay
	setDuration(&sc.LeavePropagateDelay, cfg.LeavePropagateDelay)
	// No coalescing: the catalog must hear of a failure at once.
	sc.CoalescePeriod, sc.QuiescentPeriod = 0, 0
	// Two agents with one name are a configuration error to report, not
	// a conflict to vote on.
	sc.EnableNameConflictResolution = false
	// Vivaldi network coordinates from the probes' round trips (serf's
	// default, stated: the agent sends its coordinate to the servers,
	// and ?near= sorts by them), with serf's default configuration,
	// whose dimensionality state.CoordinateDimensionality assumes.
	sc.DisableCoordinates = false
	return sc
}

// setDuration sets *dst to v when v is set.
func setDuration(dst *time.Duration, v time.Duration) {
	if v > 0 {
		*dst = v
	}
}
