package snapshot

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/serf/coordinate"
)

// Consul's snapshots. A Consul archive is laid out as beacon's (meta.json,
// state.bin, SHA256SUMS, checked the same way); its state.bin is Consul's
// FSM snapshot: a msgpack header (the last index), then records, each one
// byte of Consul's message type followed by one msgpack value, as Consul's
// servers write them with hashicorp/go-msgpack. The records beacon has a
// place for (nodes with their services and checks, KV entries, sessions,
// coordinates) are decoded into beacon's state; the rest are walked over
// (they must still be well-formed) and reported as skipped, with why.
//
// What is known here of the format comes from Consul's public
// documentation and its MPL-licensed releases (up to v1.16), and from
// snapshots saved by Consul itself (testdata/consul).

// Consul's message types (structs.MessageType). Its snapshots carry the
// types marked "snapshot"; the others are Raft log commands.
const (
	consulRegister          = 0 // snapshot: a node, with one service or check
	consulDeregister        = 1
	consulKVS               = 2 // snapshot: a KV entry
	consulSession           = 3 // snapshot
	consulACLLegacy         = 4 // snapshot before Consul 1.11: a legacy ACL token
	consulTombstone         = 5 // snapshot: a deleted KV entry's index
	consulCoordinates       = 6 // snapshot: a batch of network coordinates
	consulPreparedQuery     = 7 // snapshot
	consulTxn               = 8
	consulAutopilot         = 9  // snapshot
	consulArea              = 10 // snapshot (Enterprise)
	consulACLBootstrap      = 11 // snapshot
	consulIntention         = 12 // snapshot before Consul 1.9
	consulConnectCA         = 13 // snapshot
	consulConnectCAProvider = 14 // snapshot
	consulConnectCAConfig   = 15 // snapshot
	consulIndex             = 16 // snapshot: a table's index
	consulACLToken          = 17 // snapshot
	consulACLTokenDelete    = 18
	consulACLPolicy         = 19 // snapshot
	consulACLPolicyDelete   = 20
	consulConnectCALeaf     = 21
	consulConfigEntry       = 22 // snapshot
	consulACLRole           = 23 // snapshot
	consulACLRoleDelete     = 24
	consulACLBindingRule    = 25 // snapshot
	consulACLBindingDelete  = 26
	consulACLAuthMethod     = 27 // snapshot
	consulACLAuthDelete     = 28
	consulChunkingState     = 29 // snapshot
	consulFederationState   = 30 // snapshot
	consulSystemMetadata    = 31 // snapshot
	consulServiceVirtualIP  = 32 // snapshot
	consulFreeVirtualIP     = 33 // snapshot
	consulKindServiceNames  = 34 // snapshot
	consulPeering           = 35 // snapshot
	consulPeeringDelete     = 36
	consulPeeringTerminate  = 37
	consulPeeringBundle     = 38 // snapshot
	consulPeeringBundleDel  = 39
	consulPeeringSecrets    = 40 // snapshot
	consulRaftLogVerifier   = 41
	consulResource          = 42 // snapshot
	consulUpdateVirtualIP   = 43
)

// consulTypeNames are the names `consul snapshot inspect` gives the types.
var consulTypeNames = map[uint8]string{
	consulRegister: "Register", consulDeregister: "Deregister", consulKVS: "KVS", consulSession: "Session",
	consulACLLegacy: "ACL", consulTombstone: "Tombstone", consulCoordinates: "CoordinateBatchUpdate",
	consulPreparedQuery: "PreparedQuery", consulTxn: "Txn", consulAutopilot: "Autopilot", consulArea: "Area",
	consulACLBootstrap: "ACLBootstrap", consulIntention: "Intention", consulConnectCA: "ConnectCA",
	consulConnectCAProvider: "ConnectCAProviderState", consulConnectCAConfig: "ConnectCAConfig",
	consulIndex: "Index", consulACLToken: "ACLToken", consulACLTokenDelete: "ACLTokenDelete",
	consulACLPolicy: "ACLPolicy", consulACLPolicyDelete: "ACLPolicyDelete", consulConnectCALeaf: "ConnectCALeaf",
	consulConfigEntry: "ConfigEntry", consulACLRole: "ACLRole", consulACLRoleDelete: "ACLRoleDelete",
	consulACLBindingRule: "ACLBindingRule", consulACLBindingDelete: "ACLBindingRuleDelete",
	consulACLAuthMethod: "ACLAuthMethod", consulACLAuthDelete: "ACLAuthMethodDelete",
	consulChunkingState: "ChunkingState", consulFederationState: "FederationState",
	consulSystemMetadata: "SystemMetadata", consulServiceVirtualIP: "ServiceVirtualIP",
	consulFreeVirtualIP: "FreeVirtualIP", consulKindServiceNames: "KindServiceName", consulPeering: "Peering",
	consulPeeringDelete: "PeeringDelete", consulPeeringTerminate: "PeeringTerminateByID",
	consulPeeringBundle: "PeeringTrustBundle", consulPeeringBundleDel: "PeeringTrustBundleDelete",
	consulPeeringSecrets: "PeeringSecret", consulRaftLogVerifier: "RaftLogVerifierCheckpoint",
	consulResource: "Resource", consulUpdateVirtualIP: "UpdateManualVirtualIPRequestType",
}

func consulTypeName(t uint8) string {
	if name, ok := consulTypeNames[t]; ok {
		return name
	}
	return "unknown type " + strconv.Itoa(int(t))
}

// Why records are skipped. Those of whole types are Consul's own
// machinery, or features beacon does not have.
const (
	reasonQueryPeering = "prepared queries that use cluster peering, sameness groups or Connect: beacon has none"
	reasonACL          = "ACL data is not imported: recreate tokens and policies with `beacon acl`"
	reasonMesh         = "Consul-internal: service mesh (Connect) state; beacon has no service mesh"
	reasonPeering      = "Consul-internal: cluster peering state; beacon has no cluster peering"
	reasonTombstone    = "Consul-internal: a deleted KV entry kept for blocking queries; beacon keeps the KV index it implies"
	reasonIndex        = "Consul-internal: the index of a table beacon does not restore"
	reasonNotState     = "a Consul log command, not state: unexpected in a snapshot"
	reasonUnknown      = "a record type this beacon does not know"
	reasonPeered       = "imported from a cluster peer: beacon has no cluster peering"
	reasonPartition    = "in a Consul Enterprise admin partition or namespace other than the default"
	reasonCoordNoNode  = "the coordinate of a node the snapshot does not hold"
	reasonCoordInvalid = "an invalid coordinate (NaN, infinite, or not of the cluster's dimensionality)"
	reasonCoordTwice   = "a second coordinate of the same node and segment"
)

// consulSkipReasons says why each type beacon does not restore is
// skipped. Register, KVS, Session, CoordinateBatchUpdate, Tombstone and
// Index are decoded (and may still skip single records).
var consulSkipReasons = map[uint8]string{
	consulDeregister:        reasonNotState,
	consulACLLegacy:         reasonACL,
	consulTxn:               reasonNotState,
	consulAutopilot:         "Consul-internal: autopilot settings; beacon's servers manage their own Raft membership",
	consulArea:              "Consul-internal: Enterprise network areas",
	consulACLBootstrap:      reasonACL,
	consulIntention:         reasonMesh,
	consulConnectCA:         reasonMesh,
	consulConnectCAProvider: reasonMesh,
	consulConnectCAConfig:   reasonMesh,
	consulACLToken:          reasonACL,
	consulACLTokenDelete:    reasonNotState,
	consulACLPolicy:         reasonACL,
	consulACLPolicyDelete:   reasonNotState,
	consulConnectCALeaf:     reasonNotState,
	consulConfigEntry:       "Consul-internal: configuration entries (service defaults, mesh and gateway settings)",
	consulACLRole:           reasonACL,
	consulACLRoleDelete:     reasonNotState,
	consulACLBindingRule:    reasonACL,
	consulACLBindingDelete:  reasonNotState,
	consulACLAuthMethod:     reasonACL,
	consulACLAuthDelete:     reasonNotState,
	consulChunkingState:     "Consul-internal: the state of Raft log chunking",
	consulFederationState:   "Consul-internal: mesh gateway WAN federation state",
	consulSystemMetadata:    "Consul-internal: server metadata",
	consulServiceVirtualIP:  reasonMesh,
	consulFreeVirtualIP:     reasonMesh,
	consulKindServiceNames:  reasonMesh,
	consulPeering:           reasonPeering,
	consulPeeringDelete:     reasonNotState,
	consulPeeringTerminate:  reasonNotState,
	consulPeeringBundle:     reasonPeering,
	consulPeeringBundleDel:  reasonNotState,
	consulPeeringSecrets:    reasonPeering,
	consulRaftLogVerifier:   reasonNotState,
	consulResource:          "Consul-internal: resources of Consul's v2 catalog API",
	consulUpdateVirtualIP:   reasonNotState,
}

// consulIndexTables are the tables whose Consul index (an Index record)
// beacon keeps: those it restores rows of, which have the same names in
// both.
var consulIndexTables = map[string]bool{"nodes": true, "services": true, "checks": true, "kvs": true,
	"sessions": true, "coordinates": true, "prepared-queries": true}

// consulHandle decodes as Consul's servers encode: strings and byte
// slices alike are raw strings, times are their binary encoding.
var consulHandle = func() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{}
	h.RawToString = true
	h.TimeNotBuiltin = true
	h.MapType = reflect.TypeOf(map[string]any(nil))
	return h
}()

// The records beacon restores, with the fields it takes: msgpack matches
// map keys to these field names, and leaves the keys it has no field for.

// consulEnterprise is Consul Enterprise's place for a record; the
// community edition writes neither field.
type consulEnterprise struct {
	Partition string
	Namespace string
}

func (e consulEnterprise) isDefault() bool {
	return (e.Partition == "" || e.Partition == "default") && (e.Namespace == "" || e.Namespace == "default")
}

type consulRegisterRecord struct {
	ID              string
	Node            string
	Address         string
	Datacenter      string
	TaggedAddresses map[string]string
	NodeMeta        map[string]string
	Service         *consulService
	Check           *consulCheck
	Checks          []*consulCheck
	PeerName        string
	consulEnterprise
	CreateIndex uint64
	ModifyIndex uint64
}

type consulServiceAddress struct {
	Address string
	Port    int
}

type consulWeights struct {
	Passing int
	Warning int
}

type consulService struct {
	Kind              string
	ID                string
	Service           string
	Tags              []string
	Address           string
	TaggedAddresses   map[string]consulServiceAddress
	Meta              map[string]string
	Port              int
	Weights           *consulWeights
	EnableTagOverride bool
	PeerName          string
	consulEnterprise
	CreateIndex uint64
	ModifyIndex uint64
}

type consulCheckDefinition struct {
	HTTP                           string
	TLSSkipVerify                  bool
	Header                         map[string][]string
	Method                         string
	Body                           string
	TCP                            string
	GRPC                           string
	GRPCUseTLS                     bool
	ScriptArgs                     []string
	Interval                       time.Duration
	Timeout                        time.Duration
	TTL                            time.Duration
	DeregisterCriticalServiceAfter time.Duration
}

type consulCheck struct {
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
	Definition  consulCheckDefinition
	PeerName    string
	consulEnterprise
	CreateIndex uint64
	ModifyIndex uint64
}

type consulServiceCheck struct {
	ID        string
	Namespace string
}

type consulSessionRecord struct {
	ID            string
	Name          string
	Node          string
	LockDelay     time.Duration
	Behavior      string
	TTL           string
	NodeChecks    []string
	ServiceChecks []consulServiceCheck
	// Checks are the node checks of sessions saved before Consul 1.7.
	Checks []string
	consulEnterprise
	CreateIndex uint64
	ModifyIndex uint64
}

type consulDirEntry struct {
	LockIndex uint64
	Key       string
	Flags     uint64
	Value     []byte
	Session   string
	consulEnterprise
	CreateIndex uint64
	ModifyIndex uint64
}

type consulCoordinate struct {
	Node      string
	Segment   string
	Partition string
	Coord     *struct {
		Vec        []float64
		Error      float64
		Adjustment float64
		Height     float64
	}
}

// consulPreparedQueryRecord mirrors Consul's PreparedQuery as its FSM
// snapshot encodes it (the raft indexes inline).
type consulPreparedQueryRecord struct {
	ID       string
	Name     string
	Session  string
	Token    string
	Template struct {
		Type            string
		Regexp          string
		RemoveEmptyTags bool
	}
	Service struct {
		Service       string
		SamenessGroup string
		Failover      struct {
			NearestN    int
			Datacenters []string
			Targets     []struct {
				Peer       string
				Datacenter string
			}
		}
		IgnoreCheckIDs []string
		OnlyPassing    bool
		Near           string
		Tags           []string
		NodeMeta       map[string]string
		ServiceMeta    map[string]string
		Peer           string
		Connect        bool
	}
	DNS struct {
		TTL string
	}
	CreateIndex uint64
	ModifyIndex uint64
}

// query is the record as beacon's prepared query, or why it is skipped.
func (r *consulPreparedQueryRecord) query() (*state.PreparedQuery, string) {
	svc := r.Service
	if svc.Peer != "" || svc.SamenessGroup != "" || svc.Connect {
		return nil, reasonQueryPeering
	}
	q := &state.PreparedQuery{ID: r.ID, Name: r.Name, Session: r.Session, Token: r.Token,
		Template: state.QueryTemplate{Type: r.Template.Type, Regexp: r.Template.Regexp, RemoveEmptyTags: r.Template.RemoveEmptyTags},
		Service: state.ServiceQuery{Service: svc.Service, Near: svc.Near, IgnoreCheckIDs: svc.IgnoreCheckIDs,
			OnlyPassing: svc.OnlyPassing, Tags: svc.Tags, NodeMeta: svc.NodeMeta, ServiceMeta: svc.ServiceMeta,
			Failover: state.QueryFailoverOptions{NearestN: svc.Failover.NearestN, Datacenters: svc.Failover.Datacenters}},
		DNS:         state.QueryDNSOptions{TTL: r.DNS.TTL},
		CreateIndex: r.CreateIndex, ModifyIndex: r.ModifyIndex}
	for _, t := range svc.Failover.Targets {
		if t.Peer != "" {
			return nil, reasonQueryPeering
		}
		q.Service.Failover.Targets = append(q.Service.Failover.Targets, state.QueryFailoverTarget{Datacenter: t.Datacenter})
	}
	return q, ""
}

type consulIndexRecord struct {
	Key   string
	Value uint64
}

type consulHeader struct {
	LastIndex uint64
}

// RecordStats counts the records of one type in a Consul snapshot; Size
// is their bytes in state.bin (the first record's include the header's),
// as `consul snapshot inspect` counts them.
type RecordStats struct {
	Type  string
	Count int
	Size  int64
}

// SkippedRecords are records of one type a restore leaves out, for one
// reason. Count is of records (of single coordinates, for coordinate
// batches).
type SkippedRecords struct {
	Type   string
	Count  int
	Reason string
}

// ConsulReport describes a Consul snapshot and what a restore makes of it:
// the body of the answer to a restore of one (PUT /v1/snapshot), and what
// `beacon snapshot inspect` prints of one.
type ConsulReport struct {
	// ID, Index, Term, Version and Size are the snapshot's metadata as
	// Consul wrote it (Size is that of Consul's state.bin).
	ID      string
	Index   uint64
	Term    uint64
	Version int
	Size    int64
	// Records counts the records by type, largest first (by name when
	// equal), as `consul snapshot inspect` lists them.
	Records []RecordStats
	// Tables counts the rows of each of beacon's tables the restore
	// holds.
	Tables []state.TableRows
	// Skipped lists what the restore leaves out, in the order met.
	Skipped []SkippedRecords
}

// SkippedSummary is Skipped in one line, for a log.
func (r *ConsulReport) SkippedSummary() string {
	var parts []string
	for _, s := range r.Skipped {
		parts = append(parts, fmt.Sprintf("%s %d (%s)", s.Type, s.Count, s.Reason))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, "; ")
}

// TablesSummary is Tables in one line, for a log: the tables that have
// rows, but the index table.
func (r *ConsulReport) TablesSummary() string {
	var parts []string
	for _, t := range r.Tables {
		if t.Rows > 0 && t.Table != "index" {
			parts = append(parts, fmt.Sprintf("%s %d", t.Table, t.Rows))
		}
	}
	return strings.Join(parts, ", ")
}

// isConsulState reports whether a state.bin starting with b is Consul's:
// its header is a msgpack map, where beacon's state starts with a JSON
// object.
func isConsulState(b byte) bool {
	return b >= 0x80 && b <= 0x8f || b == 0xde || b == 0xdf
}

// countingReader counts the bytes the decoder takes. It is the
// io.ByteScanner the msgpack decoder reads one byte at a time from, so
// that it reads no further than each value.
type countingReader struct {
	r *bufio.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

func (c *countingReader) UnreadByte() error {
	err := c.r.UnreadByte()
	if err == nil {
		c.n--
	}
	return err
}

// consulDecoder turns a Consul state.bin into beacon's state, keeping the
// account the report gives.
type consulDecoder struct {
	b       *state.Builder
	nodes   map[string]*state.Node // by lower-cased name
	coords  []*consulCoordinate
	stats   map[string]*RecordStats
	skipped []*SkippedRecords
}

func (d *consulDecoder) skip(typ, reason string, n int) {
	for _, s := range d.skipped {
		if s.Type == typ && s.Reason == reason {
			s.Count += n
			return
		}
	}
	d.skipped = append(d.skipped, &SkippedRecords{Type: typ, Count: n, Reason: reason})
}

// readConsulState decodes a Consul state.bin into a store and reports on
// it. An error says which record could not be decoded, or which rule of
// the store the state breaks.
func readConsulState(r io.Reader) (*state.Store, *ConsulReport, error) {
	cr := &countingReader{r: bufio.NewReaderSize(r, 64<<10)}
	dec := codec.NewDecoder(cr, consulHandle)
	var hdr consulHeader
	if err := dec.Decode(&hdr); err != nil {
		return nil, nil, fmt.Errorf("reading Consul's snapshot header: %v", err)
	}
	d := &consulDecoder{b: state.NewBuilder(), nodes: map[string]*state.Node{}, stats: map[string]*RecordStats{}}
	var last int64
	for n := 1; ; n++ {
		t, err := cr.ReadByte()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading record %d: %v", n, err)
		}
		name := consulTypeName(t)
		if err := d.record(dec, t, name); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = errors.New("the state ends within the record")
			}
			return nil, nil, fmt.Errorf("record %d (%s): %v", n, name, err)
		}
		s := d.stats[name]
		if s == nil {
			s = &RecordStats{Type: name}
			d.stats[name] = s
		}
		s.Count++
		s.Size += cr.n - last
		last = cr.n
	}
	d.placeCoordinates()
	st, err := d.b.Build()
	if err != nil {
		return nil, nil, fmt.Errorf("the snapshot's state is inconsistent: %v", err)
	}
	rep := &ConsulReport{Tables: st.TableRows()}
	for _, s := range d.stats {
		rep.Records = append(rep.Records, *s)
	}
	sort.Slice(rep.Records, func(i, j int) bool {
		a, b := rep.Records[i], rep.Records[j]
		if a.Size != b.Size {
			return a.Size > b.Size
		}
		return a.Type < b.Type
	})
	for _, s := range d.skipped {
		rep.Skipped = append(rep.Skipped, *s)
	}
	return st, rep, nil
}

// record decodes one record of type t.
func (d *consulDecoder) record(dec *codec.Decoder, t uint8, name string) error {
	switch t {
	case consulRegister:
		var rec consulRegisterRecord
		if err := decodeRecord(dec, &rec); err != nil {
			return err
		}
		return d.register(&rec, name)
	case consulKVS:
		var rec consulDirEntry
		if err := decodeRecord(dec, &rec); err != nil {
			return err
		}
		if !rec.isDefault() {
			d.skip(name, reasonPartition, 1)
			return nil
		}
		d.b.AddKV(&state.DirEntry{LockIndex: rec.LockIndex, Key: rec.Key, Flags: rec.Flags, Value: rec.Value,
			Session: rec.Session, CreateIndex: rec.CreateIndex, ModifyIndex: rec.ModifyIndex})
		return nil
	case consulSession:
		var rec consulSessionRecord
		if err := decodeRecord(dec, &rec); err != nil {
			return err
		}
		if !rec.isDefault() {
			d.skip(name, reasonPartition, 1)
			return nil
		}
		d.b.AddSession(sessionOf(&rec))
		return nil
	case consulTombstone:
		var rec consulDirEntry
		if err := decodeRecord(dec, &rec); err != nil {
			return err
		}
		d.b.RaiseIndex("kvs", rec.ModifyIndex)
		d.skip(name, reasonTombstone, 1)
		return nil
	case consulCoordinates:
		var rec []*consulCoordinate
		if err := decodeRecord(dec, &rec); err != nil {
			return err
		}
		for _, c := range rec {
			if c == nil {
				return errors.New("a coordinate is null")
			}
		}
		d.coords = append(d.coords, rec...)
		return nil
	case consulPreparedQuery:
		var rec consulPreparedQueryRecord
		if err := decodeRecord(dec, &rec); err != nil {
			return err
		}
		q, reason := rec.query()
		if reason != "" {
			d.skip(name, reason, 1)
			return nil
		}
		d.b.AddPreparedQuery(q)
		return nil
	case consulIndex:
		var rec consulIndexRecord
		if err := decodeRecord(dec, &rec); err != nil {
			return err
		}
		if !consulIndexTables[rec.Key] || !d.b.RaiseIndex(rec.Key, rec.Value) {
			d.skip(name, reasonIndex, 1)
		}
		return nil
	}
	var raw codec.Raw
	if err := decodeRecord(dec, &raw); err != nil {
		return err
	}
	reason, ok := consulSkipReasons[t]
	if !ok {
		reason = reasonUnknown
	}
	d.skip(name, reason, 1)
	return nil
}

func decodeRecord(dec *codec.Decoder, v any) error {
	if err := dec.Decode(v); err != nil {
		// The codec's errors start with "msgpack decode error [pos N]:".
		return fmt.Errorf("decoding: %w", err)
	}
	return nil
}

// register takes one Register record: its node (the first record of a
// node has it; the others repeat it), and the service or checks it
// carries.
func (d *consulDecoder) register(rec *consulRegisterRecord, typ string) error {
	if rec.PeerName != "" {
		d.skip(typ, reasonPeered, 1)
		return nil
	}
	if !rec.isDefault() || rec.Service != nil && !rec.Service.isDefault() {
		d.skip(typ, reasonPartition, 1)
		return nil
	}
	if strings.TrimSpace(rec.Node) == "" {
		return errors.New("a registration without a node name")
	}
	key := strings.ToLower(rec.Node)
	if _, ok := d.nodes[key]; !ok {
		n := &state.Node{ID: rec.ID, Node: rec.Node, Address: rec.Address, Datacenter: rec.Datacenter,
			TaggedAddresses: rec.TaggedAddresses, Meta: rec.NodeMeta,
			CreateIndex: rec.CreateIndex, ModifyIndex: rec.ModifyIndex}
		d.nodes[key] = n
		d.b.AddNode(n)
	}
	node := d.nodes[key].Node
	if svc := rec.Service; svc != nil {
		d.b.AddService(serviceOf(node, svc))
	}
	checks := rec.Checks
	if rec.Check != nil {
		checks = append([]*consulCheck{rec.Check}, checks...)
	}
	for _, c := range checks {
		if c == nil {
			return errors.New("a check is null")
		}
		d.b.AddCheck(checkOf(node, c))
	}
	return nil
}

// serviceOf is a Consul service instance as beacon's catalog registration
// stores one (its defaults filled as the catalog API fills them).
func serviceOf(node string, s *consulService) *state.Service {
	out := &state.Service{Node: node, Kind: s.Kind, ID: s.ID, Service: s.Service, Tags: s.Tags,
		Address: s.Address, Meta: s.Meta, Port: s.Port, EnableTagOverride: s.EnableTagOverride,
		Weights: state.Weights{Passing: 1, Warning: 1}, CreateIndex: s.CreateIndex, ModifyIndex: s.ModifyIndex}
	if out.ID == "" {
		out.ID = out.Service
	}
	if s.Weights != nil && (s.Weights.Passing != 0 || s.Weights.Warning != 0) {
		out.Weights = state.Weights{Passing: s.Weights.Passing, Warning: s.Weights.Warning}
	}
	if out.Tags == nil {
		out.Tags = []string{}
	}
	if out.Meta == nil {
		out.Meta = map[string]string{}
	}
	if len(s.TaggedAddresses) > 0 {
		out.TaggedAddresses = map[string]state.ServiceAddress{}
		for k, a := range s.TaggedAddresses {
			out.TaggedAddresses[k] = state.ServiceAddress{Address: a.Address, Port: a.Port}
		}
	}
	return out
}

func durationString(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

func checkOf(node string, c *consulCheck) *state.HealthCheck {
	def := c.Definition
	return &state.HealthCheck{Node: node, CheckID: c.CheckID, Name: c.Name, Status: c.Status, Notes: c.Notes,
		Output: c.Output, ServiceID: c.ServiceID, ServiceName: c.ServiceName, ServiceTags: c.ServiceTags,
		Type: c.Type, CreateIndex: c.CreateIndex, ModifyIndex: c.ModifyIndex,
		Definition: state.CheckDefinition{HTTP: def.HTTP, Method: def.Method, Header: def.Header,
			TLSSkipVerify: def.TLSSkipVerify, Body: def.Body, TCP: def.TCP, TTL: durationString(def.TTL),
			ScriptArgs: def.ScriptArgs, GRPC: def.GRPC, GRPCUseTLS: def.GRPCUseTLS,
			Interval: durationString(def.Interval), Timeout: durationString(def.Timeout),
			DeregisterCriticalServiceAfter: durationString(def.DeregisterCriticalServiceAfter)}}
}

func sessionOf(s *consulSessionRecord) *state.Session {
	out := &state.Session{ID: s.ID, Name: s.Name, Node: s.Node, Behavior: s.Behavior, TTL: s.TTL,
		// Consul does not honour a lock delay above its maximum, which
		// is beacon's.
		LockDelay:  min(s.LockDelay, state.MaxLockDelay),
		NodeChecks: s.NodeChecks, CreateIndex: s.CreateIndex, ModifyIndex: s.ModifyIndex}
	for _, id := range s.Checks {
		if !containsString(out.NodeChecks, id) {
			out.NodeChecks = append(out.NodeChecks, id)
		}
	}
	for _, c := range s.ServiceChecks {
		out.ServiceChecks = append(out.ServiceChecks, state.ServiceCheck{ID: c.ID, Namespace: c.Namespace})
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// placeCoordinates adds the coordinates of nodes the snapshot holds, once
// every record is read: Consul keeps a coordinate only for a node of its
// catalog, and beacon drops updates for others as Consul does.
func (d *consulDecoder) placeCoordinates() {
	const typ = "CoordinateBatchUpdate"
	seen := map[string]bool{}
	for _, c := range d.coords {
		if (c.Partition != "" && c.Partition != "default") || c.Coord == nil {
			reason := reasonPartition
			if c.Coord == nil {
				reason = reasonCoordInvalid
			}
			d.skip(typ, reason, 1)
			continue
		}
		n, ok := d.nodes[strings.ToLower(c.Node)]
		if !ok {
			d.skip(typ, reasonCoordNoNode, 1)
			continue
		}
		sc := &state.Coordinate{Node: n.Node, Segment: c.Segment, Coord: &coordinate.Coordinate{
			Vec: c.Coord.Vec, Error: c.Coord.Error, Adjustment: c.Coord.Adjustment, Height: c.Coord.Height}}
		key := strings.ToLower(n.Node) + "\x00" + c.Segment
		switch {
		case state.ValidateCoordinate(sc) != nil:
			d.skip(typ, reasonCoordInvalid, 1)
			continue
		case seen[key]:
			d.skip(typ, reasonCoordTwice, 1)
			continue
		}
		seen[key] = true
		d.b.AddCoordinate(sc)
	}
}

// readConsul decodes the Consul state.bin spooled in a.State and puts
// beacon's encoding of it in its place: a.State and a.Meta.Size become
// those of the state a restore installs, and a.Consul reports on it.
func readConsul(a *Archive) (*state.Store, error) {
	st, rep, err := readConsulState(a.State)
	if err != nil {
		return nil, invalidf("%s of a Consul snapshot: %v", archiveState, err)
	}
	if high := st.LastIndex(); high > a.Meta.Index {
		return nil, invalidf("the state holds writes up to index %d, after the snapshot's index %d", high, a.Meta.Index)
	}
	rep.ID, rep.Index, rep.Term, rep.Version, rep.Size = a.Meta.ID, a.Meta.Index, a.Meta.Term, a.Meta.Version, a.Meta.Size
	conv, err := os.CreateTemp("", "beacon-snapshot-*.bin")
	if err != nil {
		return nil, fmt.Errorf("creating a temporary file for the snapshot: %w", err)
	}
	size, err := writeState(conv, st)
	if err != nil {
		conv.Close()
		os.Remove(conv.Name())
		return nil, fmt.Errorf("spooling snapshot state: %w", err)
	}
	a.Close()
	a.State, a.Meta.Size, a.Consul = conv, size, rep
	return st, nil
}

// writeState writes st's snapshot to f, syncs it and rewinds it, and
// returns its size.
func writeState(f *os.File, st *state.Store) (int64, error) {
	if err := st.Snapshot().Write(f); err != nil {
		return 0, err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	return size, nil
}
