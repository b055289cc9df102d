package state

import (
	"bytes"
	"errors"
	"testing"

	"github.com/hashicorp/go-memdb"
)

// Tests that need the store's internals; the rest are in package state_test.

// The FSM is the only writer, and a service write for a node that is not
// there must fail with ErrMissingNode and leave the store alone. The
// register path always creates the node first, so exercise the service and
// check writers directly, as a command from a newer leader might.
func TestEnsureServiceMissingNode(t *testing.T) {
	s := NewStore()
	if err := s.EnsureRegistration(1, &RegisterRequest{Node: "n1", Address: "10.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	before := snapshotBytes(t, s)

	for name, write := range map[string]func(tx *memdb.Txn) error{
		"service": func(tx *memdb.Txn) error {
			return ensureServiceTxn(tx, 2, &Service{Node: "ghost", ID: "s", Service: "s"})
		},
		"check": func(tx *memdb.Txn) error {
			return ensureCheckTxn(tx, 2, &HealthCheck{Node: "ghost", CheckID: "c", Name: "c"}, nil)
		},
	} {
		t.Run(name, func(t *testing.T) {
			tx := s.db.Load().Txn(true)
			err := write(tx)
			tx.Abort()
			if !errors.Is(err, ErrMissingNode) {
				t.Fatalf("error = %v, want ErrMissingNode", err)
			}
			if after := snapshotBytes(t, s); !bytes.Equal(before, after) {
				t.Errorf("store changed: %s", after)
			}
		})
	}
}

// snapshotBytes is the store's whole contents, to compare before and after.
func snapshotBytes(t *testing.T, s *Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := s.Snapshot().Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestIsUUID(t *testing.T) {
	for s, want := range map[string]bool{
		"8f246b77-f3e1-ff88-5b48-8ec93abf3e05": true,
		"8F246B77-F3E1-FF88-5B48-8EC93ABF3E05": true,
		"8f246b77f3e1ff885b488ec93abf3e05":     false, // no hyphens
		"8f246b77-f3e1-ff88-5b48-8ec93abf3e0":  false, // short
		"8f246b77-f3e1-ff88-5b48-8ec93abf3e0g": false, // not hex
		"8f246b77-f3e1-ff88-5b48_8ec93abf3e05": false, // a hyphen misplaced
		"geo-db":                               false,
	} {
		if got := isUUID(s); got != want {
			t.Errorf("isUUID(%q) = %v, want %v", s, got, want)
		}
	}
}
