package acl

import (
	radix "github.com/armon/go-radix"
)

// An Authorizer answers whether a token may do something. It holds the
// merged rules of the token's policies and a fallback that decides what no
// rule matches; the built-in ones (ManageAll, AllowAll, DenyAll) answer
// alone. It is immutable once built and safe for concurrent use; its
// decisions do not allocate.
//
// For a segmented resource the deciding rule is the exact rule for the
// name if there is one, otherwise the prefix rule with the longest prefix
// of the name; read needs read, list or write; list needs list or write;
// write needs write; deny refuses all. With no matching rule, the fallback
// decides.
//
// The zero Authorizer, and a nil *Authorizer, deny everything.
type Authorizer struct {
	tables [numResources]ruleTable
	// acl … peering hold the merged unsegmented rules; AccessNone when
	// unset.
	acl, keyring, operator, mesh, peering Access

	// fallback decides what the rules do not; nil for a built-in
	// authorizer, which answers allowAll for everything but ACL
	// management, and allowManage for that.
	fallback    *Authorizer
	allowAll    bool
	allowManage bool
}

// ruleTable holds one resource's rules: exact and prefix rules in separate
// trees, so an exact lookup is one Get and a prefix lookup one
// LongestPrefix. A nil tree has no rules.
type ruleTable struct {
	exact, prefix *radix.Tree
}

func (t *ruleTable) insert(rule Rule) {
	tree := &t.exact
	if rule.Prefix {
		tree = &t.prefix
	}
	if *tree == nil {
		*tree = radix.New()
	}
	access := rule.Access
	if old, ok := (*tree).Get(rule.Segment); ok {
		access = max(access, old.(Access))
	}
	(*tree).Insert(rule.Segment, access)
}

// lookup returns the access of the rule deciding for name, if any.
func (t *ruleTable) lookup(name string) (Access, bool) {
	if t.exact != nil {
		if v, ok := t.exact.Get(name); ok {
			return v.(Access), true
		}
	}
	if t.prefix != nil {
		if _, v, ok := t.prefix.LongestPrefix(name); ok {
			return v.(Access), true
		}
	}
	return AccessNone, false
}

var (
	manageAll = &Authorizer{allowAll: true, allowManage: true}
	allowAll  = &Authorizer{allowAll: true}
	denyAll   = &Authorizer{}
)

// ManageAll returns the authorizer that allows everything, ACL management
// included: the global-management privilege (Consul's "manage").
func ManageAll() *Authorizer { return manageAll }

// AllowAll returns the authorizer that allows everything but ACL
// management (the ACL API and snapshots): the `acl allow` default policy.
func AllowAll() *Authorizer { return allowAll }

// DenyAll returns the authorizer that denies everything: the `acl deny`
// default policy.
func DenyAll() *Authorizer { return denyAll }

// NewAuthorizer builds the authorizer of a token whose policies parsed to
// rules (nil entries are skipped). Rules of different policies for the
// same resource and segment merge by precedence: deny > write > list >
// read. What no rule decides, fallback does: AllowAll() or DenyAll() for
// the configured default policy (nil means DenyAll()), or another
// authorizer to chain to.
//
// Building costs time in the number of rules: build once per token (and
// set of policies) and reuse it.
func NewAuthorizer(fallback *Authorizer, rules ...*Rules) *Authorizer {
	if fallback == nil {
		fallback = denyAll
	}
	a := &Authorizer{fallback: fallback}
	for _, r := range rules {
		if r == nil {
			continue
		}
		a.acl = max(a.acl, r.ACL)
		a.keyring = max(a.keyring, r.Keyring)
		a.operator = max(a.operator, r.Operator)
		a.mesh = max(a.mesh, r.Mesh)
		a.peering = max(a.peering, r.Peering)
		for _, rule := range r.Segmented {
			if rule.Resource < numResources && rule.Access != AccessNone {
				a.tables[rule.Resource].insert(rule)
			}
		}
	}
	return a
}

// segmented decides need on name of resource res along the chain.
func (a *Authorizer) segmented(res Resource, name string, need Access) bool {
	if a == nil {
		return false
	}
	for ; a.fallback != nil; a = a.fallback {
		if access, ok := a.tables[res].lookup(name); ok {
			return access.grants(need)
		}
	}
	return a.allowAll
}

// unsegmented decides need on an unsegmented resource: field picks its
// rule from an authorizer of the chain.
func (a *Authorizer) unsegmented(field func(*Authorizer) Access, need Access) bool {
	if a == nil {
		return false
	}
	for ; a.fallback != nil; a = a.fallback {
		if access := field(a); access != AccessNone {
			return access.grants(need)
		}
	}
	return a.allowAll
}

// management decides need on the ACL API: only an acl rule or ManageAll
// grants it, never the allow default.
func (a *Authorizer) management(need Access) bool {
	if a == nil {
		return false
	}
	for ; a.fallback != nil; a = a.fallback {
		if a.acl != AccessNone {
			return a.acl.grants(need)
		}
	}
	return a.allowManage
}

func keyringRule(a *Authorizer) Access  { return a.keyring }
func operatorRule(a *Authorizer) Access { return a.operator }

// meshRule is the mesh rule, or the operator rule when mesh is unset.
func meshRule(a *Authorizer) Access { return cmpOr(a.mesh, a.operator) }

// peeringRule is the peering rule, or the operator rule when peering is
// unset.
func peeringRule(a *Authorizer) Access { return cmpOr(a.peering, a.operator) }

func cmpOr(a, b Access) Access {
	if a != AccessNone {
		return a
	}
	return b
}

// KeyRead reports whether the KV entry key may be read.
func (a *Authorizer) KeyRead(key string) bool { return a.segmented(ResourceKey, key, AccessRead) }

// KeyList reports whether the keys under prefix may be listed (a recursive
// read or ?keys). It is Consul's list policy, which Consul enforces only
// with acl.enable_key_list_policy: without it, callers check KeyRead on
// each entry instead. Entries listed are still filtered by KeyRead.
func (a *Authorizer) KeyList(prefix string) bool {
	return a.segmented(ResourceKey, prefix, AccessList)
}

// KeyWrite reports whether the KV entry key may be written or deleted.
func (a *Authorizer) KeyWrite(key string) bool { return a.segmented(ResourceKey, key, AccessWrite) }

// KeyWritePrefix reports whether every key under prefix may be written: a
// recursive delete. The prefix rule deciding for prefix itself must grant
// write (or, with none, the fallback must allow it), and no rule, exact or
// prefix, on prefix or below it may grant less than write.
func (a *Authorizer) KeyWritePrefix(prefix string) bool {
	if a == nil {
		return false
	}
	for ; a.fallback != nil; a = a.fallback {
		if allowed, decided := a.keyWritePrefix(prefix); decided {
			return allowed
		}
	}
	return a.allowAll
}

func (a *Authorizer) keyWritePrefix(prefix string) (allowed, decided bool) {
	t := &a.tables[ResourceKey]
	base := AccessNone
	if t.prefix != nil {
		if _, v, ok := t.prefix.LongestPrefix(prefix); ok {
			base = v.(Access)
		}
	}
	if base != AccessNone && base != AccessWrite {
		return false, true
	}
	if !allWrite(t.prefix, prefix) || !allWrite(t.exact, prefix) {
		return false, true
	}
	return base == AccessWrite, base == AccessWrite
}

// allWrite reports whether every rule of tree on or under prefix is write.
func allWrite(tree *radix.Tree, prefix string) bool {
	if tree == nil {
		return true
	}
	all := true
	tree.WalkPrefix(prefix, func(_ string, v any) bool {
		if v.(Access) != AccessWrite {
			all = false
			return true
		}
		return false
	})
	return all
}

// ServiceRead reports whether the service may be read (catalog, health,
// DNS).
func (a *Authorizer) ServiceRead(service string) bool {
	return a.segmented(ResourceService, service, AccessRead)
}

// ServiceWrite reports whether instances of the service may be registered,
// changed or deregistered.
func (a *Authorizer) ServiceWrite(service string) bool {
	return a.segmented(ResourceService, service, AccessWrite)
}

// NodeRead reports whether the node may be read.
func (a *Authorizer) NodeRead(node string) bool { return a.segmented(ResourceNode, node, AccessRead) }

// NodeWrite reports whether the node may be registered, changed or
// deregistered.
func (a *Authorizer) NodeWrite(node string) bool {
	return a.segmented(ResourceNode, node, AccessWrite)
}

// SessionRead reports whether the sessions on node may be read.
func (a *Authorizer) SessionRead(node string) bool {
	return a.segmented(ResourceSession, node, AccessRead)
}

// SessionWrite reports whether sessions on node may be created, renewed or
// destroyed.
func (a *Authorizer) SessionWrite(node string) bool {
	return a.segmented(ResourceSession, node, AccessWrite)
}

// AgentRead reports whether the agent on node may be read (self, members,
// metrics, monitor, …).
func (a *Authorizer) AgentRead(node string) bool {
	return a.segmented(ResourceAgent, node, AccessRead)
}

// AgentWrite reports whether the agent on node may be changed (join,
// leave, reload, maintenance, …).
func (a *Authorizer) AgentWrite(node string) bool {
	return a.segmented(ResourceAgent, node, AccessWrite)
}

// EventRead reports whether user events named event may be listed.
func (a *Authorizer) EventRead(event string) bool {
	return a.segmented(ResourceEvent, event, AccessRead)
}

// EventWrite reports whether user events named event may be fired.
func (a *Authorizer) EventWrite(event string) bool {
	return a.segmented(ResourceEvent, event, AccessWrite)
}

// QueryRead reports whether the prepared query named query may be read.
func (a *Authorizer) QueryRead(query string) bool {
	return a.segmented(ResourceQuery, query, AccessRead)
}

// QueryWrite reports whether the prepared query named query may be
// created, changed or deleted.
func (a *Authorizer) QueryWrite(query string) bool {
	return a.segmented(ResourceQuery, query, AccessWrite)
}

// KeyringRead reports whether the gossip keyring may be listed.
func (a *Authorizer) KeyringRead() bool { return a.unsegmented(keyringRule, AccessRead) }

// KeyringWrite reports whether gossip keys may be installed, used or
// removed.
func (a *Authorizer) KeyringWrite() bool { return a.unsegmented(keyringRule, AccessWrite) }

// OperatorRead reports whether cluster operations may be read (Raft
// configuration, autopilot, …).
func (a *Authorizer) OperatorRead() bool { return a.unsegmented(operatorRule, AccessRead) }

// OperatorWrite reports whether cluster operations may be performed.
func (a *Authorizer) OperatorWrite() bool { return a.unsegmented(operatorRule, AccessWrite) }

// MeshRead reports whether mesh configuration may be read; with no mesh
// rule, the operator rule decides.
func (a *Authorizer) MeshRead() bool { return a.unsegmented(meshRule, AccessRead) }

// MeshWrite reports whether mesh configuration may be changed; with no
// mesh rule, the operator rule decides.
func (a *Authorizer) MeshWrite() bool { return a.unsegmented(meshRule, AccessWrite) }

// PeeringRead reports whether cluster peerings may be read; with no
// peering rule, the operator rule decides.
func (a *Authorizer) PeeringRead() bool { return a.unsegmented(peeringRule, AccessRead) }

// PeeringWrite reports whether cluster peerings may be changed; with no
// peering rule, the operator rule decides.
func (a *Authorizer) PeeringWrite() bool { return a.unsegmented(peeringRule, AccessWrite) }

// ACLRead reports whether ACL tokens, policies and their secrets may be
// read. Only an acl rule or ManageAll grants it.
func (a *Authorizer) ACLRead() bool { return a.management(AccessRead) }

// ACLWrite reports whether ACL tokens and policies may be created, changed
// or deleted. Only an acl rule or ManageAll grants it.
func (a *Authorizer) ACLWrite() bool { return a.management(AccessWrite) }

// Snapshot reports whether snapshots may be saved or restored: they hold
// every token's secret, so this needs acl = "write" (or ManageAll).
func (a *Authorizer) Snapshot() bool { return a.management(AccessWrite) }
