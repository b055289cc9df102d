package adminapi

import (
	"github.com/hashicorp/serf/coordinate"

	"github.com/beacon-dns/beacon/state"
)

// The JSON shapes of Consul's API where they differ from the state store's.

// AgentSelf is what /v1/agent/self reports about the agent.
type AgentSelf struct {
	NodeName, NodeID, Datacenter, Domain string
	// Version, Revision and BuildDate describe the build, as Consul's
	// Config reports its own.
	Version, Revision, BuildDate string
	Server                       bool
	DataDir                      string
	// DebugConfig is the agent's configuration under the names of
	// Consul's RuntimeConfig. It must hold no secret: no ACL token, no
	// gossip key (Consul's "hidden" says one is set).
	DebugConfig map[string]any
	// Coord is the agent's network coordinate in the LAN pool; nil when
	// the pool has none.
	Coord *coordinate.Coordinate
	// Member is the agent as the LAN pool advertises it.
	Member AgentMember
	// Stats are grouped as Consul's: "agent", "build", "consul" (role,
	// leader, known servers; on a client, the server it follows),
	// "runtime", "serf_lan", and on a server "raft" and "serf_wan".
	Stats map[string]map[string]string
}

// catalogService is an instance in /v1/catalog/service/:name.
type catalogService struct {
	ID                       string
	Node                     string
	Address                  string
	Datacenter               string
	TaggedAddresses          map[string]string
	NodeMeta                 map[string]string
	ServiceKind              string `json:",omitempty"`
	ServiceID                string
	ServiceName              string
	ServiceAddress           string
	ServiceTaggedAddresses   map[string]state.ServiceAddress `json:",omitempty"`
	ServiceTags              []string
	ServiceMeta              map[string]string
	ServicePort              int
	ServiceWeights           state.Weights
	ServiceEnableTagOverride bool
	CreateIndex              uint64
	ModifyIndex              uint64
}

// serviceEntry is an instance in /v1/health/service/:name.
type serviceEntry struct {
	Node    *state.Node
	Service *agentService
	Checks  []*state.HealthCheck
}

// agentService is Consul's AgentService: a service without its node.
type agentService struct {
	// The fields of state.Service, spelled out rather than embedded:
	// ?filter= selectors (go-bexpr) name a struct's own fields.
	Kind              string                          `json:"Kind,omitempty"`
	ID                string                          `json:"ID"`
	Service           string                          `json:"Service"`
	Tags              []string                        `json:"Tags"`
	Address           string                          `json:"Address"`
	TaggedAddresses   map[string]state.ServiceAddress `json:"TaggedAddresses,omitempty"`
	Meta              map[string]string               `json:"Meta"`
	Port              int                             `json:"Port"`
	Weights           state.Weights                   `json:"Weights"`
	EnableTagOverride bool                            `json:"EnableTagOverride"`
	CreateIndex       uint64                          `json:"CreateIndex"`
	ModifyIndex       uint64                          `json:"ModifyIndex"`
	Datacenter        string                          `json:",omitempty"`
	ContentHash       string                          `json:",omitempty"`
}

// catalogNode is /v1/catalog/node/:node.
type catalogNode struct {
	Node     *state.Node
	Services map[string]*agentService
}

// serviceDefinition is the body of /v1/agent/service/register.
type serviceDefinition struct {
	Kind              string
	ID                string
	Name              string
	Tags              []string
	Address           string
	TaggedAddresses   map[string]state.ServiceAddress
	Meta              map[string]string
	Port              int
	Weights           *state.Weights
	EnableTagOverride bool
	Check             *checkDefinition
	Checks            []*checkDefinition
}

// checkDefinition is a check in a service definition (Consul's
// AgentServiceCheck).
type checkDefinition struct {
	CheckID                        string
	Name                           string
	ScriptArgs                     []string
	Interval                       string
	Timeout                        string
	TTL                            string
	HTTP                           string
	Header                         map[string][]string
	Method                         string
	Body                           string
	TCP                            string
	GRPC                           string
	GRPCUseTLS                     bool
	Status                         string
	Notes                          string
	TLSSkipVerify                  bool
	DeregisterCriticalServiceAfter string
	SuccessBeforePassing           int
	FailuresBeforeCritical         int
}

// nonNil turns a nil slice into an empty one: Consul answers [] not null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
