package state

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"
)

// Prepared queries, as Consul keeps them: definitions of a service lookup
// (health, tags, metadata, nearness, failover to other datacenters) that
// are executed later by ID or name, over HTTP or as <name>.query.<domain>
// in DNS. A template (name_prefix_match) answers every name its name is a
// prefix of, its Service strings interpolated from the name. They are
// replicated by Raft (PreparedQueryRequestType), kept in snapshots, and
// deleted with the session they are bound to. The execution itself (ACLs,
// sorting, failover) is the HTTP API's; this file owns their storage,
// their validation, the resolution of a name to a query (templates
// rendered) and the selection of a query's instances in the catalog.

const tablePreparedQueries = "prepared-queries"

// QueryTemplateTypeNamePrefixMatch is the one template type there is
// (Consul's): the template answers every name its Name is a prefix of.
const QueryTemplateTypeNamePrefixMatch = "name_prefix_match"

// RedactedToken stands for a query's captured token where the reader may
// not see it: answers to tokens that are not management ones, and client
// agents' replicas, which hold no secrets (Consul's "<hidden>"). The HTTP
// API refuses it as a query's token; a replica stores it as it comes.
const RedactedToken = "<hidden>"

// Limits of a definition: its encoding (but its token's) bounds everything
// in it (a Raft entry, a row every replica keeps); the number of tags and
// the length of the template's regexp are bounded on their own, since each
// costs work on every execution. The token is bounded apart because client
// agents' replicas hold the definition with RedactedToken in its place:
// the bound on the rest is the same for them.
const (
	MaxPreparedQueryBytes       = 64 << 10
	MaxPreparedQueryTags        = 64
	MaxPreparedQueryRegexpBytes = 1024
	MaxPreparedQueryTokenBytes  = 512
)

// Node metadata filters are held to Consul's rules for node metadata.
const (
	maxQueryMetaPairs     = 64
	maxQueryMetaKeyLen    = 128
	maxQueryMetaValueLen  = 512
	queryMetaKeyFormatDoc = "letters, digits, '_' and '-'"
)

var queryMetaKeyFormat = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// PreparedQuery is a prepared query definition (Consul's structs.PreparedQuery
// and api.PreparedQueryDefinition).
type PreparedQuery struct {
	ID string `json:"ID"`
	// Name, when set, executes the query (or, for a template, every name
	// it is a prefix of); unique among queries, and never another query's
	// ID.
	Name string `json:"Name"`
	// Session, when set, binds the query to a session: it is deleted when
	// the session is invalidated.
	Session string `json:"Session"`
	// Token is the ACL token executions filter their results with (the
	// caller's when empty).
	Token       string          `json:"Token"`
	Template    QueryTemplate   `json:"Template"`
	Service     ServiceQuery    `json:"Service"`
	DNS         QueryDNSOptions `json:"DNS"`
	CreateIndex uint64          `json:"CreateIndex"`
	ModifyIndex uint64          `json:"ModifyIndex"`
}

// QueryTemplate makes a query a template.
type QueryTemplate struct {
	// Type is QueryTemplateTypeNamePrefixMatch, or "" for a static query.
	Type string `json:"Type"`
	// Regexp, matched against the whole name executed, gives ${match(N)}.
	Regexp string `json:"Regexp"`
	// RemoveEmptyTags drops the tags that interpolate to "".
	RemoveEmptyTags bool `json:"RemoveEmptyTags"`
}

// ServiceQuery selects the instances of a service.
type ServiceQuery struct {
	Service string `json:"Service"`
	// SamenessGroup and Peer are Consul's cluster peering; beacon has none
	// and refuses queries that set them.
	SamenessGroup string `json:"SamenessGroup,omitempty"`
	// Near sorts the answer by estimated round trip time from a node
	// ("_agent": the executing agent's, "_ip": the caller's address's).
	Near     string               `json:"Near"`
	Failover QueryFailoverOptions `json:"Failover"`
	// IgnoreCheckIDs are checks that do not count for health.
	IgnoreCheckIDs []string `json:"IgnoreCheckIDs"`
	// OnlyPassing leaves out instances with a warning check, not only a
	// critical one.
	OnlyPassing bool `json:"OnlyPassing"`
	// Tags must all be carried, but those written "!tag", which must not.
	Tags        []string          `json:"Tags"`
	NodeMeta    map[string]string `json:"NodeMeta"`
	ServiceMeta map[string]string `json:"ServiceMeta"`
	Peer        string            `json:"Peer,omitempty"`
	// Connect asks for Connect-capable instances; beacon has no Connect
	// and refuses it.
	Connect bool `json:"Connect"`
}

// QueryFailoverOptions say which other datacenters an execution tries when
// this one has no healthy instance.
type QueryFailoverOptions struct {
	// NearestN: the N datacenters nearest this one, nearest first.
	NearestN int `json:"NearestN"`
	// Datacenters, after those, in this order (one tried already is not
	// tried again; one this agent does not know is skipped).
	Datacenters []string `json:"Datacenters"`
	// Targets is an ordered list instead of both.
	Targets []QueryFailoverTarget `json:"Targets,omitempty"`
}

// QueryFailoverTarget is a datacenter to fail over to (a cluster peer in
// Consul, which beacon does not have).
type QueryFailoverTarget struct {
	Peer       string `json:"Peer"`
	Datacenter string `json:"Datacenter"`
}

// QueryDNSOptions are how DNS serves the query's answers.
type QueryDNSOptions struct {
	// TTL of the records, a Go duration; "" is the service's TTL.
	TTL string `json:"TTL"`
}

// IsTemplate reports whether the query is a template.
func (q *PreparedQuery) IsTemplate() bool { return q.Template.Type != "" }

// ACLPrefix is the name `query` ACL rules are matched against, and whether
// they apply at all: not to a static query without a name, which anyone
// knowing its ID may use (Consul's GetACLPrefix).
func (q *PreparedQuery) ACLPrefix() (string, bool) {
	if q.Name != "" || q.IsTemplate() {
		return q.Name, true
	}
	return "", false
}

// Prepared query operations (Consul's words).
const (
	PreparedQueryCreate = "create"
	PreparedQueryUpdate = "update"
	PreparedQueryDelete = "delete"
)

// PreparedQueryRequest creates, updates or deletes a query (a
// PreparedQueryRequestType command). A delete needs only Query.ID.
type PreparedQueryRequest struct {
	Datacenter string         `json:"Datacenter"`
	Op         string         `json:"Op"`
	Query      *PreparedQuery `json:"Query"`
}

// PreparedQueryExecuteResponse is what an execution found (Consul's):
// Datacenter is where the instances came from, Failovers how many other
// datacenters were tried.
type PreparedQueryExecuteResponse struct {
	Service    string
	Nodes      []ServiceNode
	DNS        QueryDNSOptions
	Datacenter string
	Failovers  int
}

// ErrQueryNotFound: no query has that ID, name, or a template name that
// is a prefix of it (the HTTP API's 404, in Consul's words "Query not
// found").
var ErrQueryNotFound = errors.New("query not found")

// ErrInvalidPreparedQuery is wrapped by the errors of a definition that
// cannot be stored. It is an ErrInvalidRegistration too, so it crosses the
// server port as one and the HTTP API answers it with 400.
var ErrInvalidPreparedQuery error = invalidPreparedQuery{}

type invalidPreparedQuery struct{}

func (invalidPreparedQuery) Error() string        { return "invalid prepared query" }
func (invalidPreparedQuery) Is(target error) bool { return target == ErrInvalidRegistration }

func invalidQuery(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidPreparedQuery, fmt.Sprintf(format, args...))
}

// ValidatePreparedQuery checks what a definition must be on its own, as
// Consul's servers do (its uniqueness and session are checked when it is
// written): a service, a NearestN not negative, a DNS TTL that parses, a
// known template type with a regexp that compiles and interpolations that
// parse, no cluster peering or Connect, and the limits.
func ValidatePreparedQuery(q *PreparedQuery) error {
	if q == nil {
		return invalidQuery("the query is null")
	}
	svc := &q.Service
	if strings.TrimSpace(svc.Service) == "" {
		return invalidQuery("Must provide a Service name to query")
	}
	if svc.Failover.NearestN < 0 {
		return invalidQuery("Bad NearestN '%d', must be >= 0", svc.Failover.NearestN)
	}
	if len(svc.Failover.Targets) > 0 && (svc.Failover.NearestN != 0 || len(svc.Failover.Datacenters) != 0) {
		return invalidQuery("Targets cannot be populated with NearestN or Datacenters")
	}
	for _, t := range svc.Failover.Targets {
		if t.Peer != "" {
			return invalidQuery("failover target peer %q: cluster peering is not supported", t.Peer)
		}
		if t.Datacenter == "" {
			return invalidQuery("a failover target must name a Datacenter")
		}
	}
	switch {
	case svc.SamenessGroup != "":
		return invalidQuery("SamenessGroup: sameness groups are not supported")
	case svc.Peer != "":
		return invalidQuery("Peer: cluster peering is not supported")
	case svc.Connect:
		return invalidQuery("Connect: Connect-capable service lookups are not supported")
	case len(svc.Tags) > MaxPreparedQueryTags:
		return invalidQuery("%d tags, at most %d are allowed", len(svc.Tags), MaxPreparedQueryTags)
	}
	if err := validateQueryNodeMeta(svc.NodeMeta); err != nil {
		return err
	}
	if q.DNS.TTL != "" {
		ttl, err := time.ParseDuration(q.DNS.TTL)
		if err != nil {
			return invalidQuery("Bad DNS TTL '%s': %v", q.DNS.TTL, err)
		}
		if ttl < 0 {
			return invalidQuery("DNS TTL '%s', must be >=0", q.DNS.TTL)
		}
	}
	switch q.Template.Type {
	case "":
	case QueryTemplateTypeNamePrefixMatch:
		// A test render with the shortest name the template answers
		// finds bad interpolations and a bad regexp now, not at run time.
		if _, err := q.render(q.Name); err != nil {
			return err
		}
	default:
		return invalidQuery("Bad Template.Type '%s': the only type is %s", q.Template.Type, QueryTemplateTypeNamePrefixMatch)
	}
	if len(q.Token) > MaxPreparedQueryTokenBytes {
		return invalidQuery("the token is %d bytes, at most %d are allowed", len(q.Token), MaxPreparedQueryTokenBytes)
	}
	withoutToken := *q
	withoutToken.Token = ""
	if b, err := json.Marshal(&withoutToken); err != nil {
		return invalidQuery("encoding: %v", err)
	} else if len(b) > MaxPreparedQueryBytes {
		return invalidQuery("the definition is %d bytes encoded, at most %d are allowed", len(b), MaxPreparedQueryBytes)
	}
	return nil
}

func validateQueryNodeMeta(meta map[string]string) error {
	if len(meta) > maxQueryMetaPairs {
		return invalidQuery("NodeMeta cannot contain more than %d key/value pairs", maxQueryMetaPairs)
	}
	for k, v := range meta {
		switch {
		case k == "":
			return invalidQuery("NodeMeta: a key cannot be blank")
		case !queryMetaKeyFormat.MatchString(k):
			return invalidQuery("NodeMeta key %q: only %s are allowed", k, queryMetaKeyFormatDoc)
		case len(k) > maxQueryMetaKeyLen:
			return invalidQuery("NodeMeta key %q is too long (limit: %d characters)", k, maxQueryMetaKeyLen)
		case len(v) > maxQueryMetaValueLen:
			return invalidQuery("NodeMeta value of %q is too long (limit: %d characters)", k, maxQueryMetaValueLen)
		}
	}
	return nil
}

// templateIndex indexes templates by their lowercase name behind a NUL, so
// that the catch-all template (empty name) has a key, and a name's longest
// template prefix is a radix tree lookup (LongestPrefix on
// "template_prefix"). Static queries are not in it.
type templateIndex struct{}

func (templateIndex) FromObject(obj any) (bool, []byte, error) {
	q, ok := obj.(*PreparedQuery)
	if !ok {
		return false, nil, fmt.Errorf("template index: unexpected %T", obj)
	}
	if !q.IsTemplate() {
		return false, nil, nil
	}
	return true, templateKey(q.Name), nil
}

func (templateIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("template index: want one name, got %d arguments", len(args))
	}
	name, ok := args[0].(string)
	if !ok {
		return nil, errors.New("template index: the argument must be a string")
	}
	return templateKey(name), nil
}

// PrefixFromArgs is FromArgs: keys have no terminator, so a name's key is
// also the prefix of the keys of the names it begins.
func (t templateIndex) PrefixFromArgs(args ...any) ([]byte, error) { return t.FromArgs(args...) }

func templateKey(name string) []byte { return []byte("\x00" + strings.ToLower(name)) }

func preparedQueriesTableSchema() *memdb.TableSchema {
	lower := func(field string) memdb.Indexer { return &memdb.StringFieldIndex{Field: field, Lowercase: true} }
	return &memdb.TableSchema{Name: tablePreparedQueries, Indexes: map[string]*memdb.IndexSchema{
		"id":       {Name: "id", Unique: true, Indexer: lower("ID")},
		"name":     {Name: "name", Unique: true, AllowMissing: true, Indexer: lower("Name")},
		"template": {Name: "template", Unique: true, AllowMissing: true, Indexer: templateIndex{}},
		"session":  {Name: "session", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "Session"}},
	}}
}

// ---- writes (called by the FSM only) ----

// PreparedQueryApply applies a prepared query write at Raft index idx.
// Nothing is written when it fails: ErrQueryNotFound for an update or
// delete of a query that is not there, ErrInvalidPreparedQuery otherwise.
func (s *Store) PreparedQueryApply(idx uint64, req *PreparedQueryRequest) error {
	tx := s.db.Load().Txn(true)
	defer tx.Abort()
	var err error
	switch req.Op {
	case PreparedQueryCreate, PreparedQueryUpdate:
		err = preparedQuerySetTxn(tx, idx, req.Op, req.Query)
	case PreparedQueryDelete:
		err = preparedQueryDeleteTxn(tx, idx, req.Query)
	default:
		err = invalidQuery("unknown operation %q", req.Op)
	}
	if err != nil {
		return err
	}
	tx.Commit()
	return nil
}

func preparedQuerySetTxn(tx *memdb.Txn, idx uint64, op string, in *PreparedQuery) error {
	if in == nil || in.ID == "" {
		return invalidQuery("a query to %s needs its ID", op)
	}
	if err := ValidatePreparedQuery(in); err != nil {
		return err
	}
	q := *in
	raw, err := tx.First(tablePreparedQueries, "id", q.ID)
	if err != nil {
		return fmt.Errorf("prepared query lookup: %w", err)
	}
	q.CreateIndex, q.ModifyIndex = idx, idx
	switch {
	case op == PreparedQueryCreate && raw != nil:
		return invalidQuery("query %q already exists", q.ID)
	case op == PreparedQueryUpdate && raw == nil:
		return fmt.Errorf("%w: cannot modify non-existent prepared query %q", ErrQueryNotFound, q.ID)
	case raw != nil:
		q.CreateIndex = raw.(*PreparedQuery).CreateIndex
	}
	if err := checkQueryNameTxn(tx, &q); err != nil {
		return err
	}
	if q.Session != "" {
		sess, err := tx.First(tableSessions, "id", q.Session)
		if err != nil {
			return fmt.Errorf("session lookup: %w", err)
		}
		if sess == nil {
			return invalidQuery("invalid session %q: no such session", q.Session)
		}
	}
	if err := tx.Insert(tablePreparedQueries, &q); err != nil {
		return fmt.Errorf("inserting prepared query: %w", err)
	}
	return setIndex(tx, idx, tablePreparedQueries)
}

// checkQueryNameTxn holds q's name to Consul's rules: unique among
// queries (case-insensitively, as lookups match it), never a query's ID
// (queries are executed by ID or name: a name equal to another's ID would
// take its executions over), and one catch-all template at most. The
// indexes are unique, but go-memdb would overwrite an entry rather than
// refuse it.
func checkQueryNameTxn(tx *memdb.Txn, q *PreparedQuery) error {
	if q.Name == "" {
		if !q.IsTemplate() {
			return nil
		}
		other, err := tx.First(tablePreparedQueries, "template", "")
		if err != nil {
			return fmt.Errorf("prepared query lookup: %w", err)
		}
		if other != nil && !strings.EqualFold(other.(*PreparedQuery).ID, q.ID) {
			return invalidQuery("a prepared query template already exists with an empty name")
		}
		return nil
	}
	if strings.EqualFold(q.Name, q.ID) {
		return invalidQuery("name '%s' is the query's own ID", q.Name)
	}
	other, err := tx.First(tablePreparedQueries, "name", q.Name)
	if err != nil {
		return fmt.Errorf("prepared query lookup: %w", err)
	}
	if other != nil && !strings.EqualFold(other.(*PreparedQuery).ID, q.ID) {
		return invalidQuery("name '%s' aliases an existing query name", q.Name)
	}
	other, err = tx.First(tablePreparedQueries, "id", q.Name)
	if err != nil {
		return fmt.Errorf("prepared query lookup: %w", err)
	}
	if other != nil {
		return invalidQuery("name '%s' aliases an existing query ID", q.Name)
	}
	return nil
}

func preparedQueryDeleteTxn(tx *memdb.Txn, idx uint64, in *PreparedQuery) error {
	if in == nil || in.ID == "" {
		return invalidQuery("a query to delete needs its ID")
	}
	raw, err := tx.First(tablePreparedQueries, "id", in.ID)
	if err != nil {
		return fmt.Errorf("prepared query lookup: %w", err)
	}
	if raw == nil {
		return fmt.Errorf("%w: cannot delete non-existent prepared query %q", ErrQueryNotFound, in.ID)
	}
	if err := tx.Delete(tablePreparedQueries, raw); err != nil {
		return fmt.Errorf("deleting prepared query: %w", err)
	}
	return setIndex(tx, idx, tablePreparedQueries)
}

// deleteSessionQueriesTxn deletes the queries bound to a session that is
// being invalidated.
func deleteSessionQueriesTxn(tx *memdb.Txn, idx uint64, session string) error {
	n, err := tx.DeleteAll(tablePreparedQueries, "session", session)
	if err != nil {
		return fmt.Errorf("deleting prepared queries of session: %w", err)
	}
	if n == 0 {
		return nil
	}
	return setIndex(tx, idx, tablePreparedQueries)
}

// ---- reads ----
//
// The queries returned are the store's: callers must not change them.

// PreparedQueries returns every query, sorted by ID.
func (s *Store) PreparedQueries(ws memdb.WatchSet) (uint64, []*PreparedQuery, error) {
	tx := s.ReadTxn()
	idx := maxIndex(tx, tablePreparedQueries)
	it, err := tx.Get(tablePreparedQueries, "id")
	if err != nil {
		return 0, nil, fmt.Errorf("listing prepared queries: %w", err)
	}
	watch(ws, it.WatchCh())
	var out []*PreparedQuery
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*PreparedQuery))
	}
	return idx, out, nil
}

// PreparedQueryGet returns the query with ID id, or nil.
func (s *Store) PreparedQueryGet(ws memdb.WatchSet, id string) (uint64, *PreparedQuery, error) {
	tx := s.ReadTxn()
	idx := maxIndex(tx, tablePreparedQueries)
	ch, raw, err := tx.FirstWatch(tablePreparedQueries, "id", id)
	if err != nil {
		return 0, nil, fmt.Errorf("prepared query lookup: %w", err)
	}
	watch(ws, ch)
	if raw == nil {
		return idx, nil, nil
	}
	return idx, raw.(*PreparedQuery), nil
}

// PreparedQueryResolve finds the query an execution of idOrName runs, as
// Consul resolves it: a static query with that ID; else the query with
// that name; else the template whose name is the longest prefix of it. A
// template comes back rendered for the name (a copy); it cannot be
// executed by its ID. ErrQueryNotFound when nothing matches.
func (s *Store) PreparedQueryResolve(idOrName string) (uint64, *PreparedQuery, error) {
	if idOrName == "" {
		return 0, nil, fmt.Errorf("%w: a query ID or name is needed", ErrQueryNotFound)
	}
	tx := s.ReadTxn()
	idx := maxIndex(tx, tablePreparedQueries)
	if isUUID(idOrName) {
		raw, err := tx.First(tablePreparedQueries, "id", idOrName)
		if err != nil {
			return 0, nil, fmt.Errorf("prepared query lookup: %w", err)
		}
		if raw != nil {
			q := raw.(*PreparedQuery)
			if q.IsTemplate() {
				return 0, nil, invalidQuery("prepared query templates can only be resolved by name, not by ID")
			}
			return idx, q, nil
		}
	}
	raw, err := tx.First(tablePreparedQueries, "name", idOrName)
	if err != nil {
		return 0, nil, fmt.Errorf("prepared query lookup: %w", err)
	}
	if raw == nil {
		if raw, err = tx.LongestPrefix(tablePreparedQueries, "template_prefix", idOrName); err != nil {
			return 0, nil, fmt.Errorf("prepared query template lookup: %w", err)
		}
	}
	if raw == nil {
		return idx, nil, fmt.Errorf("%w: %q", ErrQueryNotFound, idOrName)
	}
	q := raw.(*PreparedQuery)
	if !q.IsTemplate() {
		return idx, q, nil
	}
	rendered, err := q.render(idOrName)
	if err != nil {
		return 0, nil, err
	}
	return idx, rendered, nil
}

// PreparedQueryInstances returns the instances of q's service in this
// catalog that q selects, with their nodes and checks, sorted by node then
// ID: healthy (no critical check, with OnlyPassing no warning either;
// IgnoreCheckIDs not counted), carrying its tags and none of its !tags,
// and with its node and service metadata. ACLs are the caller's.
func (s *Store) PreparedQueryInstances(ws memdb.WatchSet, q *PreparedQuery) (uint64, []ServiceNode, error) {
	svc := &q.Service
	idx, all, err := s.ServiceNodes(ws, svc.Service, "")
	if err != nil {
		return 0, nil, err
	}
	out := all[:0]
	for _, sn := range all {
		if healthyIgnoring(sn.Checks, svc.OnlyPassing, svc.IgnoreCheckIDs) && matchesQueryTags(sn.Service, svc.Tags) &&
			metaMatches(sn.Node.Meta, svc.NodeMeta) && metaMatches(sn.Service.Meta, svc.ServiceMeta) {
			out = append(out, sn)
		}
	}
	return idx, out, nil
}

// healthyIgnoring is Healthy with some checks not counted.
func healthyIgnoring(checks []*HealthCheck, onlyPassing bool, ignore []string) bool {
	for _, c := range checks {
		if c.Status == HealthPassing || slices.Contains(ignore, c.CheckID) {
			continue
		}
		if c.Status == HealthCritical || onlyPassing {
			return false
		}
	}
	return true
}

// matchesQueryTags reports whether svc carries every tag of tags and none
// of those written "!tag", case-insensitively.
func matchesQueryTags(svc *Service, tags []string) bool {
	for _, t := range tags {
		if banned, ok := strings.CutPrefix(t, "!"); ok {
			if svc.HasTag(banned) {
				return false
			}
		} else if !svc.HasTag(t) {
			return false
		}
	}
	return true
}

// metaMatches reports whether meta has every pair of want.
func metaMatches(meta, want map[string]string) bool {
	for k, v := range want {
		if got, ok := meta[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// isUUID reports whether s has a UUID's form, 8-4-4-4-12 hex digits: only
// such a name is looked up as an ID first.
func isUUID(s string) bool {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return false
	}
	_, err := hex.DecodeString(s[:8] + s[9:13] + s[14:18] + s[19:23] + s[24:])
	return err == nil
}
