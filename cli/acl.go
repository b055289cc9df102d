package cli

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// `beacon acl`: bootstrap, tokens and policies, on the official client's
// ACL API, with Consul's command names, flags and output.

var aclCommand = &command{name: "acl", synopsis: "Interact with ACL tokens and policies",
	subs: []*command{aclBootstrapCommand, aclPolicyCommand, aclSetAgentTokenCommand, aclTokenCommand}}

var aclSetAgentTokenCommand = &command{name: "set-agent-token", synopsis: "Set a token of the agent until it restarts",
	help: "beacon acl set-agent-token (default|agent) TOKEN", http: true,
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		if len(args) != 2 {
			return usageErr(e, "give the token type and the token")
		}
		kind, token := args[0], args[1]
		var err error
		switch kind {
		case "default":
			_, err = e.client.Agent().UpdateDefaultACLToken(token, nil)
		case "agent":
			_, err = e.client.Agent().UpdateAgentACLToken(token, nil)
		default:
			return usageErr(e, fmt.Sprintf("unknown token type %q: want default or agent", kind))
		}
		if err != nil {
			return e.fail("Failed to set ACL token %q: %v", kind, err)
		}
		return writeOutput(e, fmt.Sprintf("ACL token %q set successfully\n", kind))
	},
}

var aclBootstrapCommand = &command{name: "bootstrap", synopsis: "Bootstrap the ACL system: the first management token",
	help: "beacon acl bootstrap", http: true, noArgs: true,
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		tok, _, err := e.client.ACL().Bootstrap()
		if err != nil {
			return e.fail("Failed ACL bootstrapping: %v", err)
		}
		return writeOutput(e, formatToken(tok))
	},
}

var aclTokenCommand = &command{name: "token", synopsis: "Manage ACL tokens",
	subs: []*command{aclTokenCreateCommand, aclTokenDeleteCommand, aclTokenListCommand, aclTokenReadCommand}}

// policyLinks turns -policy-id and -policy-name values into links.
func policyLinks(ids, names []string) []*api.ACLTokenPolicyLink {
	var out []*api.ACLTokenPolicyLink
	for _, id := range ids {
		out = append(out, &api.ACLTokenPolicyLink{ID: id})
	}
	for _, n := range names {
		out = append(out, &api.ACLTokenPolicyLink{Name: n})
	}
	return out
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
func (l *listFlag) Get() any           { return []string(*l) }

var aclTokenCreateCommand = &command{name: "create", synopsis: "Create an ACL token",
	help: "beacon acl token create [-description TEXT] [-policy-id ID]... [-policy-name NAME]... [-expires-ttl DURATION]",
	http: true, noArgs: true,
	flags: func(fs *flag.FlagSet) {
		fs.String("description", "", "A description of the token.")
		fs.Var(&listFlag{}, "policy-id", "ID of a policy to link; may be repeated.")
		fs.Var(&listFlag{}, "policy-name", "Name of a policy to link; may be repeated.")
		fs.Duration("expires-ttl", 0, "How long until the token expires (none by default).")
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		tok := &api.ACLToken{Description: flagString(fs, "description"), ExpirationTTL: flagOf[time.Duration](fs, "expires-ttl"),
			Policies: policyLinks(flagOf[[]string](fs, "policy-id"), flagOf[[]string](fs, "policy-name"))}
		created, _, err := e.client.ACL().TokenCreate(tok, nil)
		if err != nil {
			return e.fail("Failed to create new token: %v", err)
		}
		return writeOutput(e, formatToken(created))
	},
}

var aclTokenReadCommand = &command{name: "read", synopsis: "Read an ACL token",
	help: "beacon acl token read (-id ACCESSOR | -self)", http: true, noArgs: true,
	flags: func(fs *flag.FlagSet) {
		fs.String("id", "", "The accessor ID of the token to read.")
		fs.Bool("self", false, "Read the token the command runs with.")
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		id, self := flagString(fs, "id"), flagOf[bool](fs, "self")
		if (id == "") == !self {
			return usageErr(e, "give one of -id and -self")
		}
		var tok *api.ACLToken
		var err error
		if self {
			tok, _, err = e.client.ACL().TokenReadSelf(nil)
		} else {
			tok, _, err = e.client.ACL().TokenRead(id, nil)
		}
		if err != nil {
			return e.fail("Error reading token: %v", err)
		}
		return writeOutput(e, formatToken(tok))
	},
}

var aclTokenListCommand = &command{name: "list", synopsis: "List ACL tokens", help: "beacon acl token list",
	http: true, noArgs: true,
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		toks, _, err := e.client.ACL().TokenList(nil)
		if err != nil {
			return e.fail("Failed to retrieve the token list: %v", err)
		}
		var b strings.Builder
		for _, t := range toks {
			b.WriteString(formatToken(&api.ACLToken{AccessorID: t.AccessorID, Description: t.Description,
				Local: t.Local, CreateTime: t.CreateTime, Policies: t.Policies, ExpirationTime: t.ExpirationTime}))
			b.WriteString("\n")
		}
		return writeOutput(e, b.String())
	},
}

var aclTokenDeleteCommand = &command{name: "delete", synopsis: "Delete an ACL token",
	help: "beacon acl token delete -id ACCESSOR", http: true, noArgs: true,
	flags: func(fs *flag.FlagSet) { fs.String("id", "", "The accessor ID of the token to delete.") },
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		id := flagString(fs, "id")
		if id == "" {
			return usageErr(e, "Must specify the -id parameter")
		}
		if _, err := e.client.ACL().TokenDelete(id, nil); err != nil {
			return e.fail("Error deleting token %q: %v", id, err)
		}
		return writeOutput(e, fmt.Sprintf("Token %q deleted successfully\n", id))
	},
}

// formatToken writes a token as Consul's CLI does.
func formatToken(t *api.ACLToken) string {
	var b strings.Builder
	fmt.Fprintf(&b, "AccessorID:       %s\n", t.AccessorID)
	if t.SecretID != "" {
		fmt.Fprintf(&b, "SecretID:         %s\n", t.SecretID)
	}
	fmt.Fprintf(&b, "Description:      %s\n", t.Description)
	fmt.Fprintf(&b, "Local:            %t\n", t.Local)
	fmt.Fprintf(&b, "Create Time:      %v\n", t.CreateTime)
	if t.ExpirationTime != nil && !t.ExpirationTime.IsZero() {
		fmt.Fprintf(&b, "Expiration Time:  %v\n", *t.ExpirationTime)
	}
	if len(t.Policies) > 0 {
		b.WriteString("Policies:\n")
		for _, p := range t.Policies {
			fmt.Fprintf(&b, "   %s - %s\n", p.ID, p.Name)
		}
	}
	return b.String()
}

var aclPolicyCommand = &command{name: "policy", synopsis: "Manage ACL policies",
	subs: []*command{aclPolicyCreateCommand, aclPolicyDeleteCommand, aclPolicyListCommand, aclPolicyReadCommand}}

var aclPolicyCreateCommand = &command{name: "create", synopsis: "Create an ACL policy",
	help: "beacon acl policy create -name NAME [-description TEXT] (-rules RULES | -rules @FILE)", http: true, noArgs: true,
	flags: func(fs *flag.FlagSet) {
		fs.String("name", "", "The policy's name.")
		fs.String("description", "", "A description of the policy.")
		fs.String("rules", "", "The policy's rules (HCL or JSON), or @FILE to read them from FILE.")
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		name, rules := flagString(fs, "name"), flagString(fs, "rules")
		if name == "" {
			return usageErr(e, "Missing required '-name' flag")
		}
		if file, ok := strings.CutPrefix(rules, "@"); ok {
			b, err := os.ReadFile(file)
			if err != nil {
				return e.fail("Failed to read rules from %s: %v", file, err)
			}
			rules = string(b)
		}
		p, _, err := e.client.ACL().PolicyCreate(&api.ACLPolicy{Name: name, Description: flagString(fs, "description"),
			Rules: rules}, nil)
		if err != nil {
			return e.fail("Failed to create new policy: %v", err)
		}
		return writeOutput(e, formatPolicy(p, true))
	},
}

var aclPolicyReadCommand = &command{name: "read", synopsis: "Read an ACL policy",
	help: "beacon acl policy read (-id ID | -name NAME)", http: true, noArgs: true,
	flags: func(fs *flag.FlagSet) {
		fs.String("id", "", "The ID of the policy to read.")
		fs.String("name", "", "The name of the policy to read.")
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		id, name := flagString(fs, "id"), flagString(fs, "name")
		if (id == "") == (name == "") {
			return usageErr(e, "give one of -id and -name")
		}
		var p *api.ACLPolicy
		var err error
		if id != "" {
			p, _, err = e.client.ACL().PolicyRead(id, nil)
		} else {
			p, _, err = e.client.ACL().PolicyReadByName(name, nil)
		}
		if err != nil {
			return e.fail("Error reading policy: %v", err)
		}
		return writeOutput(e, formatPolicy(p, true))
	},
}

var aclPolicyListCommand = &command{name: "list", synopsis: "List ACL policies", help: "beacon acl policy list",
	http: true, noArgs: true,
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		ps, _, err := e.client.ACL().PolicyList(nil)
		if err != nil {
			return e.fail("Failed to retrieve the policy list: %v", err)
		}
		var b strings.Builder
		for _, p := range ps {
			fmt.Fprintf(&b, "%s:\n", p.Name)
			b.WriteString(indent(formatPolicy(&api.ACLPolicy{ID: p.ID, Name: p.Name, Description: p.Description,
				Datacenters: p.Datacenters}, false)))
		}
		return writeOutput(e, b.String())
	},
}

var aclPolicyDeleteCommand = &command{name: "delete", synopsis: "Delete an ACL policy",
	help: "beacon acl policy delete -id ID", http: true, noArgs: true,
	flags: func(fs *flag.FlagSet) { fs.String("id", "", "The ID of the policy to delete.") },
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		id := flagString(fs, "id")
		if id == "" {
			return usageErr(e, "Must specify the -id parameter")
		}
		if _, err := e.client.ACL().PolicyDelete(id, nil); err != nil {
			return e.fail("Error deleting policy %q: %v", id, err)
		}
		return writeOutput(e, fmt.Sprintf("Policy %q deleted successfully\n", id))
	},
}

// formatPolicy writes a policy as Consul's CLI does, with its rules when
// asked.
func formatPolicy(p *api.ACLPolicy, rules bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ID:           %s\n", p.ID)
	fmt.Fprintf(&b, "Name:         %s\n", p.Name)
	fmt.Fprintf(&b, "Description:  %s\n", p.Description)
	fmt.Fprintf(&b, "Datacenters:  %s\n", strings.Join(p.Datacenters, ", "))
	if rules {
		fmt.Fprintf(&b, "Rules:\n%s\n", p.Rules)
	}
	return b.String()
}

func indent(s string) string {
	return "   " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n   ") + "\n"
}
