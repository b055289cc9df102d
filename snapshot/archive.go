package snapshot

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/beacon-dns/beacon/state"
)

// An archive is a gzip'd tar holding, in this order,
//
//	meta.json    the Raft snapshot's Meta (ID, index, term, configuration, size, version)
//	state.bin    the state's snapshot, exactly as the FSM persists it
//	SHA256SUMS   "<hex sha256>  <name>" for meta.json and state.bin, as sha256sum writes it
//
// which is Consul's layout. The state inside is beacon's; Read and Inspect
// also take a Consul snapshot, whose state.bin is Consul's (consul.go), and
// turn it into beacon's. `tar xzf` and `sha256sum -c SHA256SUMS` check an
// archive by hand; every read here verifies the checksums, that the state
// decodes, and that the metadata agrees with it, before anything is
// restored.
const (
	archiveMeta  = "meta.json"
	archiveState = "state.bin"
	archiveSums  = "SHA256SUMS"
)

// Limits on what an archive may hold once decompressed. The state is also
// decoded into memory in full, so anything near the limit could not be
// restored anyway; the limit stops a small, highly compressed upload from
// filling the disk.
const (
	// MaxStateBytes bounds state.bin, decompressed.
	MaxStateBytes       = 4 << 30
	maxArchiveMetaBytes = 1 << 20
	maxArchiveSumsBytes = 64 << 10
	// maxArchiveTrailer is how much may follow the tar's end inside the
	// gzip stream (tar writers pad to a record size).
	maxArchiveTrailer = 64 << 10
)

// ErrInvalid marks an archive that is corrupt, truncated, or not one this
// beacon reads. Nothing was restored: it is the caller's bad input.
var ErrInvalid = errors.New("invalid snapshot archive")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Meta is the Raft snapshot's metadata, stored as meta.json with the field
// names of raft.SnapshotMeta, as Consul's archives hold it. This package
// does not import raft (the CLI reads archives); raftstore converts.
type Meta struct {
	// Version is the Raft snapshot format version.
	Version            int
	ID                 string
	Index              uint64
	Term               uint64
	Peers              []byte
	Configuration      Configuration
	ConfigurationIndex uint64
	// Size is the size of state.bin in bytes.
	Size int64
}

// Configuration is the Raft configuration the snapshot was taken in.
type Configuration struct {
	Servers []Server
}

// Server is one server of a Configuration; Suffrage is raft's (0 voter,
// 1 nonvoter, 2 staging).
type Server struct {
	Suffrage int
	ID       string
	Address  string
}

// The Raft snapshot format versions this beacon reads: those of the raft
// library it is built with (raftstore's tests hold the two to each other).
const (
	MinVersion = 0
	MaxVersion = 1
)

// Write writes meta and the meta.Size bytes read from state as an archive.
func Write(w io.Writer, meta *Meta, state io.Reader) error {
	metaJSON, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding snapshot metadata: %w", err)
	}
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	now := time.Now()
	header := func(name string, size int64) error {
		return tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: now, Typeflag: tar.TypeReg})
	}

	if err := header(archiveMeta, int64(len(metaJSON))); err != nil {
		return fmt.Errorf("writing snapshot archive: %w", err)
	}
	if _, err := tw.Write(metaJSON); err != nil {
		return fmt.Errorf("writing snapshot archive: %w", err)
	}
	metaSum := sha256.Sum256(metaJSON)

	if err := header(archiveState, meta.Size); err != nil {
		return fmt.Errorf("writing snapshot archive: %w", err)
	}
	h := sha256.New()
	n, err := io.CopyN(io.MultiWriter(tw, h), state, meta.Size)
	if err == io.EOF {
		return fmt.Errorf("raft snapshot is %d bytes, shorter than the %d its metadata says", n, meta.Size)
	}
	if err != nil {
		return fmt.Errorf("writing snapshot archive: %w", err)
	}

	sums := fmt.Sprintf("%x  %s\n%x  %s\n", metaSum, archiveMeta, h.Sum(nil), archiveState)
	if err := header(archiveSums, int64(len(sums))); err != nil {
		return fmt.Errorf("writing snapshot archive: %w", err)
	}
	if _, err := io.WriteString(tw, sums); err != nil {
		return fmt.Errorf("writing snapshot archive: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing snapshot archive: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("writing snapshot archive: %w", err)
	}
	return nil
}

// Archive is an archive whose checksums matched and whose state decoded
// into a store consistent with its metadata.
type Archive struct {
	Meta Meta
	// State is state.bin, spooled to a temporary file and positioned at
	// its start; Close removes it. Of a Consul snapshot, it is the state
	// turned into beacon's, and Meta.Size its size.
	State *os.File
	// Consul describes the archive when it is a Consul snapshot; nil for
	// beacon's.
	Consul *ConsulReport
}

// Close releases the archive's temporary file.
func (a *Archive) Close() {
	if a.State != nil {
		a.State.Close()
		os.Remove(a.State.Name())
	}
}

// trackedReader remembers the first error of its source other than EOF: a
// failed read of the upload is not a corrupt archive.
type trackedReader struct {
	r   io.Reader
	err error
}

func (t *trackedReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF && t.err == nil {
		t.err = err
	}
	return n, err
}

// trackedWriter remembers its destination's first error: a full disk is not
// a corrupt archive either.
type trackedWriter struct {
	w   io.Writer
	err error
}

func (t *trackedWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if err != nil && t.err == nil {
		t.err = err
	}
	return n, err
}

// Read reads and verifies an archive: checksums, metadata, and that the
// state decodes into a store consistent with the metadata. A bad archive is
// an ErrInvalid. On success the caller owns the result and must Close it.
func Read(r io.Reader) (*Archive, error) {
	a, _, err := read(r)
	return a, err
}

// read is Read that also returns the decoded state.
func read(r io.Reader) (_ *Archive, _ *state.Store, err error) {
	src := &trackedReader{r: r}
	tmp, err := os.CreateTemp("", "beacon-snapshot-*.bin")
	if err != nil {
		return nil, nil, fmt.Errorf("creating a temporary file for the snapshot: %w", err)
	}
	a := &Archive{State: tmp}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	dst := &trackedWriter{w: tmp}
	// classify tells a fault of the archive from a fault of the reader or
	// the disk.
	classify := func(err error) error {
		switch {
		case src.err != nil:
			return fmt.Errorf("reading snapshot archive: %w", src.err)
		case dst.err != nil:
			return fmt.Errorf("spooling snapshot state: %w", dst.err)
		case errors.Is(err, ErrInvalid):
			return err
		}
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}

	gz, err := gzip.NewReader(src)
	if err != nil {
		return nil, nil, classify(fmt.Errorf("not a gzip stream: %v", err))
	}
	gz.Multistream(false)
	tr := tar.NewReader(gz)
	var metaJSON, sumsText []byte
	var stateSum []byte
	var stateSize int64
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, classify(fmt.Errorf("reading tar: %v", err))
		}
		if seen[hdr.Name] {
			return nil, nil, classify(invalidf("%s appears twice", hdr.Name))
		}
		seen[hdr.Name] = true
		if hdr.Typeflag != tar.TypeReg {
			return nil, nil, classify(invalidf("%s is not a regular file", hdr.Name))
		}
		switch hdr.Name {
		case archiveMeta:
			metaJSON, err = readSmall(tr, hdr, maxArchiveMetaBytes)
		case archiveSums:
			sumsText, err = readSmall(tr, hdr, maxArchiveSumsBytes)
		case archiveState:
			if hdr.Size > MaxStateBytes {
				return nil, nil, classify(invalidf("%s is %d bytes, over the limit of %d", archiveState, hdr.Size, int64(MaxStateBytes)))
			}
			h := sha256.New()
			stateSize, err = io.Copy(io.MultiWriter(dst, h), tr)
			stateSum = h.Sum(nil)
		default:
			return nil, nil, classify(invalidf("unexpected file %q", hdr.Name))
		}
		if err != nil {
			return nil, nil, classify(fmt.Errorf("reading %s: %v", hdr.Name, err))
		}
	}
	// Read the rest of the gzip stream: its CRC and length check the
	// compressed data end to end.
	n, err := io.Copy(io.Discard, io.LimitReader(gz, maxArchiveTrailer+1))
	if err != nil {
		return nil, nil, classify(fmt.Errorf("reading the end of the archive: %v", err))
	}
	if n > maxArchiveTrailer {
		return nil, nil, classify(invalidf("unexpected data after the archive's end"))
	}
	for _, name := range []string{archiveMeta, archiveState, archiveSums} {
		if !seen[name] {
			return nil, nil, classify(invalidf("%s is missing", name))
		}
	}
	sums, err := parseSums(sumsText)
	if err != nil {
		return nil, nil, classify(err)
	}
	metaSum := sha256.Sum256(metaJSON)
	if err := checkSum(sums, archiveMeta, metaSum[:]); err != nil {
		return nil, nil, classify(err)
	}
	if err := checkSum(sums, archiveState, stateSum); err != nil {
		return nil, nil, classify(err)
	}
	if len(sums) != 2 {
		return nil, nil, classify(invalidf("%s lists files the archive does not hold", archiveSums))
	}

	if err := json.Unmarshal(metaJSON, &a.Meta); err != nil {
		return nil, nil, invalidf("decoding %s: %v", archiveMeta, err)
	}
	if err := validateMeta(&a.Meta, stateSize); err != nil {
		return nil, nil, err
	}
	if err := tmp.Sync(); err != nil {
		return nil, nil, fmt.Errorf("spooling snapshot state: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, nil, fmt.Errorf("spooling snapshot state: %w", err)
	}
	var first [1]byte
	if n, _ := tmp.ReadAt(first[:], 0); n == 1 && isConsulState(first[0]) {
		st, err := readConsul(a)
		if err != nil {
			return nil, nil, err
		}
		return a, st, nil
	}
	// The FSM's own reader: what decodes here restores there. Raft
	// panics if a restore fails in the FSM, so this check is what keeps a
	// bad archive from taking the leader down.
	st, err := state.ReadSnapshot(tmp)
	if err != nil {
		return nil, nil, invalidf("%s: %v", archiveState, err)
	}
	// Writes after a restore take indexes above the snapshot's; a state
	// claiming later writes would make those indexes go backwards.
	if high := st.LastIndex(); high > a.Meta.Index {
		return nil, nil, invalidf("the state holds writes up to index %d, after the snapshot's index %d", high, a.Meta.Index)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, nil, fmt.Errorf("spooling snapshot state: %w", err)
	}
	return a, st, nil
}

// maxSnapshotIndex is far above any real log and far below the point where
// raft's index arithmetic (restore uses index+1) would wrap.
const maxSnapshotIndex = 1 << 62

// validateMeta checks what raft would trust of the metadata: the version,
// the index (a restore continues the log after it) and the size.
func validateMeta(m *Meta, stateSize int64) error {
	if m.Version < MinVersion || m.Version > MaxVersion {
		return invalidf("snapshot version %d is not one this beacon reads (%d to %d)", m.Version, MinVersion, MaxVersion)
	}
	if m.Index == 0 || m.Index > maxSnapshotIndex {
		return invalidf("snapshot index %d is out of range", m.Index)
	}
	if m.Size != stateSize {
		return invalidf("%s is %d bytes, but %s says %d", archiveState, stateSize, archiveMeta, m.Size)
	}
	return nil
}

func readSmall(r io.Reader, hdr *tar.Header, limit int64) ([]byte, error) {
	if hdr.Size > limit {
		return nil, invalidf("%s is %d bytes, over the limit of %d", hdr.Name, hdr.Size, limit)
	}
	return io.ReadAll(r)
}

// parseSums reads sha256sum output: one "<hex>  <name>" per line (a '*'
// before the name marks binary mode, as sha256sum -b writes it).
func parseSums(text []byte) (map[string][]byte, error) {
	sums := map[string][]byte{}
	for i, line := range strings.Split(strings.TrimRight(string(text), "\n"), "\n") {
		sum, name, ok := strings.Cut(line, " ")
		if !ok {
			return nil, invalidf("%s line %d is not \"<sha256>  <name>\"", archiveSums, i+1)
		}
		name = strings.TrimPrefix(strings.TrimPrefix(name, " "), "*")
		b, err := hex.DecodeString(sum)
		if err != nil || len(b) != sha256.Size {
			return nil, invalidf("%s line %d has a malformed checksum", archiveSums, i+1)
		}
		if _, dup := sums[name]; dup {
			return nil, invalidf("%s lists %s twice", archiveSums, name)
		}
		sums[name] = b
	}
	return sums, nil
}

func checkSum(sums map[string][]byte, name string, got []byte) error {
	want, ok := sums[name]
	if !ok {
		return invalidf("%s has no checksum for %s", archiveSums, name)
	}
	if !bytes.Equal(want, got) {
		return invalidf("checksum mismatch for %s: the archive is corrupt", name)
	}
	return nil
}

// Info describes an archive, for `beacon snapshot inspect`.
type Info struct {
	ID      string
	Index   uint64
	Term    uint64
	Version int
	// Size is the size of the state in bytes, uncompressed (of a Consul
	// snapshot, of Consul's state).
	Size int64
	// Tables counts the rows of each table of the state, in snapshot order
	// (of a Consul snapshot, what a restore makes of it).
	Tables []state.TableRows
	// Consul describes a Consul snapshot: its records, and what a restore
	// skips. Nil for beacon's archives.
	Consul *ConsulReport
}

// Inspect reads and verifies an archive, as a restore does, and describes
// it.
func Inspect(r io.Reader) (Info, error) {
	a, st, err := read(r)
	if err != nil {
		return Info{}, err
	}
	defer a.Close()
	info := Info{ID: a.Meta.ID, Index: a.Meta.Index, Term: a.Meta.Term,
		Version: a.Meta.Version, Size: a.Meta.Size, Tables: st.TableRows(), Consul: a.Consul}
	if a.Consul != nil {
		info.Size = a.Consul.Size
	}
	return info, nil
}
