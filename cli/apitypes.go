package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// The JSON shapes of the API's answers, as Consul's Go client (the api
// package) decodes them. `watch` prints what Consul's watch prints, which
// is its client's structs marshalled again: the same fields in the same
// order, absent ones zero, unknown ones dropped, and so do these. Blocks
// that only Connect (service mesh) uses are passed through as the agent
// sent them.

// kvPair is api.KVPair.
type kvPair struct {
	Key         string
	CreateIndex uint64
	ModifyIndex uint64
	LockIndex   uint64
	Flags       uint64
	Value       []byte
	Session     string
	Namespace   string `json:",omitempty"`
	Partition   string `json:",omitempty"`
}

// locality is api.Locality.
type locality struct {
	Region string
	Zone   string
}

// catalogNode is api.Node.
type catalogNode struct {
	ID              string
	Node            string
	Address         string
	Datacenter      string
	TaggedAddresses map[string]string
	Meta            map[string]string
	CreateIndex     uint64
	ModifyIndex     uint64
	Partition       string    `json:",omitempty"`
	PeerName        string    `json:",omitempty"`
	Locality        *locality `json:",omitempty"`
}

// serviceAddress is api.ServiceAddress.
type serviceAddress struct {
	Address string
	Port    int
}

// servicePort is api.ServicePort.
type servicePort struct {
	Name    string
	Port    int
	Default bool
}

// agentWeights is api.AgentWeights.
type agentWeights struct {
	Passing int
	Warning int
}

// meshGateway is api.MeshGatewayConfig.
type meshGateway struct {
	Mode string `json:",omitempty"`
}

// exposeConfig is api.ExposeConfig.
type exposeConfig struct {
	Checks bool              `json:",omitempty"`
	Paths  []json.RawMessage `json:",omitempty"`
}

// transparentProxy is api.TransparentProxyConfig.
type transparentProxy struct {
	OutboundListenerPort int  `json:",omitempty"`
	DialedDirectly       bool `json:",omitempty"`
}

// proxyConfig is api.AgentServiceConnectProxyConfig: the agent always sends
// one (Consul's server type is not a pointer), so the client always prints
// one, with MeshGateway and Expose even when empty.
type proxyConfig struct {
	EnvoyExtensions        []json.RawMessage `json:",omitempty"`
	DestinationServiceName string            `json:",omitempty"`
	DestinationServiceID   string            `json:",omitempty"`
	LocalServiceAddress    string            `json:",omitempty"`
	LocalServicePort       int               `json:",omitempty"`
	LocalServicePorts      []servicePort     `json:",omitempty"`
	LocalServiceSocketPath string            `json:",omitempty"`
	Mode                   string            `json:",omitempty"`
	TransparentProxy       *transparentProxy `json:",omitempty"`
	Config                 map[string]any    `json:",omitempty"`
	Upstreams              []json.RawMessage `json:",omitempty"`
	MeshGateway            meshGateway       `json:",omitempty"`
	Expose                 exposeConfig      `json:",omitempty"`
	AccessLogs             *json.RawMessage  `json:",omitempty"`
}

// serviceConnect is api.AgentServiceConnect.
type serviceConnect struct {
	Native         bool             `json:",omitempty"`
	SidecarService *json.RawMessage `json:",omitempty"`
}

// agentService is api.AgentService.
type agentService struct {
	Kind              string `json:",omitempty"`
	ID                string
	Service           string
	Tags              []string
	Meta              map[string]string
	Port              int
	Ports             []servicePort `json:",omitempty"`
	Address           string
	SocketPath        string                    `json:",omitempty"`
	TaggedAddresses   map[string]serviceAddress `json:",omitempty"`
	Weights           agentWeights
	EnableTagOverride bool
	CreateIndex       uint64           `json:",omitempty"`
	ModifyIndex       uint64           `json:",omitempty"`
	ContentHash       string           `json:",omitempty"`
	Proxy             *proxyConfig     `json:",omitempty"`
	Connect           *serviceConnect  `json:",omitempty"`
	PeerName          string           `json:",omitempty"`
	AI                *json.RawMessage `json:",omitempty"`
	Namespace         string           `json:",omitempty"`
	Partition         string           `json:",omitempty"`
	Datacenter        string           `json:",omitempty"`
	Locality          *locality        `json:",omitempty"`
}

// healthCheck is api.HealthCheck.
type healthCheck struct {
	Node        string
	CheckID     string
	Name        string
	Status      string
	Notes       string
	Output      string
	ServiceID   string
	ServiceName string
	ServiceTags []string
	Type        string
	Namespace   string `json:",omitempty"`
	Partition   string `json:",omitempty"`
	ExposedPort int
	PeerName    string `json:",omitempty"`

	Definition checkDefinition

	CreateIndex uint64
	ModifyIndex uint64
}

// checkDefinition is api.HealthCheckDefinition, which reads its durations
// as strings ("10s") or nanoseconds, from the *Duration fields when sent,
// and writes them as strings first.
type checkDefinition struct {
	HTTP          string
	Header        map[string][]string
	Method        string
	Body          string
	TLSServerName string
	TLSSkipVerify bool
	TCP           string
	TCPUseTLS     bool
	UDP           string
	GRPC          string
	OSService     string
	GRPCUseTLS    bool
	SessionName   string `json:",omitempty"`

	Interval, Timeout, DeregisterCriticalServiceAfter time.Duration
}

// checkDefinitionFields are the fields of checkDefinition that JSON carries
// as they are.
type checkDefinitionFields struct {
	HTTP          string
	Header        map[string][]string
	Method        string
	Body          string
	TLSServerName string
	TLSSkipVerify bool
	TCP           string
	TCPUseTLS     bool
	UDP           string
	GRPC          string
	OSService     string
	GRPCUseTLS    bool
	SessionName   string `json:",omitempty"`
}

func (d checkDefinition) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Interval                       string
		Timeout                        string
		DeregisterCriticalServiceAfter string
		checkDefinitionFields
	}{d.Interval.String(), d.Timeout.String(), d.DeregisterCriticalServiceAfter.String(), checkDefinitionFields{
		d.HTTP, d.Header, d.Method, d.Body, d.TLSServerName, d.TLSSkipVerify, d.TCP, d.TCPUseTLS, d.UDP, d.GRPC,
		d.OSService, d.GRPCUseTLS, d.SessionName,
	}})
}

func (d *checkDefinition) UnmarshalJSON(b []byte) error {
	var aux struct {
		checkDefinitionFields
		Interval, Timeout, DeregisterCriticalServiceAfter                         json.RawMessage
		IntervalDuration, TimeoutDuration, DeregisterCriticalServiceAfterDuration json.RawMessage
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	f := aux.checkDefinitionFields
	*d = checkDefinition{HTTP: f.HTTP, Header: f.Header, Method: f.Method, Body: f.Body, TLSServerName: f.TLSServerName,
		TLSSkipVerify: f.TLSSkipVerify, TCP: f.TCP, TCPUseTLS: f.TCPUseTLS, UDP: f.UDP, GRPC: f.GRPC,
		OSService: f.OSService, GRPCUseTLS: f.GRPCUseTLS, SessionName: f.SessionName}
	for _, x := range []struct {
		out           *time.Duration
		legacy, exact json.RawMessage
	}{
		{&d.Interval, aux.Interval, aux.IntervalDuration},
		{&d.Timeout, aux.Timeout, aux.TimeoutDuration},
		{&d.DeregisterCriticalServiceAfter, aux.DeregisterCriticalServiceAfter, aux.DeregisterCriticalServiceAfterDuration},
	} {
		raw := x.legacy
		if len(x.exact) > 0 && string(x.exact) != "null" {
			raw = x.exact
		}
		v, err := parseJSONDuration(raw)
		if err != nil {
			return err
		}
		*x.out = v
	}
	return nil
}

// parseJSONDuration reads a duration as a string ("10s") or a number of
// nanoseconds; nothing or null is zero.
func parseJSONDuration(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return time.ParseDuration(s)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %s", raw)
	}
	return time.Duration(f), nil
}

// serviceEntry is api.ServiceEntry, an element of /v1/health/service.
type serviceEntry struct {
	Node    *catalogNode
	Service *agentService
	Checks  []*healthCheck
}

// userEvent is api.UserEvent, an element of /v1/event/list.
type userEvent struct {
	ID            string
	Name          string
	Payload       []byte
	NodeFilter    string
	ServiceFilter string
	TagFilter     string
	Version       int
	LTime         uint64
}
