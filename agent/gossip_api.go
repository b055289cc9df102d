package agent

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"

	"github.com/beacon-dns/beacon/adminapi"
	"github.com/beacon-dns/beacon/gossip"
)

// The membership endpoints' backend (adminapi.Gossip).
var _ adminapi.Gossip = (*Agent)(nil)

// Members lists the LAN members (with wan, the WAN members a server knows)
// in Consul's shape, with the tags Consul's tools read (role "consul" for
// servers, "node" for clients; dc, id, port, build, expect).
func (a *Agent) Members(wan bool) []adminapi.AgentMember {
	var members []gossip.Member
	switch {
	case !wan:
		members = a.lan.Members()
	case a.wan != nil:
		members = a.wan.Members()
	}
	out := make([]adminapi.AgentMember, 0, len(members))
	for _, m := range members {
		out = append(out, consulMember(m))
	}
	return out
}

func consulMember(m gossip.Member) adminapi.AgentMember {
	tags := map[string]string{
		"dc": m.Datacenter, "id": m.ID, "build": Version, "vsn": "2", "vsn_min": "2", "vsn_max": "3", "segment": "",
		"role": "node",
	}
	if m.IsServer() {
		tags["role"] = "consul"
		tags["raft_vsn"] = "3"
		if _, port, err := net.SplitHostPort(m.RPCAddr); err == nil {
			tags["port"] = port
		}
		if m.BootstrapExpect > 0 {
			tags["expect"] = strconv.Itoa(m.BootstrapExpect)
		}
	}
	return adminapi.AgentMember{
		Name: m.Name, Addr: m.Addr, Port: m.Port, Tags: tags, Status: int(m.Status),
		// memberlist's protocol range and serf's delegate versions, as
		// Consul reports them.
		ProtocolMin: 1, ProtocolMax: 5, ProtocolCur: 2, DelegateMin: 2, DelegateMax: 5, DelegateCur: 4,
	}
}

// Join joins the LAN pool (with wan, the WAN pool) through addr.
func (a *Agent) Join(addr string, wan bool) (int, error) {
	pool := a.lan
	if wan {
		if a.wan == nil {
			return 0, fmt.Errorf("%w: only servers join the WAN pool", adminapi.ErrInvalid)
		}
		pool = a.wan
	}
	n, err := pool.Join([]string{addr})
	if err != nil {
		return n, fmt.Errorf("joining %s: %w", addr, err)
	}
	return n, nil
}

// Leave leaves the LAN pool gracefully, so the others mark this agent left
// and the leader deregisters it at once, then shuts the process down, as
// Consul's agent does.
func (a *Agent) Leave() error {
	if err := a.leave(); err != nil {
		return err
	}
	// CoreDNS's handler stops every server; OnFinalShutdown then stops the
	// agent, whose HTTP shutdown lets this request's answer go out first.
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Signal(syscall.SIGTERM)
	}
	return nil
}

// leave leaves the pool once.
func (a *Agent) leave() error {
	if a.left.Swap(true) {
		return nil
	}
	a.logger.Info("leaving the cluster gracefully")
	if a.wan != nil {
		// The WAN pool first, as Consul leaves: other datacenters stop
		// routing to this server at once.
		if err := a.wan.Leave(); err != nil {
			a.logger.Warn("leaving the WAN pool", "error", err)
		}
	}
	return a.lan.Leave()
}

// ForceLeave marks a member left on every member (the leader then
// deregisters it), forgetting it with prune. Forcing out an alive member is
// accepted and does nothing lasting, as in Consul (the member refutes it).
func (a *Agent) ForceLeave(node string, prune bool) error {
	err := a.lan.ForceLeave(node, prune)
	if errors.Is(err, gossip.ErrNoMember) {
		return fmt.Errorf("%w: No node found with name '%s'", adminapi.ErrNotFound, node)
	}
	return err
}

// The keyring endpoint's backend.
var _ adminapi.Keyring = (*Agent)(nil)

func (a *Agent) keyringInfo(r gossip.KeyringResponse) adminapi.KeyringInfo {
	return adminapi.KeyringInfo{Datacenter: a.cfg.Datacenter, Keys: nonNilMap(r.Keys), PrimaryKeys: nonNilMap(r.PrimaryKeys),
		NumNodes: r.NumNodes, Messages: nonNilMap(r.Messages)}
}

func nonNilMap[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return m
}

// KeyringList gathers every member's keys, or this agent's with localOnly:
// the WAN pool's first on a server, then the LAN pool's, as Consul lists
// them.
func (a *Agent) KeyringList(localOnly bool) ([]adminapi.KeyringInfo, error) {
	list := (*gossip.Pool).KeyringList
	if localOnly {
		list = (*gossip.Pool).KeyringLocal
	}
	var out []adminapi.KeyringInfo
	for _, pool := range a.pools() {
		r, err := list(pool)
		if err != nil {
			return nil, keyringErr(err)
		}
		info := a.keyringInfo(r)
		info.WAN = pool == a.wan
		out = append(out, info)
	}
	return out, nil
}

// pools are the agent's gossip pools: the WAN pool first on a server.
func (a *Agent) pools() []*gossip.Pool {
	if a.wan != nil {
		return []*gossip.Pool{a.wan, a.lan}
	}
	return []*gossip.Pool{a.lan}
}

// keyringOp runs a keyring change on every pool of the agent (a server's
// WAN pool first, as Consul changes it), stopping at the first failure.
func (a *Agent) keyringOp(op func(*gossip.Pool, string) (gossip.KeyringResponse, error), key string) error {
	for _, pool := range a.pools() {
		if _, err := op(pool, key); err != nil {
			return keyringErr(err)
		}
	}
	return nil
}

// KeyringInstall installs key on every member.
func (a *Agent) KeyringInstall(key string) error {
	return a.keyringOp((*gossip.Pool).KeyringInstall, key)
}

// KeyringUse makes key every member's primary key.
func (a *Agent) KeyringUse(key string) error { return a.keyringOp((*gossip.Pool).KeyringUse, key) }

// KeyringRemove removes key from every member.
func (a *Agent) KeyringRemove(key string) error {
	return a.keyringOp((*gossip.Pool).KeyringRemove, key)
}

// keyringErr makes a keyring refusal the caller's bad request where it is.
func keyringErr(err error) error {
	if errors.Is(err, gossip.ErrNoKeyring) {
		return fmt.Errorf("%w: %v", adminapi.ErrInvalid, err)
	}
	return err
}
