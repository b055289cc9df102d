package state

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/beacon-dns/beacon/acl"
)

// ACL tokens and policies, as Consul keeps them: replicated through Raft,
// in snapshots, changed only by the FSM. The rules language and the
// decisions are package acl's; this file owns their storage and the
// consistency rules of their writes (unique names, links to policies that
// exist, the built-ins that cannot go, bootstrap once).

const (
	tableACLTokens   = "acl-tokens"
	tableACLPolicies = "acl-policies"
	// aclBootstrapKey, in the index table, records the index of the
	// bootstrap: there is one per cluster.
	aclBootstrapKey = "acl-bootstrap"
)

// ACL operations.
const (
	ACLBootstrap    = "bootstrap"
	ACLTokenSet     = "token-set"
	ACLTokenDelete  = "token-delete"
	ACLPolicySet    = "policy-set"
	ACLPolicyDelete = "policy-delete"
)

// ACLRequest changes the ACL state. Token and Policy are set by the API
// with every server-side field filled in (IDs, secrets, times, hashes):
// the FSM applies them as they are, so every replica agrees.
type ACLRequest struct {
	Datacenter string      `json:"Datacenter"`
	Op         string      `json:"Op"`
	Token      *acl.Token  `json:"Token,omitempty"`
	Policy     *acl.Policy `json:"Policy,omitempty"`
	// ID names the token (AccessorID) or policy a delete removes.
	ID string `json:"ID,omitempty"`
}

// Errors of ACL writes, the caller's bad input: nothing was written.
var (
	// ErrACLBootstrapped: bootstrap happens once (Consul's text).
	ErrACLBootstrapped = errors.New("ACL bootstrap no longer allowed")
	// ErrACLNotFound: no token or policy by that ID, or no token with a
	// request's secret (Consul's "ACL not found", a 403).
	ErrACLNotFound = acl.ErrNotFound
	// ErrACLInvalid wraps every other refusal.
	ErrACLInvalid = errors.New("invalid ACL request")
)

// tokenPoliciesIndex indexes tokens by the IDs of the policies they link.
type tokenPoliciesIndex struct{}

func (tokenPoliciesIndex) FromObject(obj any) (bool, [][]byte, error) {
	t, ok := obj.(*acl.Token)
	if !ok {
		return false, nil, fmt.Errorf("policies index: unexpected %T", obj)
	}
	var vals [][]byte
	for _, l := range t.Policies {
		vals = append(vals, []byte(l.ID+"\x00"))
	}
	return len(vals) > 0, vals, nil
}

func (tokenPoliciesIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("policies index: want one policy ID, got %d arguments", len(args))
	}
	id, ok := args[0].(string)
	if !ok {
		return nil, errors.New("policies index: the argument must be a string")
	}
	return []byte(id + "\x00"), nil
}

func aclTableSchemas() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableACLTokens: {Name: tableACLTokens, Indexes: map[string]*memdb.IndexSchema{
			"id":       {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "AccessorID"}},
			"secret":   {Name: "secret", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "SecretID"}},
			"policies": {Name: "policies", AllowMissing: true, Indexer: tokenPoliciesIndex{}},
		}},
		tableACLPolicies: {Name: tableACLPolicies, Indexes: map[string]*memdb.IndexSchema{
			"id":   {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
			"name": {Name: "name", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name", Lowercase: true}},
		}},
	}
}

// ---- writes (called by the FSM only) ----

// ACLApply applies an ACL write at idx.
func (s *Store) ACLApply(idx uint64, req *ACLRequest) error {
	tx := s.db.Load().Txn(true)
	defer tx.Abort()
	var err error
	switch req.Op {
	case ACLBootstrap:
		err = aclBootstrapTxn(tx, idx, req.Token)
	case ACLTokenSet:
		err = aclTokenSetTxn(tx, idx, req.Token)
	case ACLTokenDelete:
		err = aclTokenDeleteTxn(tx, idx, req.ID)
	case ACLPolicySet:
		err = aclPolicySetTxn(tx, idx, req.Policy)
	case ACLPolicyDelete:
		err = aclPolicyDeleteTxn(tx, idx, req.ID)
	default:
		err = fmt.Errorf("%w: unknown ACL operation %q", ErrACLInvalid, req.Op)
	}
	if err != nil {
		return err
	}
	tx.Commit()
	return nil
}

// aclBootstrapTxn creates the built-in global-management policy and
// anonymous token, and token as the first management token, once.
func aclBootstrapTxn(tx *memdb.Txn, idx uint64, token *acl.Token) error {
	if done := aclBootstrapIndex(tx); done != 0 {
		return fmt.Errorf("%w (reset index: %d)", ErrACLBootstrapped, done)
	}
	if token == nil || token.AccessorID == "" || token.SecretID == "" {
		return fmt.Errorf("%w: bootstrap needs a token with its accessor and secret", ErrACLInvalid)
	}
	if err := ensureBuiltinsTxn(tx, idx); err != nil {
		return err
	}
	t := *token
	t.Policies = []acl.PolicyLink{{ID: acl.GlobalManagementPolicyID, Name: acl.GlobalManagementPolicyName}}
	if err := aclTokenSetTxn(tx, idx, &t); err != nil {
		return err
	}
	return setIndex(tx, idx, aclBootstrapKey)
}

// ensureBuiltinsTxn inserts the global-management policy and the anonymous
// token where they are missing.
func ensureBuiltinsTxn(tx *memdb.Txn, idx uint64) error {
	if raw, err := tx.First(tableACLPolicies, "id", acl.GlobalManagementPolicyID); err != nil {
		return err
	} else if raw == nil {
		p := acl.GlobalManagementPolicy()
		p.CreateIndex, p.ModifyIndex = idx, idx
		if err := tx.Insert(tableACLPolicies, p); err != nil {
			return fmt.Errorf("inserting the global-management policy: %w", err)
		}
		if err := setIndex(tx, idx, tableACLPolicies); err != nil {
			return err
		}
	}
	if raw, err := tx.First(tableACLTokens, "id", acl.AnonymousTokenAccessorID); err != nil {
		return err
	} else if raw == nil {
		t := acl.AnonymousToken()
		t.CreateIndex, t.ModifyIndex = idx, idx
		if err := tx.Insert(tableACLTokens, t); err != nil {
			return fmt.Errorf("inserting the anonymous token: %w", err)
		}
		if err := setIndex(tx, idx, tableACLTokens); err != nil {
			return err
		}
	}
	return nil
}

func aclBootstrapIndex(tx *memdb.Txn) uint64 {
	raw, err := tx.First(tableIndex, "id", aclBootstrapKey)
	if err != nil || raw == nil {
		return 0
	}
	return raw.(*indexEntry).Value
}

// aclTokenSetTxn creates or updates a token. Its policy links must name
// policies that exist (by ID or name; stored by ID, with the name of the
// moment); its secret is fixed once created; the anonymous token keeps its
// secret.
func aclTokenSetTxn(tx *memdb.Txn, idx uint64, in *acl.Token) error {
	if in == nil || in.AccessorID == "" || in.SecretID == "" {
		return fmt.Errorf("%w: a token needs its accessor and secret IDs", ErrACLInvalid)
	}
	t := *in
	links := make([]acl.PolicyLink, 0, len(t.Policies))
	seen := map[string]bool{}
	for _, l := range t.Policies {
		p, err := policyByLink(tx, l)
		if err != nil {
			return err
		}
		if !seen[p.ID] {
			seen[p.ID] = true
			links = append(links, acl.PolicyLink{ID: p.ID, Name: p.Name})
		}
	}
	t.Policies = links
	existing, err := tx.First(tableACLTokens, "id", t.AccessorID)
	if err != nil {
		return err
	}
	if existing != nil {
		old := existing.(*acl.Token)
		if old.SecretID != t.SecretID {
			return fmt.Errorf("%w: a token's SecretID cannot change", ErrACLInvalid)
		}
		t.CreateIndex, t.CreateTime = old.CreateIndex, old.CreateTime
	} else {
		if other, err := tx.First(tableACLTokens, "secret", t.SecretID); err != nil {
			return err
		} else if other != nil {
			return fmt.Errorf("%w: a token with that SecretID already exists", ErrACLInvalid)
		}
		t.CreateIndex = idx
	}
	t.ModifyIndex = idx
	t.ExpirationTTL = 0
	t.Hash = t.ContentHash()
	if err := tx.Insert(tableACLTokens, &t); err != nil {
		return fmt.Errorf("inserting token: %w", err)
	}
	return setIndex(tx, idx, tableACLTokens)
}

func policyByLink(tx *memdb.Txn, l acl.PolicyLink) (*acl.Policy, error) {
	var raw any
	var err error
	switch {
	case l.ID != "":
		raw, err = tx.First(tableACLPolicies, "id", l.ID)
	case l.Name != "":
		raw, err = tx.First(tableACLPolicies, "name", l.Name)
	default:
		return nil, fmt.Errorf("%w: a policy link needs an ID or a name", ErrACLInvalid)
	}
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: no such policy %q", ErrACLInvalid, l.ID+l.Name)
	}
	return raw.(*acl.Policy), nil
}

func aclTokenDeleteTxn(tx *memdb.Txn, idx uint64, accessor string) error {
	if accessor == acl.AnonymousTokenAccessorID {
		return fmt.Errorf("%w: the anonymous token cannot be deleted", ErrACLInvalid)
	}
	raw, err := tx.First(tableACLTokens, "id", accessor)
	if err != nil {
		return err
	}
	if raw == nil {
		return fmt.Errorf("%w: token %q", ErrACLNotFound, accessor)
	}
	if err := tx.Delete(tableACLTokens, raw); err != nil {
		return fmt.Errorf("deleting token: %w", err)
	}
	return setIndex(tx, idx, tableACLTokens)
}

// aclPolicySetTxn creates or updates a policy; names are unique (without
// regard to case), and the built-in global-management policy may be
// renamed but its rules not changed, as in Consul. Tokens show the new
// name of a renamed policy.
func aclPolicySetTxn(tx *memdb.Txn, idx uint64, in *acl.Policy) error {
	if in == nil || in.ID == "" || !acl.ValidPolicyName(in.Name) {
		return fmt.Errorf("%w: a policy needs an ID and a name of letters, digits, - and _", ErrACLInvalid)
	}
	if _, err := acl.ParseRules(in.Rules); err != nil {
		return fmt.Errorf("%w: %v", ErrACLInvalid, err)
	}
	p := *in
	if other, err := tx.First(tableACLPolicies, "name", p.Name); err != nil {
		return err
	} else if other != nil && other.(*acl.Policy).ID != p.ID {
		return fmt.Errorf("%w: a policy named %q already exists", ErrACLInvalid, p.Name)
	}
	existing, err := tx.First(tableACLPolicies, "id", p.ID)
	if err != nil {
		return err
	}
	if existing != nil {
		old := existing.(*acl.Policy)
		if old.ID == acl.GlobalManagementPolicyID && (old.Rules != p.Rules || !slices.Equal(old.Datacenters, p.Datacenters)) {
			return fmt.Errorf("%w: the global-management policy's rules cannot change", ErrACLInvalid)
		}
		p.CreateIndex = old.CreateIndex
	} else {
		p.CreateIndex = idx
	}
	p.ModifyIndex = idx
	p.Hash = p.ContentHash()
	if err := tx.Insert(tableACLPolicies, &p); err != nil {
		return fmt.Errorf("inserting policy: %w", err)
	}
	if existing != nil && existing.(*acl.Policy).Name != p.Name {
		err := relinkTxn(tx, idx, p.ID, func(links []acl.PolicyLink) []acl.PolicyLink {
			for i := range links {
				if links[i].ID == p.ID {
					links[i].Name = p.Name
				}
			}
			return links
		})
		if err != nil {
			return err
		}
	}
	return setIndex(tx, idx, tableACLPolicies)
}

// relinkTxn rewrites the policy links of every token that links policy
// id with change.
func relinkTxn(tx *memdb.Txn, idx uint64, id string, change func([]acl.PolicyLink) []acl.PolicyLink) error {
	it, err := tx.Get(tableACLTokens, "policies", id)
	if err != nil {
		return err
	}
	var tokens []*acl.Token
	for raw := it.Next(); raw != nil; raw = it.Next() {
		tokens = append(tokens, raw.(*acl.Token))
	}
	for _, old := range tokens {
		t := *old
		t.Policies = change(slices.Clone(old.Policies))
		t.ModifyIndex = idx
		t.Hash = t.ContentHash()
		if err := tx.Insert(tableACLTokens, &t); err != nil {
			return fmt.Errorf("relinking a token: %w", err)
		}
	}
	if len(tokens) > 0 {
		return setIndex(tx, idx, tableACLTokens)
	}
	return nil
}

// aclPolicyDeleteTxn deletes a policy and unlinks it from every token.
func aclPolicyDeleteTxn(tx *memdb.Txn, idx uint64, id string) error {
	if id == acl.GlobalManagementPolicyID {
		return fmt.Errorf("%w: the global-management policy cannot be deleted", ErrACLInvalid)
	}
	raw, err := tx.First(tableACLPolicies, "id", id)
	if err != nil {
		return err
	}
	if raw == nil {
		return fmt.Errorf("%w: policy %q", ErrACLNotFound, id)
	}
	if err := tx.Delete(tableACLPolicies, raw); err != nil {
		return fmt.Errorf("deleting policy: %w", err)
	}
	err = relinkTxn(tx, idx, id, func(links []acl.PolicyLink) []acl.PolicyLink {
		return slices.DeleteFunc(links, func(l acl.PolicyLink) bool { return l.ID == id })
	})
	if err != nil {
		return err
	}
	return setIndex(tx, idx, tableACLPolicies)
}

// ---- reads ----

// ACLBootstrapped returns the index of the ACL bootstrap, 0 before it.
func (s *Store) ACLBootstrapped() uint64 { return aclBootstrapIndex(s.ReadTxn()) }

// ACLTokenBySecret returns the token whose SecretID is secret, nil when
// there is none or it expired at now.
func (s *Store) ACLTokenBySecret(ws memdb.WatchSet, secret string, now time.Time) (uint64, *acl.Token, error) {
	return s.aclToken(ws, "secret", secret, now)
}

// ACLTokenWithPolicies returns the token whose SecretID is secret and the
// policies it links, as of one read: ErrACLNotFound when no token has it
// or it expired at now. Before the ACL bootstrap the anonymous token is
// not stored; its secret then gets a token linking nothing.
func (s *Store) ACLTokenWithPolicies(secret string, now time.Time) (*acl.Token, []*acl.Policy, error) {
	tx := s.ReadTxn()
	raw, err := tx.First(tableACLTokens, "secret", secret)
	if err != nil {
		return nil, nil, fmt.Errorf("reading token: %w", err)
	}
	if raw == nil || raw.(*acl.Token).Expired(now) {
		if secret == acl.AnonymousTokenSecretID {
			return acl.AnonymousToken(), nil, nil
		}
		return nil, nil, fmt.Errorf("%w: no token has that secret", ErrACLNotFound)
	}
	token := raw.(*acl.Token)
	var policies []*acl.Policy
	for _, link := range token.Policies {
		p, err := tx.First(tableACLPolicies, "id", link.ID)
		if err != nil {
			return nil, nil, fmt.Errorf("reading policy: %w", err)
		}
		if p != nil { // nil: deleted meanwhile
			policies = append(policies, p.(*acl.Policy))
		}
	}
	return token, policies, nil
}

// ACLTokenByAccessor returns the token whose AccessorID is id, nil when
// there is none or it expired at now.
func (s *Store) ACLTokenByAccessor(ws memdb.WatchSet, id string, now time.Time) (uint64, *acl.Token, error) {
	return s.aclToken(ws, "id", id, now)
}

func (s *Store) aclToken(ws memdb.WatchSet, index, value string, now time.Time) (uint64, *acl.Token, error) {
	tx := s.ReadTxn()
	idx := maxIndex(tx, tableACLTokens, tableACLPolicies)
	ch, raw, err := tx.FirstWatch(tableACLTokens, index, value)
	if err != nil {
		return 0, nil, fmt.Errorf("reading token: %w", err)
	}
	watch(ws, ch)
	if raw == nil || raw.(*acl.Token).Expired(now) {
		return idx, nil, nil
	}
	return idx, raw.(*acl.Token), nil
}

// ACLTokens lists every token that has not expired at now, by accessor.
func (s *Store) ACLTokens(ws memdb.WatchSet, now time.Time) (uint64, []*acl.Token, error) {
	tx := s.ReadTxn()
	idx := maxIndex(tx, tableACLTokens, tableACLPolicies)
	it, err := tx.Get(tableACLTokens, "id")
	if err != nil {
		return 0, nil, fmt.Errorf("listing tokens: %w", err)
	}
	watch(ws, it.WatchCh())
	var out []*acl.Token
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if t := raw.(*acl.Token); !t.Expired(now) {
			out = append(out, t)
		}
	}
	return idx, out, nil
}

// ACLPolicyByID returns the policy with that ID, nil when there is none.
func (s *Store) ACLPolicyByID(ws memdb.WatchSet, id string) (uint64, *acl.Policy, error) {
	return s.aclPolicy(ws, "id", id)
}

// ACLPolicyByName returns the policy with that name, nil when there is
// none.
func (s *Store) ACLPolicyByName(ws memdb.WatchSet, name string) (uint64, *acl.Policy, error) {
	return s.aclPolicy(ws, "name", name)
}

func (s *Store) aclPolicy(ws memdb.WatchSet, index, value string) (uint64, *acl.Policy, error) {
	tx := s.ReadTxn()
	idx := maxIndex(tx, tableACLPolicies)
	ch, raw, err := tx.FirstWatch(tableACLPolicies, index, value)
	if err != nil {
		return 0, nil, fmt.Errorf("reading policy: %w", err)
	}
	watch(ws, ch)
	if raw == nil {
		return idx, nil, nil
	}
	return idx, raw.(*acl.Policy), nil
}

// ACLPolicies lists every policy, by ID.
func (s *Store) ACLPolicies(ws memdb.WatchSet) (uint64, []*acl.Policy, error) {
	tx := s.ReadTxn()
	idx := maxIndex(tx, tableACLPolicies)
	it, err := tx.Get(tableACLPolicies, "id")
	if err != nil {
		return 0, nil, fmt.Errorf("listing policies: %w", err)
	}
	watch(ws, it.WatchCh())
	var out []*acl.Policy
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*acl.Policy))
	}
	return idx, out, nil
}

// aclWatch returns channels closed by the next change to the tokens, the
// policies, or the whole store (a restore).
func (s *Store) aclWatch() [3]<-chan struct{} {
	tx := s.ReadTxn()
	var out [3]<-chan struct{}
	for i, table := range []string{tableACLTokens, tableACLPolicies} {
		if it, err := tx.Get(table, "id"); err == nil {
			out[i] = it.WatchCh()
		} else {
			closed := make(chan struct{})
			close(closed)
			out[i] = closed
		}
	}
	out[2] = s.AbandonCh()
	return out
}
