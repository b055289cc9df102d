package cli

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"text/tabwriter"

	"github.com/hashicorp/consul/api"
)

// The kv commands: Consul's `kv get`, `put`, `delete`, `export` and
// `import` (command/kv/*), with their flags, messages and exit codes.

var kvCommand = &command{name: "kv", synopsis: "Interact with the key-value store",
	subs: []*command{kvDeleteCommand, kvExportCommand, kvGetCommand, kvImportCommand, kvPutCommand},
}

// optionalKey is the one optional KEY_OR_PREFIX argument of get, delete
// and export, without the leading slash a key cannot have (Consul's "nice
// thing").
func optionalKey(e *env, args []string) (string, int) {
	switch len(args) {
	case 0:
		return "", exitOK
	case 1:
		return strings.TrimPrefix(args[0], "/"), exitOK
	}
	return "", e.fail("Too many arguments (expected 1, got %d)", len(args))
}

// casFlags are the check-and-set flags of put and delete.
func casFlags(fs *flag.FlagSet) {
	fs.Bool("cas", false, "Perform a Check-And-Set operation; requires -modify-index.")
	fs.Uint64("modify-index", 0, "The ModifyIndex the key must have, for -cas.")
}

var kvGetCommand = &command{name: "get", synopsis: "Retrieves or lists data from the KV store",
	help: "beacon kv get [options] [KEY_OR_PREFIX]", http: true,
	flags: func(fs *flag.FlagSet) {
		fs.Bool("base64", false, "Base64 encode the value.")
		fs.Bool("detailed", false, "Show the key's metadata (ModifyIndex, flags, session...) besides its value.")
		fs.Bool("keys", false, "List the keys that start with the prefix, not their values; see -separator.")
		fs.Bool("recurse", false, "Recursively look at all keys prefixed with the given path.")
		fs.String("separator", "/", "With -keys, list the keys only up to the first separator after the prefix.")
		serverFlags(fs, true)
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		key, code := optionalKey(e, args)
		if code != exitOK {
			return code
		}
		b64, detailed := flagOf[bool](fs, "base64"), flagOf[bool](fs, "detailed")
		keys, recurse := flagOf[bool](fs, "keys"), flagOf[bool](fs, "recurse")
		if key == "" && !(recurse || keys) {
			return e.fail("Error! Missing KEY argument")
		}
		kv, q := e.client.KV(), &api.QueryOptions{AllowStale: flagOf[bool](fs, "stale")}
		queryFailed := func(err error) int {
			return e.fail("Error querying Consul agent: %s", decoded("/v1/kv/"+key, err))
		}
		var out strings.Builder
		switch {
		case recurse:
			pairs, _, err := kv.List(key, q)
			if err != nil {
				return queryFailed(err)
			}
			for i, pair := range pairs {
				switch {
				case detailed:
					writeKVPairDetailed(&out, pair, b64, keys)
					out.WriteString("\n")
					if i < len(pairs)-1 {
						out.WriteString("\n")
					}
				case keys:
					fmt.Fprintf(&out, "%s\n", pair.Key)
				default:
					fmt.Fprintf(&out, "%s:%s\n", pair.Key, encodeValue(pair.Value, b64))
				}
			}
		case keys:
			list, _, err := kv.Keys(key, flagString(fs, "separator"), q)
			if err != nil {
				return queryFailed(err)
			}
			for _, k := range list {
				fmt.Fprintf(&out, "%s\n", k)
			}
		default:
			pair, _, err := kv.Get(key, q)
			switch {
			case err != nil:
				return queryFailed(err)
			case pair == nil:
				return e.fail("Error! No key exists at: %s", key)
			case detailed:
				writeKVPairDetailed(&out, pair, b64, false)
				out.WriteString("\n")
			default:
				fmt.Fprintf(&out, "%s\n", encodeValue(pair.Value, b64))
			}
		}
		return writeOutput(e, out.String())
	},
}

// encodeValue is a value as get prints it: itself, or in base64.
func encodeValue(value []byte, b64 bool) string {
	if b64 {
		return base64.StdEncoding.EncodeToString(value)
	}
	return string(value)
}

// writeKVPairDetailed is Consul's prettyKVPair: the metadata in two
// columns, the value last (without a newline after it).
func writeKVPairDetailed(w io.Writer, pair *api.KVPair, b64, keysOnly bool) {
	tw := tabwriter.NewWriter(w, 0, 2, 6, ' ', 0)
	fmt.Fprintf(tw, "CreateIndex\t%d\nFlags\t%d\nKey\t%s\nLockIndex\t%d\nModifyIndex\t%d\nSession\t%s\n",
		pair.CreateIndex, pair.Flags, pair.Key, pair.LockIndex, pair.ModifyIndex, cmp.Or(pair.Session, "-"))
	if pair.Partition != "" {
		fmt.Fprintf(tw, "Partition\t%s\n", pair.Partition)
	}
	if pair.Namespace != "" {
		fmt.Fprintf(tw, "Namespace\t%s\n", pair.Namespace)
	}
	if !keysOnly {
		fmt.Fprintf(tw, "Value\t%s", encodeValue(pair.Value, b64))
	}
	tw.Flush()
}

// loadDataSource is Consul's helpers.LoadDataSource: "@path" is the
// file's contents, "-" standard input, anything else itself.
func loadDataSource(e *env, data string) (string, error) {
	switch {
	case strings.HasPrefix(data, "@"):
		b, err := os.ReadFile(data[1:])
		if err != nil {
			return "", consulErrorf("Failed to read file: %s", err)
		}
		return string(b), nil
	case data == "-":
		b, err := io.ReadAll(e.stdin)
		if err != nil {
			return "", consulErrorf("Failed to read stdin: %s", err)
		}
		return string(b), nil
	}
	return data, nil
}

var kvPutCommand = &command{name: "put", synopsis: "Sets or updates data in the KV store",
	help: "beacon kv put [options] KEY [DATA]", http: true,
	flags: func(fs *flag.FlagSet) {
		casFlags(fs)
		fs.Uint64("flags", 0, "Unsigned integer to store with the key, for clients to use as they see fit.")
		fs.Bool("base64", false, "Treat the data as base 64 encoded.")
		fs.String("session", "", "The session of -acquire and -release, which it must name.")
		fs.Bool("acquire", false, "Obtain a lock on the key (creating it if need be) for -session.")
		fs.Bool("release", false, "Forfeit -session's lock on the key.")
		serverFlags(fs, false)
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		switch {
		case len(args) == 0:
			return e.fail("Error! Missing KEY argument")
		case len(args) > 2:
			return e.fail("Error! Too many arguments (expected 1 or 2, got %d)", len(args))
		}
		key, data, err := args[0], "", error(nil)
		if len(args) == 2 {
			if data, err = loadDataSource(e, args[1]); err != nil {
				return e.fail("Error! %s", err)
			}
		}
		value := []byte(data)
		if flagOf[bool](fs, "base64") {
			if value, err = base64.StdEncoding.DecodeString(data); err != nil {
				return e.fail("Error! Cannot base 64 decode data: %s", err)
			}
		}
		cas, acquire, release := flagOf[bool](fs, "cas"), flagOf[bool](fs, "acquire"), flagOf[bool](fs, "release")
		session, modifyIndex := flagString(fs, "session"), flagOf[uint64](fs, "modify-index")
		if (release || acquire) && session == "" {
			return e.fail("Error! Missing -session (required with -acquire and -release)")
		}
		kv := e.client.KV()
		pair := &api.KVPair{Key: key, Flags: flagOf[uint64](fs, "flags"), Value: value, Session: session,
			ModifyIndex: modifyIndex}
		switch {
		case cas:
			ok, _, err := kv.CAS(pair, nil)
			switch {
			case err != nil:
				return e.fail("Error! Did not write to %s: %s", key, err)
			case !ok && modifyIndex == 0:
				return e.fail("Error! Did not write to %s: CAS performed with index=0 and key already exists.", key)
			case !ok:
				return e.fail("Error! Did not write to %s: CAS failed", key)
			}
			e.info("Success! Data written to: %s", key)
		case acquire || release:
			lock, verb, done := kv.Acquire, "acquire", "acquired"
			if !acquire {
				lock, verb, done = kv.Release, "release", "released"
			}
			ok, _, err := lock(pair, nil)
			switch {
			case err != nil:
				return e.fail("Error! Failed writing data: %s", err)
			case !ok:
				return e.fail("Error! Did not %s lock", verb)
			}
			e.info("Success! Lock %s on: %s", done, key)
		default:
			if _, err := kv.Put(pair, nil); err != nil {
				return e.fail("Error! Failed writing data: %s", err)
			}
			e.info("Success! Data written to: %s", key)
		}
		return exitOK
	},
}

var kvDeleteCommand = &command{name: "delete", synopsis: "Removes data from the KV store",
	help: "beacon kv delete [options] KEY_OR_PREFIX", http: true,
	flags: func(fs *flag.FlagSet) {
		casFlags(fs)
		fs.Bool("recurse", false, "Recursively delete all keys with the path.")
		serverFlags(fs, false)
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		key, code := optionalKey(e, args)
		if code != exitOK {
			return code
		}
		cas, recurse, modifyIndex := flagOf[bool](fs, "cas"), flagOf[bool](fs, "recurse"), flagOf[uint64](fs, "modify-index")
		switch {
		case key == "" && !recurse:
			return e.fail("Error! Missing KEY argument")
		case cas && modifyIndex == 0:
			return e.fail("Cannot delete a key that does not exist. Provide a -modify-index greater than than 0.")
		case modifyIndex != 0 && !cas:
			return e.fail("Cannot specify -modify-index without -cas!")
		case recurse && cas:
			return e.fail("Cannot specify both -cas and -recurse!")
		}
		kv := e.client.KV()
		switch {
		case recurse:
			if _, err := kv.DeleteTree(key, nil); err != nil {
				return e.fail("Error! Did not delete prefix %s: %s", key, err)
			}
			e.info("Success! Deleted keys with prefix: %s", key)
			return exitOK
		case cas:
			ok, _, err := kv.DeleteCAS(&api.KVPair{Key: key, ModifyIndex: modifyIndex}, nil)
			if err != nil {
				return e.fail("Error! Did not delete key %s: %s", key, err)
			}
			if !ok {
				return e.fail("Error! Did not delete key %s: CAS failed", key)
			}
		default:
			if _, err := kv.Delete(key, nil); err != nil {
				return e.fail("Error deleting key %s: %s", key, err)
			}
		}
		e.info("Success! Deleted key: %s", key)
		return exitOK
	},
}

// kvEntry is one key of Consul's export format (command/kv/impexp).
type kvEntry struct {
	Key       string `json:"key"`
	Flags     uint64 `json:"flags"`
	Value     string `json:"value"`
	Namespace string `json:"namespace,omitempty"`
	Partition string `json:"partition,omitempty"`
}

var kvExportCommand = &command{name: "export", synopsis: "Exports a tree from the KV store as JSON",
	help: "beacon kv export [options] [KEY_OR_PREFIX]", http: true,
	flags: func(fs *flag.FlagSet) { serverFlags(fs, true) },
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		prefix, code := optionalKey(e, args)
		if code != exitOK {
			return code
		}
		pairs, _, err := e.client.KV().List(prefix, &api.QueryOptions{AllowStale: flagOf[bool](fs, "stale")})
		if err != nil {
			return e.fail("Error querying Consul agent: %s", decoded("/v1/kv/"+prefix, err))
		}
		exported := make([]*kvEntry, len(pairs))
		for i, p := range pairs {
			exported[i] = &kvEntry{Key: p.Key, Flags: p.Flags, Value: base64.StdEncoding.EncodeToString(p.Value),
				Namespace: p.Namespace, Partition: p.Partition}
		}
		b, err := json.MarshalIndent(exported, "", "\t")
		if err != nil {
			return e.fail("Error exporting KV data: %s", err)
		}
		return writeOutput(e, string(b)+"\n")
	},
}

var kvImportCommand = &command{name: "import", synopsis: "Imports a tree stored as JSON to the KV store",
	help: "beacon kv import [options] [DATA]", http: true,
	flags: func(fs *flag.FlagSet) {
		fs.String("prefix", "", "Key prefix for imported data")
		serverFlags(fs, false)
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		switch {
		case len(args) == 0:
			return e.fail("Error! Missing DATA argument")
		case len(args) > 1:
			return e.fail("Error! Too many arguments (expected 1, got %d)", len(args))
		case args[0] == "":
			return e.fail("Error! Empty DATA argument")
		}
		data, err := loadDataSource(e, args[0])
		if err != nil {
			return e.fail("Error! %s", err)
		}
		var entries []*kvEntry
		if err := json.Unmarshal([]byte(data), &entries); err != nil {
			return e.fail("Cannot unmarshal data: %s", err)
		}
		prefix := flagString(fs, "prefix")
		for _, entry := range entries {
			if entry == nil {
				continue
			}
			value, err := base64.StdEncoding.DecodeString(entry.Value)
			if err != nil {
				return e.fail("Error base 64 decoding value for key %s: %s", entry.Key, err)
			}
			key := path.Join(prefix, entry.Key)
			if strings.HasSuffix(entry.Key, "/") {
				key += "/" // a "directory" keeps its slash
			}
			if _, err := e.client.KV().Put(&api.KVPair{Key: key, Flags: entry.Flags, Value: value}, nil); err != nil {
				return e.fail("Error! Failed writing data for key %s: %s", key, err)
			}
			e.info("Imported: %s", key)
		}
		return exitOK
	},
}
