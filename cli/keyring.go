package cli

import (
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/consul/api"
)

// gossipKeySize is the size of a key keygen makes: 32 bytes, AES-256, as
// Consul's keygen makes them (memberlist takes 16, 24 or 32).
const gossipKeySize = 32

var keygenCommand = &command{
	name:     "keygen",
	synopsis: "Generates a new gossip encryption key",
	help:     "beacon keygen",
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		if code := noArgs(e, args); code != exitOK {
			return code
		}
		key := make([]byte, gossipKeySize)
		if _, err := rand.Read(key); err != nil {
			return fail(e, "reading random data", err)
		}
		fmt.Fprintln(e.stdout, base64.StdEncoding.EncodeToString(key))
		return exitOK
	},
}

// maxRelayFactor is Consul's bound on -relay-factor.
const maxRelayFactor = 5

var keyringCommand = &command{
	name:     "keyring",
	synopsis: "Manages gossip layer encryption keys",
	help:     "beacon keyring [options] (-list | -list-primary | -install=KEY | -use=KEY | -remove=KEY)",
	http:     true,
	flags: func(fs *flag.FlagSet) {
		fs.Bool("list", false, "List the keys installed in each gossip pool, with how many members have each.")
		fs.Bool("list-primary", false, "List the primary key of each gossip pool, with how many members use each.")
		fs.String("install", "", "Install KEY (base64) on every member, beside the keys they have.")
		fs.String("use", "", "Make KEY, which must be installed already, the primary key: the one messages are encrypted with.")
		fs.String("remove", "", "Remove KEY, which must not be the primary key, from every member.")
		fs.Int("relay-factor", 0, "Have members relay their answers through this many other members (0 to 5).")
		fs.Bool("local-only", false, "Ask only this datacenter's servers (lists only).")
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		if code := noArgs(e, args); code != exitOK {
			return code
		}
		list, listPrimary := flagOf[bool](fs, "list"), flagOf[bool](fs, "list-primary")
		install, use, remove := flagString(fs, "install"), flagString(fs, "use"), flagString(fs, "remove")
		actions := 0
		for _, set := range []bool{list, listPrimary, install != "", use != "", remove != ""} {
			if set {
				actions++
			}
		}
		switch {
		case actions == 0:
			return usageErr(e, "give one of -list, -list-primary, -install, -use or -remove")
		case actions > 1:
			return usageErr(e, "Only a single action is allowed")
		}
		relay := flagOf[int](fs, "relay-factor")
		if relay < 0 || relay > maxRelayFactor {
			return usageErr(e, "Relay factor must be in range: [0, %d]", maxRelayFactor)
		}
		local := flagOf[bool](fs, "local-only")
		if local && !list && !listPrimary {
			return usageErr(e, "local-only can only be set for list requests")
		}
		c := e.client
		operator := c.Operator()

		if list || listPrimary {
			if list {
				fmt.Fprintln(e.stdout, "==> Gathering installed encryption keys...")
			} else {
				fmt.Fprintln(e.stdout, "==> Gathering installed primary encryption keys...")
			}
			pools, err := operator.KeyringList(&api.QueryOptions{RelayFactor: uint8(relay), LocalOnly: local})
			if err != nil {
				return keyringErr(e, decoded("/v1/operator/keyring", err))
			}
			var b strings.Builder
			for _, p := range pools {
				if p == nil {
					continue
				}
				keys := p.Keys
				if listPrimary {
					keys = p.PrimaryKeys
				}
				writeKeyringPool(&b, p, keys)
			}
			if _, err := fmt.Fprint(e.stdout, b.String()); err != nil {
				return fail(e, "writing output", err)
			}
			return exitOK
		}

		change, key, doing := operator.KeyringInstall, install, "Installing new gossip encryption key..."
		switch {
		case use != "":
			change, key, doing = operator.KeyringUse, use, "Changing primary gossip encryption key..."
		case remove != "":
			change, key, doing = operator.KeyringRemove, remove, "Removing gossip encryption key..."
		}
		fmt.Fprintln(e.stdout, "==> "+doing)
		if err := change(key, &api.WriteOptions{RelayFactor: uint8(relay)}); err != nil {
			return keyringErr(e, err)
		}
		return exitOK
	},
}

// keyringErr reports a failed keyring call in Consul's words for it.
func keyringErr(e *env, err error) int {
	fmt.Fprintf(e.stderr, "error: %v\n", err)
	return exitError
}

// writeKeyringPool writes one pool as Consul's keyring command does: a blank
// line, "dc1 (LAN):" (or "WAN:", with " [segment]" or " [partition: p]"
// after it), each member's message as "  ===> node: message", then each key
// as "  KEY [members with it/members]". Messages and keys are sorted
// (Consul prints them in its map's order).
func writeKeyringPool(b *strings.Builder, p *api.KeyringResponse, keys map[string]int) {
	pool := p.Datacenter + " (LAN)"
	if p.WAN {
		pool = "WAN"
	}
	switch {
	case p.Segment != "":
		pool += " [" + p.Segment + "]"
	case !isDefaultPartition(p.Partition):
		pool += " [partition: " + p.Partition + "]"
	}
	fmt.Fprintf(b, "\n%s:\n", pool)
	for _, from := range sortedKeys(p.Messages) {
		fmt.Fprintf(b, "  ===> %s: %s\n", from, p.Messages[from])
	}
	for _, k := range sortedKeys(keys) {
		fmt.Fprintf(b, "  %s [%d/%d]\n", k, keys[k], p.NumNodes)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
