package snapshot

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"

	"github.com/beacon-dns/beacon/state"
	"github.com/beacon-dns/beacon/state/statetest"
)

// fuzzMaxBytes bounds what the fuzz target lets an input decompress to.
// Read's own limits (MaxStateBytes, 4 GiB) are far above what a fuzzer
// should spool to disk on every run; the limits themselves are the
// subject of the ordinary tests.
const fuzzMaxBytes = 8 << 20

// overFuzzBudget reports whether data would have Read write more than
// fuzzMaxBytes: its gzip stream decompresses to more, or a tar header
// (a sparse file's holes included) declares more.
func overFuzzBudget(data []byte) bool {
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return false
	}
	gz.Multistream(false)
	raw, err := io.ReadAll(io.LimitReader(gz, fuzzMaxBytes+1))
	if len(raw) > fuzzMaxBytes {
		return true
	}
	if err != nil {
		return false
	}
	tr := tar.NewReader(bytes.NewReader(raw))
	var total int64
	for {
		hdr, err := tr.Next()
		if err != nil {
			return false
		}
		total += max(hdr.Size, 0)
		if total > fuzzMaxBytes {
			return true
		}
	}
}

// fuzzArchive returns a valid archive's state.bin and meta, and the
// archive.
func fuzzArchive(f *testing.F) (stateBin []byte, meta *Meta, archive []byte) {
	st := state.NewStore()
	statetest.MustRegister(f, st, 3, statetest.SvcReq("n1", "10.0.0.1", "web-1", "web", 80, []string{"v1"},
		&state.HealthCheck{CheckID: "web", Name: "web", ServiceID: "web-1", Status: state.HealthPassing}))
	var buf bytes.Buffer
	if err := st.Snapshot().Write(&buf); err != nil {
		f.Fatal(err)
	}
	meta = &Meta{Version: MaxVersion, ID: "2-3-1700000000000", Index: 3, Term: 2,
		Configuration:      Configuration{Servers: []Server{{ID: "s1", Address: "127.0.0.1:8300"}}},
		ConfigurationIndex: 1, Size: int64(buf.Len())}
	var out bytes.Buffer
	if err := Write(&out, meta, bytes.NewReader(buf.Bytes())); err != nil {
		f.Fatal(err)
	}
	return buf.Bytes(), meta, out.Bytes()
}

// FuzzRead: any bytes are ErrInvalid (a bytes.Reader never fails, so no
// error is the reader's), or an archive whose metadata and state write
// back into an archive that reads the same; Inspect agrees with Read.
func FuzzRead(f *testing.F) {
	_, _, archive := fuzzArchive(f)
	f.Add(archive)
	f.Add(readConsulFixture(f)) // Consul's archive, whose state Read turns into beacon's
	f.Fuzz(checkRead)
}

// FuzzReadTar is FuzzRead behind the gzip layer, whose checksum stops
// nearly every mutation of a compressed archive: the input is the tar
// stream, compressed here.
func FuzzReadTar(f *testing.F) {
	_, _, archive := fuzzArchive(f)
	gz, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		f.Fatal(err)
	}
	tarStream, err := io.ReadAll(gz)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tarStream)
	f.Fuzz(func(t *testing.T, tarStream []byte) {
		checkRead(t, gzipped(t, tarStream))
	})
}

// FuzzReadMembers is FuzzRead behind the tar and checksum layers: the
// inputs are meta.json and state.bin, archived here with their checksums.
func FuzzReadMembers(f *testing.F) {
	stateBin, meta, _ := fuzzArchive(f)
	metaJSON, err := json.Marshal(meta)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(metaJSON, stateBin)
	f.Fuzz(func(t *testing.T, metaJSON, stateBin []byte) {
		var tarStream bytes.Buffer
		tw := tar.NewWriter(&tarStream)
		metaSum, stateSum := sha256.Sum256(metaJSON), sha256.Sum256(stateBin)
		for _, m := range []struct {
			name string
			body []byte
		}{
			{archiveMeta, metaJSON}, {archiveState, stateBin},
			{archiveSums, fmt.Appendf(nil, "%x  %s\n%x  %s\n", metaSum, archiveMeta, stateSum, archiveState)},
		} {
			if err := tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o600, Size: int64(len(m.body)), Typeflag: tar.TypeReg}); err != nil {
				t.Fatal(err)
			}
			if _, err := tw.Write(m.body); err != nil {
				t.Fatal(err)
			}
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		checkRead(t, gzipped(t, tarStream.Bytes()))
	})
}

// fuzzGzip is reused: a new gzip.Writer costs more than most inputs.
var fuzzGzip, _ = gzip.NewWriterLevel(io.Discard, gzip.HuffmanOnly)

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	fuzzGzip.Reset(&out)
	if _, err := fuzzGzip.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := fuzzGzip.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// checkRead reads data as an archive and holds the answer to the contract
// FuzzRead states.
func checkRead(t *testing.T, data []byte) {
	if overFuzzBudget(data) {
		t.Skip("decompresses past the fuzz target's budget")
	}
	a, err := Read(bytes.NewReader(data))
	info, ierr := Inspect(bytes.NewReader(data))
	if err != nil {
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("Read: %v, want ErrInvalid", err)
		}
		if ierr == nil || ierr.Error() != err.Error() {
			t.Fatalf("Read failed with %v, Inspect with %v", err, ierr)
		}
		return
	}
	defer a.Close()
	if ierr != nil {
		t.Fatalf("Read succeeded, Inspect failed: %v", ierr)
	}
	wantSize := a.Meta.Size
	if a.Consul != nil {
		// A Consul snapshot: Read's state is beacon's, Inspect tells of
		// Consul's.
		wantSize = a.Consul.Size
	}
	if info.ID != a.Meta.ID || info.Index != a.Meta.Index || info.Term != a.Meta.Term ||
		info.Version != a.Meta.Version || info.Size != wantSize {
		t.Errorf("Inspect = %+v, Read's metadata %+v", info, a.Meta)
	}
	stateBytes, err := io.ReadAll(a.State)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(stateBytes)) != a.Meta.Size {
		t.Fatalf("state is %d bytes, metadata says %d", len(stateBytes), a.Meta.Size)
	}
	var again bytes.Buffer
	meta := a.Meta
	if err := Write(&again, &meta, bytes.NewReader(stateBytes)); err != nil {
		t.Fatalf("writing back a verified archive: %v", err)
	}
	b, err := Read(&again)
	if err != nil {
		t.Fatalf("an archive written from a verified one does not read: %v", err)
	}
	defer b.Close()
	got, err := io.ReadAll(b.State)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b.Meta, a.Meta) || !bytes.Equal(got, stateBytes) {
		t.Fatalf("rewritten archive reads differently:\nmeta %+v\nwas  %+v", b.Meta, a.Meta)
	}
}
