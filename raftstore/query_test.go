package raftstore

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/state"
	"github.com/beacon-dns/beacon/state/statetest"
)

// Prepared queries through the FSM: type 8 on disk, the store's answer
// handed back to the proposer, a refusal changing nothing.
func TestFSMApplyPreparedQuery(t *testing.T) {
	if state.PreparedQueryRequestType != 8 || state.PreparedQueryRequestType.String() != "prepared query" {
		t.Fatalf("prepared query commands are type %d (%s): the number is on disk and must stay 8",
			state.PreparedQueryRequestType, state.PreparedQueryRequestType)
	}
	s := state.NewStore()
	f := NewFSM(s, nil)
	q := &state.PreparedQuery{ID: fuzzQueryID, Name: "web", Token: "captured", Service: state.ServiceQuery{Service: "web"}}
	if resp := applyCmd(t, f, 3, state.PreparedQueryRequestType, &state.PreparedQueryRequest{Op: state.PreparedQueryCreate, Query: q}); resp != nil {
		t.Fatalf("create: %v", resp)
	}
	if _, got, _ := s.PreparedQueryGet(nil, fuzzQueryID); got == nil || got.Name != "web" || got.CreateIndex != 3 {
		t.Fatalf("after create: %+v", got)
	}

	before := statetest.Snapshot(t, s)
	dup := &state.PreparedQuery{ID: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", Name: "WEB", Service: state.ServiceQuery{Service: "db"}}
	resp := applyCmd(t, f, 4, state.PreparedQueryRequestType, &state.PreparedQueryRequest{Op: state.PreparedQueryCreate, Query: dup})
	if err, ok := resp.(error); !ok || !errors.Is(err, state.ErrInvalidRegistration) || !strings.Contains(err.Error(), "aliases") {
		t.Errorf("a duplicate name: %v, want an invalid registration", resp)
	}
	resp = applyCmd(t, f, 5, state.PreparedQueryRequestType, &state.PreparedQueryRequest{Op: state.PreparedQueryDelete,
		Query: &state.PreparedQuery{ID: dup.ID}})
	if err, ok := resp.(error); !ok || !errors.Is(err, state.ErrQueryNotFound) {
		t.Errorf("deleting a query that is not there: %v, want ErrQueryNotFound", resp)
	}
	if after := statetest.Snapshot(t, s); !bytes.Equal(after, before) {
		t.Errorf("refused commands changed the store:\n%s", after)
	}
	if f.AppliedIndex() != 5 {
		t.Errorf("applied index %d: refused commands still move it on", f.AppliedIndex())
	}

	if resp := applyCmd(t, f, 6, state.PreparedQueryRequestType, &state.PreparedQueryRequest{Op: state.PreparedQueryDelete,
		Query: &state.PreparedQuery{ID: fuzzQueryID}}); resp != nil {
		t.Fatalf("delete: %v", resp)
	}
	if _, got, _ := s.PreparedQueryGet(nil, fuzzQueryID); got != nil {
		t.Errorf("after delete: %+v", got)
	}
}

// A client agent's replica is sent prepared queries without the tokens
// they captured, by the stream's commands and by its snapshots alike.
func TestForReplicaRedactsQueryTokens(t *testing.T) {
	withToken, err := Encode(state.PreparedQueryRequestType, &state.PreparedQueryRequest{Op: state.PreparedQueryCreate,
		Query: &state.PreparedQuery{ID: fuzzQueryID, Name: "web", Token: "captured", Service: state.ServiceQuery{Service: "web"}}})
	if err != nil {
		t.Fatal(err)
	}
	sent := forReplica(withToken)
	if bytes.Contains(sent, []byte("captured")) {
		t.Fatalf("sent to a replica: %s", sent)
	}
	s := state.NewStore()
	if resp := NewFSM(s, nil).applyCommandOrFail(t, 1, sent); resp != nil {
		t.Fatalf("the replica applying it: %v", resp)
	}
	if _, q, _ := s.PreparedQueryGet(nil, fuzzQueryID); q == nil || q.Token != state.RedactedToken || q.Name != "web" {
		t.Errorf("the replica's query: %+v", q)
	}

	without, err := Encode(state.PreparedQueryRequestType, &state.PreparedQueryRequest{Op: state.PreparedQueryDelete,
		Query: &state.PreparedQuery{ID: fuzzQueryID}})
	if err != nil {
		t.Fatal(err)
	}
	if sent := forReplica(without); !bytes.Equal(sent, without) {
		t.Errorf("a command without a token was changed: %s", sent)
	}
	if sent := forReplica([]byte{byte(state.PreparedQueryRequestType), encodingV1, '{'}); sent != nil {
		t.Errorf("an unreadable query command is sent as %q, want nothing", sent)
	}
}

// applyCommandOrFail applies data at idx, failing the test when the entry
// cannot be read at all.
func (f *FSM) applyCommandOrFail(t *testing.T, idx uint64, data []byte) any {
	t.Helper()
	resp, err := f.applyCommand(idx, data)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestReplicaHoldsNoQueryTokens(t *testing.T) {
	leaderStore := state.NewStore()
	addr := freeAddr(t)
	leader, _ := startServer(t, t.TempDir(), addr, leaderStore)
	// One query before the replica starts (it comes in its snapshot), one
	// after (it comes as a command).
	mustApply(t, leader, state.PreparedQueryRequestType, &state.PreparedQueryRequest{Op: state.PreparedQueryCreate,
		Query: &state.PreparedQuery{ID: fuzzQueryID, Name: "before", Token: "secret-1", Service: state.ServiceQuery{Service: "web"}}})
	servers := &serverList{}
	servers.set(addr)
	replica := startReplica(t, replicaConfig{servers: servers.get, logger: testLogger(t)})
	waitFor(t, 10*time.Second, "the replica to sync", replica.Synced)
	idx := mustApply(t, leader, state.PreparedQueryRequestType, &state.PreparedQueryRequest{Op: state.PreparedQueryCreate,
		Query: &state.PreparedQuery{ID: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", Name: "after", Token: "secret-2",
			Service: state.ServiceQuery{Service: "web"}}})
	if err := replica.WaitApplied(idx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	_, queries, err := replica.Store().PreparedQueries(nil)
	if err != nil || len(queries) != 2 {
		t.Fatalf("the replica's queries: %v, %v", queries, err)
	}
	for _, q := range queries {
		if q.Token != state.RedactedToken {
			t.Errorf("query %q on the replica has token %q, want it redacted", q.Name, q.Token)
		}
	}
	if _, q, _ := leaderStore.PreparedQueryGet(nil, fuzzQueryID); q == nil || q.Token != "secret-1" {
		t.Errorf("the server's query: %+v", q)
	}
}
