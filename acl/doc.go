// Package acl owns Consul's ACL rules language and the decisions made from
// it: parsing a policy's rules (HCL or JSON, as Consul accepts them) into
// Rules; building an Authorizer from a token's parsed policies and a
// fallback (the configured default policy, `acl allow|deny`); and the
// policy and token types of Consul's ACL API (Policy, Token, PolicyLink),
// with the built-in global-management policy, the anonymous token, secret
// generation, expiry and content hashes.
//
// Decisions follow Consul's rules: for a segmented resource (key, service,
// node, session, agent, event, query) an exact rule for the name wins over
// prefix rules, and among prefix rules the longest matching prefix wins;
// rules a token's policies give for the same resource and segment merge as
// deny > write > list > read; a name no rule matches is decided by the
// fallback. ACL management (acl, snapshots) is never granted by the
// `allow` default, only by a rule or by ManageAll. An Authorizer is built
// once per token and is safe for concurrent use; its decisions do not
// allocate.
//
// The package knows nothing of where policies and tokens are stored, how
// requests arrive or how tokens are resolved: it must not import any other
// beacon package, Raft or bolt, so the DNS plugin and the HTTP API decide
// without linking Raft (imports_test.go holds it to that).
package acl
