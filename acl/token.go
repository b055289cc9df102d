package acl

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"time"
)

// Policy is an ACL policy as Consul's API shows it (api.ACLPolicy, without
// the Enterprise namespace and partition): a named set of rules that
// tokens link. Rules is the text ParseRules reads.
type Policy struct {
	ID          string
	Name        string
	Description string
	Rules       string
	// Datacenters limits where the policy applies; empty means all.
	Datacenters []string
	Hash        []byte
	CreateIndex uint64
	ModifyIndex uint64
}

// PolicyLink is a token's link to a policy, by ID and name
// (api.ACLTokenPolicyLink). Requests may give either; stored tokens carry
// the ID, and the name is filled in when the token is shown.
type PolicyLink struct {
	ID   string
	Name string
}

// Token is an ACL token as Consul's API shows it (api.ACLToken, without
// roles, identities, auth methods and the Enterprise fields). SecretID is
// the credential requests carry; AccessorID names the token everywhere
// else (logs included: see String).
type Token struct {
	CreateIndex uint64
	ModifyIndex uint64
	AccessorID  string
	SecretID    string
	Description string
	Policies    []PolicyLink `json:",omitempty"`
	// Local tokens live in one datacenter and are not replicated.
	Local bool
	// ExpirationTTL is a request field: the server turns it into
	// ExpirationTime. JSON carries it in nanoseconds, as Consul's api
	// package does.
	ExpirationTTL  time.Duration `json:",omitempty"`
	ExpirationTime *time.Time    `json:",omitempty"`
	CreateTime     time.Time     `json:",omitempty"`
	Hash           []byte        `json:",omitempty"`
}

// The built-in policy and token, with the fixed identities Consul gives
// them.
const (
	GlobalManagementPolicyID          = "00000000-0000-0000-0000-000000000001"
	GlobalManagementPolicyName        = "global-management"
	GlobalManagementPolicyDescription = "Builtin Policy that grants unlimited access"

	AnonymousTokenAccessorID  = "00000000-0000-0000-0000-000000000002"
	AnonymousTokenSecretID    = "anonymous"
	AnonymousTokenDescription = "Anonymous Token"
)

// globalManagementRules grants write on every resource, ACLs included.
const globalManagementRules = `acl = "write"
keyring = "write"
operator = "write"
mesh = "write"
peering = "write"
agent_prefix "" {
  policy = "write"
}
event_prefix "" {
  policy = "write"
}
key_prefix "" {
  policy = "write"
}
node_prefix "" {
  policy = "write"
}
query_prefix "" {
  policy = "write"
}
service_prefix "" {
  policy = "write"
  intentions = "write"
}
session_prefix "" {
  policy = "write"
}
`

// GlobalManagementPolicy returns a new copy of the built-in
// global-management policy, whose rules grant everything (its
// authorizer decides as ManageAll does), with its hash set.
func GlobalManagementPolicy() *Policy {
	p := &Policy{
		ID:          GlobalManagementPolicyID,
		Name:        GlobalManagementPolicyName,
		Description: GlobalManagementPolicyDescription,
		Rules:       globalManagementRules,
	}
	p.Hash = p.ContentHash()
	return p
}

// AnonymousToken returns a new copy of the built-in anonymous token, which
// requests without a token act as. It links no policy until an operator
// gives it some.
func AnonymousToken() *Token {
	t := &Token{
		AccessorID:  AnonymousTokenAccessorID,
		SecretID:    AnonymousTokenSecretID,
		Description: AnonymousTokenDescription,
	}
	t.Hash = t.ContentHash()
	return t
}

// NewUUID returns a random (version 4) UUID from crypto/rand, for accessor
// and policy IDs.
func NewUUID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails: crypto/rand crashes the program instead
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// NewSecret returns a new token secret: a random UUID, as Consul's secrets
// are (122 random bits from crypto/rand).
func NewSecret() string { return NewUUID() }

// ValidUUID reports whether s is a UUID in its 36-character text form, as
// Consul requires of client-chosen accessor and secret IDs.
func ValidUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHex(s[i]) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// ValidPolicyName reports whether name is a valid policy name: 1 to 128
// letters, digits, dashes and underscores, as Consul requires.
func ValidPolicyName(name string) bool {
	if len(name) == 0 || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Expired reports whether the token has expired at now: it has an
// expiration time and now is after it.
func (t *Token) Expired(now time.Time) bool {
	if t.ExpirationTime == nil || t.ExpirationTime.IsZero() {
		return false
	}
	return now.After(*t.ExpirationTime)
}

// String names the token by its accessor and description, never its
// secret, so a token logged by %v leaks nothing.
func (t *Token) String() string {
	if t == nil {
		return "token <nil>"
	}
	return fmt.Sprintf("token %s (%q)", t.AccessorID, t.Description)
}

// GoString is String, so %#v does not print the secret either.
func (t *Token) GoString() string { return t.String() }

// ContentHash returns a hash of what the policy grants and is called:
// name, description, rules and datacenters (not its ID or indexes). Equal
// content gives equal hashes across servers and versions; it is what
// Hash holds.
func (p *Policy) ContentHash() []byte {
	h := sha256.New()
	writeField(h, p.Name)
	writeField(h, p.Description)
	writeField(h, p.Rules)
	writeCount(h, len(p.Datacenters))
	for _, dc := range p.Datacenters {
		writeField(h, dc)
	}
	return h.Sum(nil)
}

// ContentHash returns a hash of what the token grants and is called:
// description, locality and linked policy IDs (a link without an ID by
// its name), not its own IDs, secret, times or indexes. It is what Hash
// holds.
func (t *Token) ContentHash() []byte {
	h := sha256.New()
	writeField(h, t.Description)
	if t.Local {
		writeField(h, "local")
	} else {
		writeField(h, "global")
	}
	writeCount(h, len(t.Policies))
	for _, link := range t.Policies {
		if link.ID != "" {
			writeField(h, "id:"+link.ID)
		} else {
			writeField(h, "name:"+link.Name)
		}
	}
	return h.Sum(nil)
}

// writeField writes s length-prefixed, so fields cannot run into each
// other.
func writeField(h hash.Hash, s string) {
	writeCount(h, len(s))
	h.Write([]byte(s))
}

func writeCount(h hash.Hash, n int) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	h.Write(b[:])
}
