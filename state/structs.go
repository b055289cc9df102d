package state

import "strings"

// The catalog types. Field names follow Consul's JSON so that the HTTP API can
// encode them directly where Consul's shapes match.

// Health check statuses, as Consul names them.
const (
	HealthPassing  = "passing"
	HealthWarning  = "warning"
	HealthCritical = "critical"
	HealthAny      = "any"
)

// SerfCheckID is the node-level check that gossip membership drives.
const (
	SerfCheckID   = "serfHealth"
	SerfCheckName = "Serf Health Status"
)

// Node is a machine in the catalog.
type Node struct {
	ID              string            `json:"ID"`
	Node            string            `json:"Node"`
	Address         string            `json:"Address"`
	Datacenter      string            `json:"Datacenter"`
	TaggedAddresses map[string]string `json:"TaggedAddresses"`
	Meta            map[string]string `json:"Meta"`
	CreateIndex     uint64            `json:"CreateIndex"`
	ModifyIndex     uint64            `json:"ModifyIndex"`
}

// Weights are the SRV weights of a service instance by health.
type Weights struct {
	Passing int `json:"Passing"`
	Warning int `json:"Warning"`
}

// ServiceAddress is one of a service's tagged addresses.
type ServiceAddress struct {
	Address string `json:"Address"`
	Port    int    `json:"Port"`
}

// Service is one instance of a service on a node (Consul's NodeService). Node
// is the owning node's name; it is not part of Consul's NodeService JSON, so
// the HTTP API drops it where Consul does.
type Service struct {
	Node              string                    `json:"-"`
	Kind              string                    `json:"Kind,omitempty"`
	ID                string                    `json:"ID"`
	Service           string                    `json:"Service"`
	Tags              []string                  `json:"Tags"`
	Address           string                    `json:"Address"`
	TaggedAddresses   map[string]ServiceAddress `json:"TaggedAddresses,omitempty"`
	Meta              map[string]string         `json:"Meta"`
	Port              int                       `json:"Port"`
	Weights           Weights                   `json:"Weights"`
	EnableTagOverride bool                      `json:"EnableTagOverride"`
	CreateIndex       uint64                    `json:"CreateIndex"`
	ModifyIndex       uint64                    `json:"ModifyIndex"`
}

// HasTag reports whether the instance carries tag (case-insensitive, as
// Consul's DNS and tag filters match).
func (s *Service) HasTag(tag string) bool {
	for _, t := range s.Tags {
		if strings.EqualFold(t, tag) {
			return true
		}
	}
	return false
}

// CheckDefinition is the definition of how a check runs, kept with the check so the
// API can show it. Only the agent that owns the check runs it.
type CheckDefinition struct {
	HTTP                           string              `json:"HTTP,omitempty"`
	Method                         string              `json:"Method,omitempty"`
	Header                         map[string][]string `json:"Header,omitempty"`
	TLSSkipVerify                  bool                `json:"TLSSkipVerify,omitempty"`
	Body                           string              `json:"Body,omitempty"`
	TCP                            string              `json:"TCP,omitempty"`
	TTL                            string              `json:"TTL,omitempty"`
	ScriptArgs                     []string            `json:"ScriptArgs,omitempty"`
	GRPC                           string              `json:"GRPC,omitempty"`
	GRPCUseTLS                     bool                `json:"GRPCUseTLS,omitempty"`
	Interval                       string              `json:"Interval,omitempty"`
	Timeout                        string              `json:"Timeout,omitempty"`
	DeregisterCriticalServiceAfter string              `json:"DeregisterCriticalServiceAfter,omitempty"`
	// SuccessBeforePassing and FailuresBeforeCritical are how many
	// consecutive results it takes to turn the check passing, or critical
	// (Consul's agent check fields; 0 means at once).
	SuccessBeforePassing   int `json:"SuccessBeforePassing,omitempty"`
	FailuresBeforeCritical int `json:"FailuresBeforeCritical,omitempty"`
}

// HealthCheck is a check on a node, or on one service of the node when
// ServiceID is set.
type HealthCheck struct {
	Node        string          `json:"Node"`
	CheckID     string          `json:"CheckID"`
	Name        string          `json:"Name"`
	Status      string          `json:"Status"`
	Notes       string          `json:"Notes"`
	Output      string          `json:"Output"`
	ServiceID   string          `json:"ServiceID"`
	ServiceName string          `json:"ServiceName"`
	ServiceTags []string        `json:"ServiceTags"`
	Type        string          `json:"Type"`
	Definition  CheckDefinition `json:"Definition"`
	CreateIndex uint64          `json:"CreateIndex"`
	ModifyIndex uint64          `json:"ModifyIndex"`
}

// ServiceNode is an instance joined with its node, for catalog and health
// reads.
type ServiceNode struct {
	Node    *Node
	Service *Service
	Checks  []*HealthCheck
}

// RegisterRequest registers or updates a node and, optionally, a service and
// checks on it (Consul's catalog register body).
type RegisterRequest struct {
	Datacenter      string            `json:"Datacenter"`
	ID              string            `json:"ID"`
	Node            string            `json:"Node"`
	Address         string            `json:"Address"`
	TaggedAddresses map[string]string `json:"TaggedAddresses"`
	NodeMeta        map[string]string `json:"NodeMeta"`
	Service         *Service          `json:"Service"`
	Check           *HealthCheck      `json:"Check"`
	Checks          []*HealthCheck    `json:"Checks"`
	SkipNodeUpdate  bool              `json:"SkipNodeUpdate"`
}

// DeregisterRequest removes a whole node, or only one service or check of it.
type DeregisterRequest struct {
	Datacenter string `json:"Datacenter"`
	Node       string `json:"Node"`
	ServiceID  string `json:"ServiceID"`
	CheckID    string `json:"CheckID"`
}
