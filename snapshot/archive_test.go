package snapshot

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/beacon-dns/beacon/state"
	"github.com/beacon-dns/beacon/state/statetest"
)

// archiveOf writes an archive of st's state, as a save at st's last index
// would.
func archiveOf(t *testing.T, st *state.Store) ([]byte, *Meta, []byte) {
	t.Helper()
	var stateBin bytes.Buffer
	if err := st.Snapshot().Write(&stateBin); err != nil {
		t.Fatal(err)
	}
	meta := &Meta{Version: MaxVersion, ID: "2-7-1700000000000", Index: st.LastIndex(), Term: 2,
		Configuration:      Configuration{Servers: []Server{{ID: "s1", Address: "127.0.0.1:8300"}}},
		ConfigurationIndex: 1, Size: int64(stateBin.Len())}
	var archive bytes.Buffer
	if err := Write(&archive, meta, bytes.NewReader(stateBin.Bytes())); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return archive.Bytes(), meta, stateBin.Bytes()
}

func TestWriteReadInspect(t *testing.T) {
	st := state.NewStore()
	statetest.MustRegister(t, st, 3, statetest.SvcReq("n1", "10.0.0.1", "web-1", "web", 80, nil,
		&state.HealthCheck{CheckID: "web", Name: "web", ServiceID: "web-1", Status: state.HealthPassing}))
	statetest.MustRegister(t, st, 7, statetest.NodeReq("n2", "10.0.0.2"))
	archive, meta, stateBin := archiveOf(t, st)

	a, err := Read(bytes.NewReader(archive))
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	defer a.Close()
	if !reflect.DeepEqual(&a.Meta, meta) {
		t.Errorf("Meta = %+v, want %+v", a.Meta, *meta)
	}
	got, err := io.ReadAll(a.State)
	if err != nil || !bytes.Equal(got, stateBin) {
		t.Errorf("State: %d bytes (%v), want the %d written", len(got), err, len(stateBin))
	}

	info, err := Inspect(bytes.NewReader(archive))
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	if info.Index != 7 || info.Term != 2 || info.ID != meta.ID || info.Size != meta.Size || info.Version != MaxVersion {
		t.Errorf("Inspect = %+v", info)
	}
	if want := st.TableRows(); !reflect.DeepEqual(info.Tables, want) {
		t.Errorf("Inspect tables = %v, want %v", info.Tables, want)
	}
}

func TestWriteShortState(t *testing.T) {
	meta := &Meta{Version: 1, ID: "x", Index: 5, Term: 1, Size: 100}
	err := Write(io.Discard, meta, strings.NewReader("short"))
	if err == nil || !strings.Contains(err.Error(), "shorter") {
		t.Errorf("Write of a short state = %v", err)
	}
}

// A failure to read the upload is the reader's error, not a bad archive:
// the HTTP layer maps the two differently (a body over the limit is a 413).
func TestReadErrorIsNotAnInvalidArchive(t *testing.T) {
	st := state.NewStore()
	statetest.MustRegister(t, st, 1, statetest.NodeReq("n1", "10.0.0.1"))
	good, _, _ := archiveOf(t, st)
	boom := errors.New("connection reset")
	for _, cut := range []int{0, 10, len(good) / 2, len(good) - 1} {
		_, err := Read(io.MultiReader(bytes.NewReader(good[:cut]), iotest.ErrReader(boom)))
		if !errors.Is(err, boom) || errors.Is(err, ErrInvalid) {
			t.Errorf("cut at %d: error = %v, want the reader's error and not ErrInvalid", cut, err)
		}
	}
	// Cut without a reader error, it is a bad archive.
	if _, err := Read(bytes.NewReader(good[:len(good)/2])); !errors.Is(err, ErrInvalid) {
		t.Errorf("a truncated archive: error = %v, want ErrInvalid", err)
	}
}
