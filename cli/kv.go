package cli

import (
	"bytes"
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

var kvCommand = &command{
	name:     "kv",
	synopsis: "Interact with the key-value store",
	subs:     []*command{kvGetCommand, kvPutCommand, kvDeleteCommand, kvExportCommand, kvImportCommand},
}

// trimKeySlash is Consul's "nice thing": keys cannot start with a slash, so
// one the user typed is dropped.
func trimKeySlash(key string) string {
	if len(key) > 0 && key[0] == '/' {
		return key[1:]
	}
	return key
}

// optionalKey is the one optional KEY_OR_PREFIX argument of get, delete
// and export.
func optionalKey(ui consulUI, args []string) (string, int) {
	switch len(args) {
	case 0:
		return "", exitOK
	case 1:
		return trimKeySlash(args[0]), exitOK
	}
	return "", ui.error("Too many arguments (expected 1, got %d)", len(args))
}

var kvGetCommand = &command{
	name:     "get",
	synopsis: "Retrieves or lists data from the KV store",
	help:     "beacon kv get [options] [KEY_OR_PREFIX]",
	http:     true,
	flags: func(fs *flag.FlagSet) {
		fs.Bool("base64", false, "Base64 encode the value. The default value is false.")
		fs.Bool("detailed", false, "Provide additional metadata about the key in addition to the value such as "+
			"the ModifyIndex and any flags that may have been set on the key. The default value is false.")
		fs.Bool("keys", false, "List keys which start with the given prefix, but not their values. This is "+
			"especially useful if you only need the key names themselves. This option is commonly combined with "+
			"the -separator option. The default value is false.")
		fs.Bool("recurse", false, "Recursively look at all keys prefixed with the given path. The default value is false.")
		fs.String("separator", "/", "String to use as a separator between keys. The default value is \"/\", but "+
			"this option is only taken into account when paired with the -keys flag.")
		serverFlags(fs, true)
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		ui := uiOf(e)
		key, code := optionalKey(ui, args)
		if code != exitOK {
			return code
		}
		b64, detailed := flagOf[bool](fs, "base64"), flagOf[bool](fs, "detailed")
		keys, recurse := flagOf[bool](fs, "keys"), flagOf[bool](fs, "recurse")
		if key == "" && !(recurse || keys) {
			return ui.error("Error! Missing KEY argument")
		}
		c := e.client
		kv, q := c.KV(), &api.QueryOptions{AllowStale: flagOf[bool](fs, "stale")}
		queryFailed := func(err error) int { return ui.error("Error querying Consul agent: %s", decoded("/v1/kv/"+key, err)) }

		var out bytes.Buffer
		switch {
		case keys && recurse:
			pairs, _, err := kv.List(key, q)
			if err != nil {
				return queryFailed(err)
			}
			for i, pair := range pairs {
				if !detailed {
					fmt.Fprintf(&out, "%s\n", pair.Key)
					continue
				}
				writeKVPairDetailed(&out, pair, false, true)
				out.WriteString("\n")
				if i < len(pairs)-1 {
					out.WriteString("\n")
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
		case recurse:
			pairs, _, err := kv.List(key, q)
			if err != nil {
				return queryFailed(err)
			}
			for i, pair := range pairs {
				switch {
				case detailed:
					writeKVPairDetailed(&out, pair, b64, false)
					out.WriteString("\n")
					if i < len(pairs)-1 {
						out.WriteString("\n")
					}
				case b64:
					fmt.Fprintf(&out, "%s:%s\n", pair.Key, base64.StdEncoding.EncodeToString(pair.Value))
				default:
					fmt.Fprintf(&out, "%s:%s\n", pair.Key, pair.Value)
				}
			}
		default:
			pair, _, err := kv.Get(key, q)
			if err != nil {
				return queryFailed(err)
			}
			if pair == nil {
				return ui.error("Error! No key exists at: %s", key)
			}
			switch {
			case detailed:
				writeKVPairDetailed(&out, pair, b64, false)
				out.WriteString("\n")
			case b64:
				fmt.Fprintf(&out, "%s\n", base64.StdEncoding.EncodeToString(pair.Value))
			default:
				fmt.Fprintf(&out, "%s\n", pair.Value)
			}
		}
		if _, err := e.stdout.Write(out.Bytes()); err != nil {
			return fail(e, "writing output", err)
		}
		return exitOK
	},
}

// writeKVPairDetailed is Consul's prettyKVPair: the metadata in two
// columns, the value last (without a newline after it).
func writeKVPairDetailed(w io.Writer, pair *api.KVPair, b64, keysOnly bool) {
	tw := tabwriter.NewWriter(w, 0, 2, 6, ' ', 0)
	fmt.Fprintf(tw, "CreateIndex\t%d\n", pair.CreateIndex)
	fmt.Fprintf(tw, "Flags\t%d\n", pair.Flags)
	fmt.Fprintf(tw, "Key\t%s\n", pair.Key)
	fmt.Fprintf(tw, "LockIndex\t%d\n", pair.LockIndex)
	fmt.Fprintf(tw, "ModifyIndex\t%d\n", pair.ModifyIndex)
	if pair.Session == "" {
		fmt.Fprint(tw, "Session\t-\n")
	} else {
		fmt.Fprintf(tw, "Session\t%s\n", pair.Session)
	}
	if pair.Partition != "" {
		fmt.Fprintf(tw, "Partition\t%s\n", pair.Partition)
	}
	if pair.Namespace != "" {
		fmt.Fprintf(tw, "Namespace\t%s\n", pair.Namespace)
	}
	switch {
	case keysOnly:
	case b64:
		fmt.Fprintf(tw, "Value\t%s", base64.StdEncoding.EncodeToString(pair.Value))
	default:
		fmt.Fprintf(tw, "Value\t%s", pair.Value)
	}
	tw.Flush()
}

// loadDataSource is Consul's helpers.LoadDataSource: "@path" is the
// file's contents, "-" standard input, anything else itself.
func loadDataSource(e *env, data string) (string, error) {
	if data == "" {
		return "", nil
	}
	switch data[0] {
	case '@':
		b, err := os.ReadFile(data[1:])
		if err != nil {
			return "", consulErrorf("Failed to read file: %s", err)
		}
		return string(b), nil
	case '-':
		if len(data) > 1 {
			return data, nil
		}
		b, err := io.ReadAll(e.stdinReader())
		if err != nil {
			return "", consulErrorf("Failed to read stdin: %s", err)
		}
		return string(b), nil
	}
	return data, nil
}

var kvPutCommand = &command{
	name:     "put",
	synopsis: "Sets or updates data in the KV store",
	help:     "beacon kv put [options] KEY [DATA]",
	http:     true,
	flags: func(fs *flag.FlagSet) {
		fs.Bool("cas", false, "Perform a Check-And-Set operation. Specifying this value also requires the "+
			"-modify-index flag to be set. The default value is false.")
		fs.Uint64("flags", 0, "Unsigned integer value to assign to this key-value pair. This value is not read "+
			"by the agent, so clients can use this value however makes sense for their use case. The default value "+
			"is 0 (no flags).")
		fs.Bool("base64", false, "Treat the data as base 64 encoded. The default value is false.")
		fs.Uint64("modify-index", 0, "Unsigned integer representing the ModifyIndex of the key. This is used in "+
			"combination with the -cas flag.")
		fs.String("session", "", "User-defined identifer for this session as a string. This is commonly used with "+
			"the -acquire and -release operations to build robust locking, but it can be set on any key. The "+
			"default value is empty (no session).")
		fs.Bool("acquire", false, "Obtain a lock on the key. If the key does not exist, this operation will create "+
			"the key and obtain the lock. The session must already exist and be specified via the -session flag. "+
			"The default value is false.")
		fs.Bool("release", false, "Forfeit the lock on the key at the given path. This requires the -session flag "+
			"to be set. The key must be held by the session in order to be unlocked. The default value is false.")
		serverFlags(fs, false)
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		ui := uiOf(e)
		var key, data string
		switch len(args) {
		case 0:
			return ui.error("Error! Missing KEY argument")
		case 1:
			key = args[0]
		case 2:
			key = args[0]
			var err error
			if data, err = loadDataSource(e, args[1]); err != nil {
				return ui.error("Error! %s", err)
			}
		default:
			return ui.error("Error! Too many arguments (expected 1 or 2, got %d)", len(args))
		}
		value := []byte(data)
		if flagOf[bool](fs, "base64") {
			var err error
			if value, err = base64.StdEncoding.DecodeString(data); err != nil {
				return ui.error("Error! Cannot base 64 decode data: %s", err)
			}
		}
		cas, acquire, release := flagOf[bool](fs, "cas"), flagOf[bool](fs, "acquire"), flagOf[bool](fs, "release")
		session, modifyIndex := flagString(fs, "session"), flagOf[uint64](fs, "modify-index")
		if (release || acquire) && session == "" {
			return ui.error("Error! Missing -session (required with -acquire and -release)")
		}
		c := e.client
		kv := c.KV()
		pair := &api.KVPair{Key: key, Flags: flagOf[uint64](fs, "flags"), Value: value, Session: session, ModifyIndex: modifyIndex}
		switch {
		case cas:
			ok, _, err := kv.CAS(pair, nil)
			switch {
			case err != nil:
				return ui.error("Error! Did not write to %s: %s", key, err)
			case !ok && modifyIndex == 0:
				return ui.error("Error! Did not write to %s: CAS performed with index=0 and key already exists.", key)
			case !ok:
				return ui.error("Error! Did not write to %s: CAS failed", key)
			}
			ui.info("Success! Data written to: %s", key)
		case acquire || release:
			lock, verb, done := kv.Acquire, "acquire", "acquired"
			if !acquire {
				lock, verb, done = kv.Release, "release", "released"
			}
			ok, _, err := lock(pair, nil)
			switch {
			case err != nil:
				return ui.error("Error! Failed writing data: %s", err)
			case !ok:
				return ui.error("Error! Did not %s lock", verb)
			}
			ui.info("Success! Lock %s on: %s", done, key)
		default:
			if _, err := kv.Put(pair, nil); err != nil {
				return ui.error("Error! Failed writing data: %s", err)
			}
			ui.info("Success! Data written to: %s", key)
		}
		return exitOK
	},
}

var kvDeleteCommand = &command{
	name:     "delete",
	synopsis: "Removes data from the KV store",
	help:     "beacon kv delete [options] KEY_OR_PREFIX",
	http:     true,
	flags: func(fs *flag.FlagSet) {
		fs.Bool("cas", false, "Perform a Check-And-Set operation. Specifying this value also requires the "+
			"-modify-index flag to be set. The default value is false.")
		fs.Uint64("modify-index", 0, "Unsigned integer representing the ModifyIndex of the key. This is used in "+
			"combination with the -cas flag.")
		fs.Bool("recurse", false, "Recursively delete all keys with the path. The default value is false.")
		serverFlags(fs, false)
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		ui := uiOf(e)
		key, code := optionalKey(ui, args)
		if code != exitOK {
			return code
		}
		cas, recurse, modifyIndex := flagOf[bool](fs, "cas"), flagOf[bool](fs, "recurse"), flagOf[uint64](fs, "modify-index")
		switch {
		case key == "" && !recurse:
			return ui.error("Error! Missing KEY argument")
		case cas && modifyIndex == 0:
			return ui.error("Cannot delete a key that does not exist. Provide a -modify-index greater than than 0.")
		case modifyIndex != 0 && !cas:
			return ui.error("Cannot specify -modify-index without -cas!")
		case recurse && cas:
			return ui.error("Cannot specify both -cas and -recurse!")
		}
		c := e.client
		kv := c.KV()
		switch {
		case recurse:
			if _, err := kv.DeleteTree(key, nil); err != nil {
				return ui.error("Error! Did not delete prefix %s: %s", key, err)
			}
			ui.info("Success! Deleted keys with prefix: %s", key)
		case cas:
			ok, _, err := kv.DeleteCAS(&api.KVPair{Key: key, ModifyIndex: modifyIndex}, nil)
			if err != nil {
				return ui.error("Error! Did not delete key %s: %s", key, err)
			}
			if !ok {
				return ui.error("Error! Did not delete key %s: CAS failed", key)
			}
			ui.info("Success! Deleted key: %s", key)
		default:
			if _, err := kv.Delete(key, nil); err != nil {
				return ui.error("Error deleting key %s: %s", key, err)
			}
			ui.info("Success! Deleted key: %s", key)
		}
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

var kvExportCommand = &command{
	name:     "export",
	synopsis: "Exports a tree from the KV store as JSON",
	help:     "beacon kv export [options] [KEY_OR_PREFIX]",
	http:     true,
	flags:    func(fs *flag.FlagSet) { serverFlags(fs, true) },
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		ui := uiOf(e)
		prefix, code := optionalKey(ui, args)
		if code != exitOK {
			return code
		}
		c := e.client
		pairs, _, err := c.KV().List(prefix, &api.QueryOptions{AllowStale: flagOf[bool](fs, "stale")})
		if err != nil {
			return ui.error("Error querying Consul agent: %s", decoded("/v1/kv/"+prefix, err))
		}
		exported := make([]*kvEntry, len(pairs))
		for i, p := range pairs {
			exported[i] = &kvEntry{Key: p.Key, Flags: p.Flags, Value: base64.StdEncoding.EncodeToString(p.Value),
				Namespace: p.Namespace, Partition: p.Partition}
		}
		b, err := json.MarshalIndent(exported, "", "\t")
		if err != nil {
			return ui.error("Error exporting KV data: %s", err)
		}
		if _, err := fmt.Fprintf(e.stdout, "%s\n", b); err != nil {
			return fail(e, "writing output", err)
		}
		return exitOK
	},
}

var kvImportCommand = &command{
	name:     "import",
	synopsis: "Imports a tree stored as JSON to the KV store",
	help:     "beacon kv import [options] [DATA]",
	http:     true,
	flags: func(fs *flag.FlagSet) {
		fs.String("prefix", "", "Key prefix for imported data")
		serverFlags(fs, false)
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		ui := uiOf(e)
		var data string
		switch len(args) {
		case 0:
			return ui.error("Error! Missing DATA argument")
		case 1:
			if args[0] == "" {
				return ui.error("Error! Empty DATA argument")
			}
			var err error
			if data, err = loadDataSource(e, args[0]); err != nil {
				return ui.error("Error! %s", err)
			}
		default:
			return ui.error("Error! Too many arguments (expected 1, got %d)", len(args))
		}
		c := e.client
		var entries []*kvEntry
		if err := json.Unmarshal([]byte(data), &entries); err != nil {
			return ui.error("Cannot unmarshal data: %s", err)
		}
		prefix := flagString(fs, "prefix")
		for _, entry := range entries {
			if entry == nil {
				continue
			}
			value, err := base64.StdEncoding.DecodeString(entry.Value)
			if err != nil {
				return ui.error("Error base 64 decoding value for key %s: %s", entry.Key, err)
			}
			key := path.Join(prefix, entry.Key)
			if strings.HasSuffix(entry.Key, "/") {
				key += "/" // a "directory" keeps its slash
			}
			if _, err := c.KV().Put(&api.KVPair{Key: key, Flags: entry.Flags, Value: value}, nil); err != nil {
				return ui.error("Error! Failed writing data for key %s: %s", key, err)
			}
			ui.info("Imported: %s", key)
		}
		return exitOK
	},
}
