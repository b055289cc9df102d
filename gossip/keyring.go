package gossip

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/beacon-dns/beacon/internal/atomicfile"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
)

// The gossip keyring, as Consul keeps it: memberlist encrypts every message
// with the primary key (AES-GCM) and tries every installed key on what it
// receives, so a key is rotated without a partition by installing the new
// key everywhere, then using it everywhere, then removing the old one. The
// keyring is kept in Config.KeyringFile (Consul's data_dir/serf/local.keyring:
// a JSON array of base64 keys, primary first), which wins over the
// configured `encrypt` key once it exists.

// ErrNoKeyring is returned by the keyring operations of a pool that gossips
// in plaintext (no `encrypt` key and no keyring file). Its text is serf's.
var ErrNoKeyring = errors.New("gossip: keyring is empty (encryption not enabled)")

// Limits of the keyring.
const (
	// MaxKeyringKeys bounds the installed keys. Every key is tried on every
	// message that the primary does not decrypt, so a long keyring is slow
	// as well as a sign of a rotation never finished.
	MaxKeyringKeys = 16
	// maxKeyringFileSize bounds what is read of a keyring file: MaxKeyringKeys
	// keys of 44 base64 characters with JSON's punctuation need far less.
	maxKeyringFileSize = 64 << 10
)

// KeyringResponse is the outcome of a cluster-wide keyring operation, in the
// shape of Consul's (serf's) KeyResponse.
type KeyringResponse struct {
	NumNodes    int               // members asked (the alive members, this one included)
	Keys        map[string]int    // key → how many members hold it
	PrimaryKeys map[string]int    // key → how many members encrypt with it
	Messages    map[string]string // member name → the error it reported, if any
}

// decodeKey decodes a base64 key and checks it is an AES key.
func decodeKey(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty key")
	}
	if len(s) > 64 { // 32 bytes are 44 characters
		return nil, fmt.Errorf("key of %d characters is too long: a key is 16, 24 or 32 bytes, base64-encoded", len(s))
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("key is not valid base64: %v", err)
	}
	if err := memberlist.ValidateKey(key); err != nil {
		return nil, fmt.Errorf("key is %d bytes: it must be 16, 24 or 32 (AES-128, AES-192, AES-256)", len(key))
	}
	return key, nil
}

func encodeKey(key []byte) string { return base64.StdEncoding.EncodeToString(key) }

// setupKeyring builds the pool's keyring as Consul's agent does at start-up
// (agent/keyring.go, setupBaseKeyrings):
//   - a configured encrypt key must be valid, even when the keyring file
//     exists and it is not used;
//   - an existing keyring file is loaded and wins; when it does not hold the
//     encrypt key, that is logged as a warning (and nothing else);
//   - otherwise the encrypt key starts a keyring, written to the file;
//   - with neither, the pool gossips in plaintext (nil keyring).
func setupKeyring(cfg *Config, logger hclog.Logger) (*memberlist.Keyring, error) {
	var encKey []byte
	if cfg.EncryptKey != "" {
		k, err := decodeKey(cfg.EncryptKey)
		if err != nil {
			return nil, fmt.Errorf("gossip: encrypt key: %w", err)
		}
		encKey = k
	}
	if cfg.KeyringFile == "" {
		if encKey == nil {
			return nil, nil
		}
		ring, err := memberlist.NewKeyring(nil, encKey)
		if err != nil {
			return nil, fmt.Errorf("gossip: encrypt key: %w", err)
		}
		logger.Warn("no keyring file: keyring changes will not survive a restart")
		return ring, nil
	}

	keys, err := readKeyringFile(cfg.KeyringFile)
	switch {
	case err == nil:
		ring, err := memberlist.NewKeyring(keys, keys[0])
		if err != nil {
			return nil, fmt.Errorf("gossip: keyring file %s: %w", cfg.KeyringFile, err)
		}
		if encKey != nil && !slices.ContainsFunc(keys, func(k []byte) bool { return bytes.Equal(k, encKey) }) {
			logger.Warn("keyring file does not include the configured encrypt key; using the keyring file",
				"file", cfg.KeyringFile)
		}
		logger.Info("gossip encryption enabled from the keyring file", "file", cfg.KeyringFile, "keys", len(keys))
		return ring, nil
	case errors.Is(err, fs.ErrNotExist):
		if encKey == nil {
			return nil, nil
		}
		if err := writeKeyringFile(cfg.KeyringFile, [][]byte{encKey}); err != nil {
			return nil, fmt.Errorf("gossip: creating the keyring file: %w", err)
		}
		ring, err := memberlist.NewKeyring(nil, encKey)
		if err != nil {
			return nil, fmt.Errorf("gossip: encrypt key: %w", err)
		}
		logger.Info("gossip encryption enabled; keyring file created from the encrypt key", "file", cfg.KeyringFile)
		return ring, nil
	default:
		return nil, fmt.Errorf("gossip: %w", err)
	}
}

// readKeyringFile reads a keyring file. A missing file gives an error that
// matches fs.ErrNotExist; anything else that is not a non-empty JSON array
// of valid keys is an error naming the file.
func readKeyringFile(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // *fs.PathError names the file
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyringFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading keyring file %s: %w", path, err)
	}
	if len(data) > maxKeyringFileSize {
		return nil, fmt.Errorf("keyring file %s is over %d bytes", path, maxKeyringFileSize)
	}
	var encoded []string
	if err := json.Unmarshal(data, &encoded); err != nil {
		return nil, fmt.Errorf("keyring file %s is not a JSON array of base64 keys: %w", path, err)
	}
	if len(encoded) == 0 {
		return nil, fmt.Errorf("no keys present in keyring file %s", path)
	}
	if len(encoded) > MaxKeyringKeys {
		return nil, fmt.Errorf("keyring file %s holds %d keys, over the limit of %d", path, len(encoded), MaxKeyringKeys)
	}
	keys := make([][]byte, 0, len(encoded))
	for i, s := range encoded {
		k, err := decodeKey(s)
		if err != nil {
			return nil, fmt.Errorf("keyring file %s, key %d: %w", path, i+1, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// writeKeyringFile replaces the keyring file atomically and durably, mode
// 0600: the file holds the keys. The directory is created (0700) when
// missing, as Consul does.
func writeKeyringFile(path string, keys [][]byte) error {
	encoded := make([]string, len(keys))
	for i, k := range keys {
		encoded[i] = encodeKey(k)
	}
	data, err := json.MarshalIndent(encoded, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the keyring: %w", err)
	}
	data = append(data, '\n')
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating the keyring directory: %w", err)
	}
	return atomicfile.WriteFile(path, data, 0o600)
}

// Encrypted reports whether the pool encrypts its gossip (it has a keyring).
func (p *Pool) Encrypted() bool { return p.keyring != nil }

// KeyringList asks every alive member which keys it holds and which one is
// its primary (Consul's `consul keyring -list`, GET /v1/operator/keyring),
// through serf's keyring query. The error is non-nil when a member failed
// or did not answer in time (serf's query timeout); the response is filled
// in as far as members answered, and Messages says what each failing one
// reported.
func (p *Pool) KeyringList() (KeyringResponse, error) {
	return p.keyringOp("list", "", func(km *serf.KeyManager) (*serf.KeyResponse, error) { return km.ListKeys() })
}

// KeyringLocal is KeyringList of this member alone (Consul's -local-only).
func (p *Pool) KeyringLocal() (KeyringResponse, error) {
	if p.closed.Load() {
		return KeyringResponse{}, ErrShutdown
	}
	if p.keyring == nil {
		return KeyringResponse{}, ErrNoKeyring
	}
	resp := KeyringResponse{NumNodes: 1, Keys: map[string]int{}, PrimaryKeys: map[string]int{}, Messages: map[string]string{}}
	for _, k := range p.keyring.GetKeys() {
		resp.Keys[encodeKey(k)] = 1
	}
	resp.PrimaryKeys[encodeKey(p.keyring.GetPrimaryKey())] = 1
	return resp, nil
}

// KeyringInstall installs key (base64) on every alive member, which may then
// decrypt with it; it is not used to encrypt until KeyringUse. An invalid
// key, or one past MaxKeyringKeys here, is refused before anything is sent;
// installing a key a member already holds is no error there.
func (p *Pool) KeyringInstall(key string) (KeyringResponse, error) {
	return p.keyringOp("install", key, func(km *serf.KeyManager) (*serf.KeyResponse, error) { return km.InstallKey(key) })
}

// KeyringUse makes key the primary key of every alive member: the one they
// encrypt with. Each member refuses a key it does not hold, so install it
// first, everywhere.
func (p *Pool) KeyringUse(key string) (KeyringResponse, error) {
	return p.keyringOp("use", key, func(km *serf.KeyManager) (*serf.KeyResponse, error) { return km.UseKey(key) })
}

// KeyringRemove removes key from every alive member. Each refuses to remove
// its primary key; a member that does not hold the key has nothing to do.
func (p *Pool) KeyringRemove(key string) (KeyringResponse, error) {
	return p.keyringOp("remove", key, func(km *serf.KeyManager) (*serf.KeyResponse, error) { return km.RemoveKey(key) })
}

// keyringOp checks the key, runs a keyring operation on every alive member
// through serf and turns its answer into ours.
func (p *Pool) keyringOp(name, key string, op func(*serf.KeyManager) (*serf.KeyResponse, error)) (KeyringResponse, error) {
	if p.closed.Load() {
		return KeyringResponse{}, ErrShutdown
	}
	if p.keyring == nil {
		return KeyringResponse{}, ErrNoKeyring
	}
	if name != "list" {
		raw, err := decodeKey(key)
		if err != nil {
			return KeyringResponse{}, fmt.Errorf("gossip: keyring %s: %w", name, err)
		}
		held := slices.ContainsFunc(p.keyring.GetKeys(), func(k []byte) bool { return bytes.Equal(k, raw) })
		if n := len(p.keyring.GetKeys()); name == "install" && !held && n >= MaxKeyringKeys {
			return KeyringResponse{}, fmt.Errorf("gossip: keyring install: the keyring already holds %d keys, the limit; remove unused ones first", n)
		}
	}
	sr, err := op(p.serf.KeyManager())
	resp := KeyringResponse{Keys: map[string]int{}, PrimaryKeys: map[string]int{}, Messages: map[string]string{}}
	if sr != nil {
		resp.NumNodes = sr.NumNodes
		for k, v := range sr.Keys {
			resp.Keys[k] = v
		}
		for k, v := range sr.PrimaryKeys {
			resp.PrimaryKeys[k] = v
		}
		for k, v := range sr.Messages {
			resp.Messages[k] = v
		}
	}
	if err != nil {
		p.logger.Error("keyring operation failed", "operation", name, "error", err, "messages", resp.Messages)
		return resp, fmt.Errorf("gossip: keyring %s: %w%s", name, err, messagesSuffix(resp.Messages))
	}
	if name != "list" {
		p.logger.Info("keyring changed", "operation", name)
	}
	return resp, nil
}

// messagesSuffix lists what failing members reported, sorted by name.
func messagesSuffix(msgs map[string]string) string {
	if len(msgs) == 0 {
		return ""
	}
	names := slices.Sorted(maps.Keys(msgs))
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, n+": "+msgs[n])
	}
	return " (" + strings.Join(parts, "; ") + ")"
}
