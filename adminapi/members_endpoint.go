package adminapi

import (
	"net/http"

	"github.com/beacon-dns/beacon/acl"
)

// Gossip is what the membership endpoints (/v1/agent/members, join, leave,
// force-leave) need of the running agent.
type Gossip interface {
	// Members are the LAN members this agent knows (with wan, the WAN
	// members a server knows; none on a client agent), in Consul's shape.
	Members(wan bool) []AgentMember
	// Join joins the LAN pool (with wan, a server the WAN pool) through
	// addr and reports how many members it reached.
	Join(addr string, wan bool) (int, error)
	// Leave leaves the pool gracefully; the agent then shuts down.
	Leave() error
	// ForceLeave marks a failed member left everywhere, forgetting it with
	// prune.
	ForceLeave(node string, prune bool) error
}

// AgentMember is one member as /v1/agent/members reports it (Consul's
// serf member shape).
type AgentMember struct {
	Name        string
	Addr        string
	Port        uint16
	Tags        map[string]string
	Status      int
	ProtocolMin uint8
	ProtocolMax uint8
	ProtocolCur uint8
	DelegateMin uint8
	DelegateMax uint8
	DelegateCur uint8
}

func (s *Server) gossipRoutes(mux *http.ServeMux, g Gossip) {
	mux.HandleFunc("GET /v1/agent/members", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		// consul members sends ?segment=_all: every segment, which is the
		// only one there is.
		if seg := q.Get("segment"); seg != "" && seg != "_all" {
			s.writeErr(w, badRequest("Network segments are not supported"))
			return
		}
		a := authz(r)
		members, dropped := keep(g.Members(isTrue(q.Get("wan"))), func(m AgentMember) bool { return a.NodeRead(m.Name) })
		filtered(w, dropped)
		if members == nil {
			members = []AgentMember{}
		}
		writeJSON(w, members)
	})
	agentWrite := func(a *acl.Authorizer) bool { return a.AgentWrite(s.agent.NodeName()) }
	mux.HandleFunc("PUT /v1/agent/join/{address}", s.guarded(agentWrite, func(w http.ResponseWriter, r *http.Request) {
		if _, err := g.Join(r.PathValue("address"), isTrue(r.URL.Query().Get("wan"))); err != nil {
			s.writeErr(w, err)
			return
		}
	}))
	mux.HandleFunc("PUT /v1/agent/leave", s.guarded(agentWrite, func(w http.ResponseWriter, r *http.Request) {
		if err := g.Leave(); err != nil {
			s.writeErr(w, err)
			return
		}
	}))
	mux.HandleFunc("PUT /v1/agent/force-leave/{node}", s.guarded((*acl.Authorizer).OperatorWrite, func(w http.ResponseWriter, r *http.Request) {
		_, prune := r.URL.Query()["prune"]
		if err := g.ForceLeave(r.PathValue("node"), prune); err != nil {
			s.writeErr(w, err)
			return
		}
	}))
}

// isTrue reads a flag parameter as Consul's API sets it ("1", "true").
func isTrue(v string) bool { return v != "" && v != "0" && v != "false" }

// Keyring is what /v1/operator/keyring needs of the running agent.
type Keyring interface {
	// KeyringList gathers the keys of every member (of this agent only
	// with localOnly), one entry per pool: a server's WAN pool, then the
	// LAN pool.
	KeyringList(localOnly bool) ([]KeyringInfo, error)
	KeyringInstall(key string) error
	KeyringUse(key string) error
	KeyringRemove(key string) error
}

// KeyringInfo is one pool's keys, in Consul's KeyringResponse shape.
type KeyringInfo struct {
	WAN         bool
	Datacenter  string
	Segment     string
	Keys        map[string]int
	PrimaryKeys map[string]int
	NumNodes    int
	Messages    map[string]string
}

func (s *Server) keyringRoutes(mux *http.ServeMux, k Keyring) {
	mux.HandleFunc("GET /v1/operator/keyring", s.guarded((*acl.Authorizer).KeyringRead, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		local := q.Get("local-only") == "true" || q.Get("local-only") == "1"
		info, err := k.KeyringList(local)
		if err != nil {
			s.writeErr(w, err)
			return
		}
		writeJSON(w, info)
	}))
	op := func(f func(string) error) http.HandlerFunc {
		return s.guarded((*acl.Authorizer).KeyringWrite, func(w http.ResponseWriter, r *http.Request) {
			var body struct{ Key string }
			if err := decodeBody(r, &body); err != nil {
				s.writeErr(w, err)
				return
			}
			if body.Key == "" {
				s.writeErr(w, badRequest("Missing Key"))
				return
			}
			if err := f(body.Key); err != nil {
				s.writeErr(w, err)
			}
		})
	}
	mux.HandleFunc("POST /v1/operator/keyring", op(k.KeyringInstall))
	mux.HandleFunc("PUT /v1/operator/keyring", op(k.KeyringUse))
	mux.HandleFunc("DELETE /v1/operator/keyring", op(k.KeyringRemove))
}
