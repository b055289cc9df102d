package snapshot

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
)

// Preparing a restore upload (PUT /v1/snapshot) on the agent that takes
// it, before it goes to the leader: beacon's archives pass through as they
// come; a Consul snapshot is read, verified and turned into a beacon
// archive here, so that the leader restores it as any other, through
// Raft, and the agent can answer with what was skipped.

// sniffLimit bounds how much of an upload is held in memory to tell its
// format: gzip and tar headers, meta.json (at most maxArchiveMetaBytes)
// and the first byte of state.bin.
const sniffLimit = maxArchiveMetaBytes + 256<<10

var errSniffLimit = errors.New("past the sniff limit")

// recorder keeps what is read through it, up to a limit.
type recorder struct {
	r   io.Reader
	buf bytes.Buffer
	err error
}

func (rec *recorder) Read(p []byte) (int, error) {
	if rec.err != nil {
		return 0, rec.err
	}
	room := sniffLimit - rec.buf.Len()
	if room <= 0 {
		return 0, errSniffLimit
	}
	if len(p) > room {
		p = p[:room]
	}
	n, err := rec.r.Read(p)
	rec.buf.Write(p[:n])
	if err != nil {
		rec.err = err
	}
	return n, err
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// sniffConsul reads the start of the archive r carries and tells whether
// it is a Consul snapshot. It returns a reader of the whole archive again.
// Anything it cannot make out is not a Consul snapshot: the archive reader
// will say what is wrong with it.
func sniffConsul(r io.Reader) (bool, io.Reader) {
	rec := &recorder{r: r}
	consul := isConsulArchive(rec)
	rest := r
	if rec.err != nil && rec.err != io.EOF {
		rest = errReader{rec.err}
	}
	return consul, io.MultiReader(bytes.NewReader(rec.buf.Bytes()), rest)
}

func isConsulArchive(r io.Reader) bool {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return false
	}
	gz.Multistream(false)
	tr := tar.NewReader(gz)
	for range 3 {
		hdr, err := tr.Next()
		if err != nil {
			return false
		}
		if hdr.Name == archiveState {
			var b [1]byte
			if _, err := io.ReadFull(tr, b[:]); err != nil {
				return false
			}
			return isConsulState(b[0])
		}
	}
	return false
}

// PrepareRestore readies an upload for a restore. A beacon archive is
// returned to be read as it comes (verified by the leader), with a nil
// report. A Consul snapshot is read and verified whole; the result is
// the beacon archive of its state, in a temporary file, and the report of
// what the restore takes and skips. A bad Consul snapshot is an
// ErrInvalid. The caller closes the result.
func PrepareRestore(r io.Reader) (io.ReadCloser, *ConsulReport, error) {
	consul, all := sniffConsul(r)
	if !consul {
		return io.NopCloser(all), nil, nil
	}
	a, err := Read(all)
	if err != nil {
		return nil, nil, err
	}
	defer a.Close()
	out, err := os.CreateTemp("", "beacon-snapshot-*.tgz")
	if err != nil {
		return nil, nil, fmt.Errorf("creating a temporary file for the snapshot: %w", err)
	}
	tmp := &tempFile{out}
	meta := a.Meta
	if err := Write(out, &meta, a.State); err != nil {
		tmp.Close()
		return nil, nil, err
	}
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		tmp.Close()
		return nil, nil, fmt.Errorf("spooling the snapshot: %w", err)
	}
	return tmp, a.Consul, nil
}

// tempFile is a temporary file Close removes.
type tempFile struct{ *os.File }

func (t *tempFile) Close() error {
	err := t.File.Close()
	os.Remove(t.File.Name())
	return err
}
