package gossip

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// newKey returns a random 32-byte key, as `beacon keygen` prints one.
func newKey(t *testing.T) string {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(key)
}

// encConfig is testConfig with an encrypt key and a keyring file of its own.
func encConfig(t *testing.T, name string, role Role, key string) Config {
	cfg := testConfig(name, role)
	cfg.EncryptKey = key
	cfg.KeyringFile = filepath.Join(t.TempDir(), "serf", "local.keyring")
	return cfg
}

// fileKeys reads a keyring file as Consul writes it: a JSON array of keys.
func fileKeys(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return keys
}

func counts(kv ...any) map[string]int {
	m := map[string]int{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1].(int)
	}
	return m
}

// checkResponse compares a keyring response with what is wanted.
func checkResponse(t *testing.T, what string, got KeyringResponse, nodes int, keys, primary map[string]int) {
	t.Helper()
	if got.NumNodes != nodes || !maps.Equal(got.Keys, keys) || !maps.Equal(got.PrimaryKeys, primary) {
		t.Errorf("%s: NumNodes %d Keys %v PrimaryKeys %v; want %d %v %v (messages %v)",
			what, got.NumNodes, got.Keys, got.PrimaryKeys, nodes, keys, primary, got.Messages)
	}
}

func TestEncryptedPoolsJoinAndRefuseOthers(t *testing.T) {
	t.Parallel()
	sink := newLogSink(t)
	key := newKey(t)
	cfgs := []Config{
		encConfig(t, "s1", RoleServer, key), encConfig(t, "s2", RoleServer, key), encConfig(t, "c1", RoleClient, key),
	}
	pools, _ := cluster(t, sink, cfgs...)
	for i, cfg := range cfgs {
		if !pools[i].Encrypted() {
			t.Errorf("%s: not encrypted", cfg.NodeName)
		}
		// The keyring file was created from the key, readable only by us.
		if got := fileKeys(t, cfg.KeyringFile); !slices.Equal(got, []string{key}) {
			t.Errorf("%s: keyring file holds %v", cfg.NodeName, got)
		}
		if fi, err := os.Stat(cfg.KeyringFile); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: keyring file %v, %v", cfg.NodeName, fi.Mode(), err)
		}
		if fi, err := os.Stat(filepath.Dir(cfg.KeyringFile)); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: keyring directory %v, %v", cfg.NodeName, fi.Mode(), err)
		}
	}

	// Neither an agent without encryption nor one with another key gets
	// in, whichever side starts the join.
	plain := startPool(t, sink, testConfig("plain", RoleClient))
	other := startPool(t, sink, encConfig(t, "other", RoleClient, newKey(t)))
	for _, o := range []*Pool{plain, other} {
		name := o.LocalMember().Name
		if n, err := o.Join([]string{addrOf(pools[0])}); err == nil || n != 0 {
			t.Errorf("%s joined the encrypted pool: %d, %v", name, n, err)
		}
		if n, err := pools[1].Join([]string{addrOf(o)}); err == nil || n != 0 {
			t.Errorf("the encrypted pool joined %s: %d, %v", name, n, err)
		}
	}
	// The pool refused them for the right reasons.
	waitFor(t, 10*time.Second, "the refusals in the logs", func() bool {
		return sink.count("encryption is configured but remote state is not encrypted") > 0 &&
			sink.count("no installed keys could decrypt the message") > 0
	})
	for i, p := range pools {
		if got := names(p.Members()); got != "c1 s1 s2" {
			t.Errorf("%s sees %q", cfgs[i].NodeName, got)
		}
	}
	for _, o := range []*Pool{plain, other} {
		if got := names(o.Members()); got != o.LocalMember().Name {
			t.Errorf("an outsider sees %q", got)
		}
	}
}

func TestKeyringFile(t *testing.T) {
	t.Parallel()
	sink := newLogSink(t)
	k1, k2 := newKey(t), newKey(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "serf", "local.keyring")
	start := func(name, encrypt, file string) (*Pool, error) {
		cfg := testConfig(name, RoleClient)
		cfg.EncryptKey, cfg.KeyringFile, cfg.Logger = encrypt, file, sink.logger(name)
		p, err := NewLAN(cfg)
		if err == nil {
			t.Cleanup(func() { p.Shutdown() })
		}
		return p, err
	}
	local := func(p *Pool) KeyringResponse {
		t.Helper()
		r, err := p.KeyringLocal()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	// Created from the encrypt key.
	p, err := start("a", k1, path)
	if err != nil {
		t.Fatal(err)
	}
	checkResponse(t, "new keyring", local(p), 1, counts(k1, 1), counts(k1, 1))
	if got := fileKeys(t, path); !slices.Equal(got, []string{k1}) {
		t.Errorf("file holds %v", got)
	}
	p.Shutdown()

	// Reloaded on restart; the file wins over another encrypt key, with a
	// warning (Consul's), and is left as it was.
	const warning = "keyring file does not include the configured encrypt key"
	p, err = start("b", k2, path)
	if err != nil {
		t.Fatal(err)
	}
	checkResponse(t, "file over encrypt key", local(p), 1, counts(k1, 1), counts(k1, 1))
	if n := sink.count(warning); n != 1 {
		t.Errorf("%d warnings", n)
	}
	if got := fileKeys(t, path); !slices.Equal(got, []string{k1}) {
		t.Errorf("file holds %v", got)
	}
	p.Shutdown()
	// The file alone enables encryption; the key it holds gives no warning.
	for _, key := range []string{"", k1} {
		p, err = start("c", key, path)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Encrypted() {
			t.Errorf("encrypt %q: not encrypted with a keyring file", key)
		}
		checkResponse(t, "file only", local(p), 1, counts(k1, 1), counts(k1, 1))
		p.Shutdown()
	}
	if n := sink.count(warning); n != 1 {
		t.Errorf("%d warnings", n)
	}
	// The write left nothing else behind.
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("keyring directory holds %v", ents)
	}

	// An invalid encrypt key stops start-up, even with a keyring file (as
	// Consul's initKeyring).
	short := base64.StdEncoding.EncodeToString([]byte("0123456789"))
	for _, bad := range []string{"not base64!", short, strings.Repeat("A", 100)} {
		for _, file := range []string{path, filepath.Join(t.TempDir(), "k")} {
			if _, err := start("bad", bad, file); err == nil || !strings.Contains(err.Error(), "encrypt key") {
				t.Errorf("encrypt %q, file %s: %v", bad, file, err)
			}
		}
	}
	// So does a keyring file that is not a list of valid keys.
	many := make([]string, MaxKeyringKeys+1)
	for i := range many {
		many[i] = newKey(t)
	}
	manyJSON, _ := json.Marshal(many)
	for name, content := range map[string]string{
		"not json": "{", "object": `{"k":"v"}`, "empty": "[]", "bad key": `["abc"]`,
		"short key": `["` + short + `"]`, "too many": string(manyJSON), "empty file": "",
	} {
		file := filepath.Join(t.TempDir(), "local.keyring")
		if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := start("bad", k1, file); err == nil || !strings.Contains(err.Error(), file) {
			t.Errorf("%s: %v", name, err)
		}
	}

	// Neither key nor file: plaintext, no file, the operations say so.
	nofile := filepath.Join(t.TempDir(), "serf", "local.keyring")
	p, err = start("plain", "", nofile)
	if err != nil {
		t.Fatal(err)
	}
	if p.Encrypted() {
		t.Error("encrypted without a key")
	}
	if _, err := os.Stat(nofile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("keyring file created without a key: %v", err)
	}
	if _, err := p.KeyringList(); !errors.Is(err, ErrNoKeyring) {
		t.Errorf("list: %v", err)
	}
	if _, err := p.KeyringInstall(k1); !errors.Is(err, ErrNoKeyring) {
		t.Errorf("install: %v", err)
	}
	if _, err := p.KeyringLocal(); !errors.Is(err, ErrNoKeyring) {
		t.Errorf("local: %v", err)
	}
	// An encrypt key without a keyring file: a keyring in memory.
	p, err = start("mem", k2, "")
	if err != nil {
		t.Fatal(err)
	}
	checkResponse(t, "in memory", local(p), 1, counts(k2, 1), counts(k2, 1))
	if _, err := p.KeyringInstall(k1); err != nil {
		t.Error(err)
	}
	checkResponse(t, "install in memory", local(p), 1, counts(k1, 1, k2, 1), counts(k2, 1))
	p.Shutdown()
	if _, err := p.KeyringList(); !errors.Is(err, ErrShutdown) {
		t.Errorf("list after shutdown: %v", err)
	}
}

func TestKeyringRotation(t *testing.T) {
	t.Parallel()
	sink := newLogSink(t)
	k1, k2, k3 := newKey(t), newKey(t), newKey(t)
	cfgs := []Config{
		encConfig(t, "s1", RoleServer, k1), encConfig(t, "s2", RoleServer, k1), encConfig(t, "c1", RoleClient, k1),
	}
	pools, _ := cluster(t, sink, cfgs...)
	s1, s2, c1 := pools[0], pools[1], pools[2]
	// Keyring operations answer with the members' messages; what each
	// member holds is what a list says.
	listed := func(what string, keys, primary map[string]int) {
		t.Helper()
		r, err := c1.KeyringList()
		if err != nil {
			t.Fatalf("%s: list: %v", what, err)
		}
		checkResponse(t, what, r, 3, keys, primary)
	}
	files := func(want ...string) {
		t.Helper()
		for _, cfg := range cfgs {
			if got := fileKeys(t, cfg.KeyringFile); !slices.Equal(got, want) {
				t.Errorf("%s's keyring file: %v, want %v", cfg.NodeName, got, want)
			}
		}
	}
	refusedEverywhere := func(what string, r KeyringResponse, err error, msg string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "3/3 nodes reported failure") {
			t.Errorf("%s: %v", what, err)
		}
		if len(r.Messages) != 3 {
			t.Errorf("%s: messages %v", what, r.Messages)
		}
		for name, m := range r.Messages {
			if !strings.Contains(m, msg) {
				t.Errorf("%s: %s says %q", what, name, m)
			}
		}
	}

	r, err := c1.KeyringList()
	if err != nil || len(r.Messages) != 0 {
		t.Fatalf("list: %v %v", err, r.Messages)
	}
	checkResponse(t, "list", r, 3, counts(k1, 3), counts(k1, 3))

	if r, err = s2.KeyringInstall(k2); err != nil || r.NumNodes != 3 {
		t.Fatalf("install: %+v, %v", r, err)
	}
	listed("after install", counts(k1, 3, k2, 3), counts(k1, 3))
	files(k1, k2)
	// Installing again is no error.
	if _, err := s1.KeyringInstall(k2); err != nil {
		t.Errorf("second install: %v", err)
	}

	// Refused: using a key not installed, removing the primary key.
	r, err = s1.KeyringUse(k3)
	refusedEverywhere("use of a key not installed", r, err, "not in the keyring")
	listed("after a refused use", counts(k1, 3, k2, 3), counts(k1, 3))
	r, err = s1.KeyringRemove(k1)
	refusedEverywhere("removal of the primary key", r, err, "primary key")
	listed("after a refused removal", counts(k1, 3, k2, 3), counts(k1, 3))
	files(k1, k2)
	// Invalid keys are refused before anything is sent.
	short := base64.StdEncoding.EncodeToString([]byte("0123456789"))
	for _, bad := range []string{"", "not base64!", short} {
		for name, op := range map[string]func(string) (KeyringResponse, error){
			"install": c1.KeyringInstall, "use": c1.KeyringUse, "remove": c1.KeyringRemove,
		} {
			if r, err := op(bad); err == nil || r.NumNodes != 0 {
				t.Errorf("%s of %q: %+v, %v", name, bad, r, err)
			}
		}
	}

	// The rotation proper: use the new key, then remove the old one.
	if _, err = c1.KeyringUse(k2); err != nil {
		t.Fatalf("use: %v", err)
	}
	listed("after use", counts(k1, 3, k2, 3), counts(k2, 3))
	files(k2, k1)
	if _, err = s1.KeyringRemove(k1); err != nil {
		t.Fatalf("remove: %v", err)
	}
	listed("after remove", counts(k2, 3), counts(k2, 3))
	files(k2)

	// The pool gossips with the new key alone: a newcomer with only the
	// old key cannot join, one with only the new key can, and everyone
	// sees it.
	stale := startPool(t, sink, encConfig(t, "stale", RoleClient, k1))
	if n, err := stale.Join([]string{addrOf(s2)}); err == nil || n != 0 {
		t.Errorf("a member with the removed key joined: %d, %v", n, err)
	}
	c2 := startPool(t, sink, encConfig(t, "c2", RoleClient, k2))
	if n, err := c2.Join([]string{addrOf(s2)}); err != nil || n != 1 {
		t.Fatalf("joining with the new key: %d, %v", n, err)
	}
	all := append(pools, c2)
	waitFor(t, 10*time.Second, "four pools to see each other", func() bool {
		for _, p := range all {
			if aliveCount(p) != 4 {
				return false
			}
		}
		return true
	})
	if _, ok := member(s1, "stale"); ok {
		t.Error("the member with the removed key is listed")
	}
	waitFor(t, 10*time.Second, "the newcomer to list four keyrings", func() bool {
		r, err = c2.KeyringList()
		return err == nil && r.NumNodes == 4
	})
	checkResponse(t, "list after the rotation", r, 4, counts(k2, 4), counts(k2, 4))
}
