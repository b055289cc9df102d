package raftstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/state"
	"github.com/beacon-dns/beacon/state/statetest"
	"github.com/hashicorp/raft"
)

// ---- command encoding ----

func applyCmd(t *testing.T, f *FSM, idx uint64, typ state.MessageType, msg any) any {
	t.Helper()
	buf, err := Encode(typ, msg)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return f.Apply(&raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: buf})
}

func TestEncodeHeader(t *testing.T) {
	buf, err := Encode(state.DeregisterRequestType, &state.DeregisterRequest{Node: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	if buf[0] != byte(state.DeregisterRequestType) || buf[1] != encodingV1 {
		t.Fatalf("header = %v, want [%d %d]", buf[:2], state.DeregisterRequestType, encodingV1)
	}
	var back state.DeregisterRequest
	if err := json.Unmarshal(buf[2:], &back); err != nil || back.Node != "n1" {
		t.Fatalf("body %q: %v %+v", buf[2:], err, back)
	}
	// The on-disk numbers never change.
	if state.RegisterRequestType != 1 || state.DeregisterRequestType != 2 {
		t.Fatal("message types were renumbered: logs written by older binaries would be misread")
	}
	if _, err := Encode(state.RegisterRequestType, func() {}); err == nil {
		t.Error("Encode of an unencodable value did not fail")
	}
	for typ, want := range map[state.MessageType]string{
		state.RegisterRequestType: "register", state.DeregisterRequestType: "deregister", 77: "message type 77",
	} {
		if got := typ.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", uint8(typ), got, want)
		}
	}
}

func TestFSMApplyRoundTrip(t *testing.T) {
	s := state.NewStore()
	f := NewFSM(s, nil)
	reg := &state.RegisterRequest{Datacenter: "dc1", Node: "n1", Address: "10.0.0.1",
		Service: &state.Service{ID: "web-1", Service: "web", Port: 80, Tags: []string{"v1"}},
		Check:   &state.HealthCheck{CheckID: "web", Name: "web", ServiceID: "web-1", Status: state.HealthPassing}}
	if resp := applyCmd(t, f, 5, state.RegisterRequestType, reg); resp != nil {
		t.Fatalf("Apply(register) = %v", resp)
	}
	svc := statetest.GetService(t, s, "n1", "web-1")
	if svc == nil || svc.Port != 80 || svc.Node != "n1" || svc.CreateIndex != 5 {
		t.Fatalf("service after Apply = %+v", svc)
	}
	if c := statetest.GetCheck(t, s, "n1", "web"); c == nil || c.Status != state.HealthPassing || c.ModifyIndex != 5 {
		t.Fatalf("check after Apply = %+v", c)
	}

	if resp := applyCmd(t, f, 6, state.DeregisterRequestType, &state.DeregisterRequest{Node: "n1", ServiceID: "web-1"}); resp != nil {
		t.Fatalf("Apply(deregister) = %v", resp)
	}
	if svc := statetest.GetService(t, s, "n1", "web-1"); svc != nil {
		t.Fatalf("service still there after deregister: %+v", svc)
	}
	if got := statetest.Indexes(t, s)[statetest.TableServices]; got != 6 {
		t.Errorf("services index = %d, want 6", got)
	}
}

func TestFSMApplyReturnsStoreError(t *testing.T) {
	s := state.NewStore()
	f := NewFSM(s, nil)
	resp := applyCmd(t, f, 1, state.RegisterRequestType, &state.RegisterRequest{Node: "n1", Address: "10.0.0.1",
		Check: &state.HealthCheck{CheckID: "c", Name: "c", ServiceID: "missing"}})
	err, ok := resp.(error)
	if !ok || err == nil {
		t.Fatalf("Apply = %#v, want the store's error", resp)
	}
	if n := statetest.GetNode(t, s, "n1"); n != nil {
		t.Errorf("a failed command left node %+v behind", n)
	}
}

func TestFSMApplyBadBodyIsAnError(t *testing.T) {
	for _, typ := range []state.MessageType{state.RegisterRequestType, state.DeregisterRequestType} {
		t.Run(typ.String(), func(t *testing.T) {
			s := state.NewStore()
			f := NewFSM(s, nil)
			for _, body := range []string{`{not json`, `{"Node": 5}`, ``} {
				data := append([]byte{byte(typ), encodingV1}, body...)
				var resp any
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Fatalf("Apply(%q) panicked: %v", body, r)
						}
					}()
					resp = f.Apply(&raft.Log{Index: 1, Data: data})
				}()
				if err, ok := resp.(error); !ok || err == nil || !strings.Contains(err.Error(), "decoding "+typ.String()) {
					t.Errorf("Apply(%q) = %#v, want a decoding error", body, resp)
				}
			}
			if got := statetest.Tables(t, s); len(got) != 0 {
				t.Errorf("store changed: %v", got)
			}
		})
	}
}

func TestFSMApplyUnreadableEntryPanics(t *testing.T) {
	body, _ := json.Marshal(&state.RegisterRequest{Node: "n1", Address: "10.0.0.1"})
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"unknown encoding version", append([]byte{byte(state.RegisterRequestType), 9}, body...), "unknown encoding version 9"},
		{"binary KV encoding on a registration", append([]byte{byte(state.RegisterRequestType), encodingBinaryKV}, body...), "binary KV encoding on another command"},
		{"unknown message type", append([]byte{200, encodingV1}, body...), "unknown message type 200"},
		{"empty entry", nil, "shorter than its header"},
		{"one byte", []byte{byte(state.RegisterRequestType)}, "shorter than its header"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := state.NewStore()
			f := NewFSM(s, nil)
			var recovered any
			func() {
				defer func() { recovered = recover() }()
				f.Apply(&raft.Log{Index: 42, Data: tc.data})
			}()
			if recovered == nil {
				t.Fatal("Apply did not panic: a replica that cannot read an entry must stop, not skip it")
			}
			msg := fmt.Sprint(recovered)
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "42") {
				t.Errorf("panic %q, want it to name entry 42 and contain %q", msg, tc.want)
			}
			if got := statetest.Tables(t, s); len(got) != 0 {
				t.Errorf("store changed: %v", got)
			}
		})
	}
}

// ---- snapshot and restore ----

// memSink is a raft.SnapshotSink over a buffer.
type memSink struct {
	bytes.Buffer
	closed, cancelled bool
	failWrites        bool
}

func (s *memSink) Write(p []byte) (int, error) {
	if s.failWrites {
		return 0, errors.New("disk full")
	}
	return s.Buffer.Write(p)
}
func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

func fillStore(t *testing.T, f *FSM) {
	t.Helper()
	r := &state.RegisterRequest{Datacenter: "dc1", ID: "8f1c2b7e-0000-4000-8000-000000000001", Node: "Node-A", Address: "10.0.0.1",
		TaggedAddresses: map[string]string{"lan": "10.0.0.1", "wan": "192.0.2.1"}, NodeMeta: map[string]string{"rack": "r1"},
		Service: &state.Service{Kind: "", ID: "web-1", Service: "web", Tags: []string{"v1", "eu"}, Address: "10.0.1.1",
			TaggedAddresses: map[string]state.ServiceAddress{"lan": {Address: "10.0.1.1", Port: 80}},
			Meta:            map[string]string{"version": "1.2"}, Port: 80, Weights: state.Weights{Passing: 3, Warning: 1},
			EnableTagOverride: true},
		Check: &state.HealthCheck{CheckID: state.SerfCheckID, Name: state.SerfCheckName, Status: state.HealthPassing, Output: "alive"},
		Checks: []*state.HealthCheck{{CheckID: "web-http", Name: "web http", Status: state.HealthWarning, Notes: "n", ServiceID: "web-1",
			Type: "http", Definition: state.CheckDefinition{HTTP: "http://10.0.1.1/health", Method: "GET",
				Header: map[string][]string{"X": {"1"}}, Interval: "10s", Timeout: "1s", DeregisterCriticalServiceAfter: "1h"}}},
	}
	if resp := applyCmd(t, f, 10, state.RegisterRequestType, r); resp != nil {
		t.Fatal(resp)
	}
	if resp := applyCmd(t, f, 11, state.RegisterRequestType, &state.RegisterRequest{Node: "node-b", Address: "10.0.0.2",
		Service: &state.Service{ID: "db", Service: "db", Port: 5432}}); resp != nil {
		t.Fatal(resp)
	}
	if resp := applyCmd(t, f, 12, state.RegisterRequestType, &state.RegisterRequest{Node: "node-b", Address: "10.0.0.2",
		Service: &state.Service{ID: "web-2", Service: "web", Port: 8080, Tags: []string{"v2"}},
		Check: &state.HealthCheck{CheckID: "web-2", Name: "w", ServiceID: "web-2", Status: state.HealthCritical, Type: "ttl",
			Definition: state.CheckDefinition{TTL: "30s"}}}); resp != nil {
		t.Fatal(resp)
	}
	// A node update after the services, so table indexes differ.
	if resp := applyCmd(t, f, 13, state.RegisterRequestType, &state.RegisterRequest{Node: "node-c", Address: "10.0.0.3"}); resp != nil {
		t.Fatal(resp)
	}
	if resp := applyCmd(t, f, 14, state.DeregisterRequestType, &state.DeregisterRequest{Node: "node-b", ServiceID: "db"}); resp != nil {
		t.Fatal(resp)
	}
	// KV and sessions: a plain key and one locked by a session.
	if resp := applyCmd(t, f, 15, state.SessionRequestType, &state.SessionRequest{Op: state.SessionCreate, Session: state.Session{
		ID: "11111111-0000-4000-8000-000000000001", Name: "s", Node: "Node-A", LockDelay: 15 * time.Second,
		Behavior: state.SessionRelease, TTL: "30s", NodeChecks: []string{state.SerfCheckID}}}); resp != nil {
		t.Fatal(resp)
	}
	for i, req := range []*state.KVSRequest{
		{Op: state.KVSet, DirEnt: state.DirEntry{Key: "cfg/a", Value: []byte{0, 1, 2}, Flags: 7}},
		{Op: state.KVLock, DirEnt: state.DirEntry{Key: "cfg/lock", Value: []byte("me"), Session: "11111111-0000-4000-8000-000000000001"}},
	} {
		if resp := applyCmd(t, f, uint64(16+i), state.KVSRequestType, req); resp.(*state.CommandResult) == nil || !resp.(*state.CommandResult).OK {
			t.Fatal(resp)
		}
	}
}

func snapshotTo(t *testing.T, f *FSM) *memSink {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatalf("Persist: %v", err)
	}
	if !sink.closed || sink.cancelled {
		t.Fatalf("Persist: sink closed=%v cancelled=%v, want closed only", sink.closed, sink.cancelled)
	}
	return sink
}

func TestSnapshotRestore(t *testing.T) {
	src := state.NewStore()
	f := NewFSM(src, nil)
	fillStore(t, f)
	want := statetest.Tables(t, src)
	wantIdx := statetest.Indexes(t, src)
	if len(want[statetest.TableServices]) != 2 || len(want[statetest.TableChecks]) != 3 || len(want[statetest.TableNodes]) != 3 {
		t.Fatalf("fixture: %v", want)
	}

	sink := snapshotTo(t, f)

	dst := state.NewStore()
	// Something to be replaced.
	statetest.MustRegister(t, dst, 99, statetest.NodeReq("stale", "10.9.9.9"))
	oldAbandon := dst.AbandonCh()
	if err := NewFSM(dst, nil).Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatalf("Restore: %v", err)
	}

	got := statetest.Tables(t, dst)
	if !reflect.DeepEqual(got, want) {
		for table := range want {
			if !reflect.DeepEqual(got[table], want[table]) {
				t.Errorf("table %s differs after restore:\n got %s\nwant %s", table, got[table], want[table])
			}
		}
	}
	if gotIdx := statetest.Indexes(t, dst); !reflect.DeepEqual(gotIdx, wantIdx) {
		t.Errorf("indexes after restore = %v, want %v", gotIdx, wantIdx)
	}
	// Service.Node is hidden from the API's JSON but must survive.
	for _, raw := range got[statetest.TableServices] {
		var svc struct{ Node, ID string }
		if err := json.Unmarshal(raw, &svc); err != nil || svc.Node == "" {
			t.Errorf("service %s lost its Node in the snapshot (%v)", raw, err)
		}
	}
	// The secondary indexes work on the restored data.
	if _, sns, _ := dst.ServiceNodes(nil, "WEB", "v2"); len(sns) != 1 || sns[0].Node.Node != "node-b" || len(sns[0].Checks) != 1 {
		t.Errorf("ServiceNodes on restored store = %+v", sns)
	}
	if got := statetest.InstanceKeys(dst.HealthyInstances(nil, "web", "", false)); !reflect.DeepEqual(got, []string{"Node-A/web-1"}) {
		t.Errorf("HealthyInstances on restored store = %v", got)
	}
	if n := statetest.GetNode(t, dst, "stale"); n != nil {
		t.Error("restore kept a node that was not in the snapshot")
	}

	select {
	case <-oldAbandon:
	default:
		t.Error("Restore did not close the old AbandonCh")
	}
	select {
	case <-dst.AbandonCh():
		t.Error("the new AbandonCh is already closed")
	default:
	}

	// The restored store keeps working as a write target.
	statetest.MustRegister(t, dst, 20, statetest.NodeReq("node-d", "10.0.0.4"))
	if got := statetest.Indexes(t, dst)[statetest.TableNodes]; got != 20 {
		t.Errorf("nodes index after a write on the restored store = %d", got)
	}
}

func TestSnapshotIsPointInTime(t *testing.T) {
	s := state.NewStore()
	f := NewFSM(s, nil)
	fillStore(t, f)
	want := statetest.Tables(t, s)
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Writes between Snapshot and Persist (raft persists off the FSM's
	// goroutine while applying goes on) are not in it.
	applyCmd(t, f, 30, state.RegisterRequestType, &state.RegisterRequest{Node: "late", Address: "10.0.0.30"})
	applyCmd(t, f, 31, state.DeregisterRequestType, &state.DeregisterRequest{Node: "Node-A"})
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	dst := state.NewStore()
	if err := NewFSM(dst, nil).Restore(io.NopCloser(&sink.Buffer)); err != nil {
		t.Fatal(err)
	}
	if got := statetest.Tables(t, dst); !reflect.DeepEqual(got, want) {
		t.Errorf("snapshot is not the state at Snapshot():\n got %v\nwant %v", got, want)
	}
}

func TestSnapshotEmptyStore(t *testing.T) {
	sink := snapshotTo(t, NewFSM(state.NewStore(), nil))
	dst := state.NewStore()
	statetest.MustRegister(t, dst, 1, statetest.NodeReq("n1", "10.0.0.1"))
	if err := NewFSM(dst, nil).Restore(io.NopCloser(&sink.Buffer)); err != nil {
		t.Fatal(err)
	}
	if got := statetest.Tables(t, dst); len(got) != 0 {
		t.Errorf("restoring an empty snapshot left %v", got)
	}
}

func TestPersistCancelsOnWriteError(t *testing.T) {
	f := NewFSM(state.NewStore(), nil)
	fillStore(t, f)
	snap, _ := f.Snapshot()
	sink := &memSink{failWrites: true}
	if err := snap.Persist(sink); err == nil {
		t.Fatal("Persist succeeded on a failing sink")
	}
	if !sink.cancelled || sink.closed {
		t.Errorf("sink cancelled=%v closed=%v, want Cancel and no Close", sink.cancelled, sink.closed)
	}
}

type trackingReader struct {
	io.Reader
	closed bool
}

func (r *trackingReader) Close() error { r.closed = true; return nil }

func TestRestoreRejectsBadSnapshots(t *testing.T) {
	good := func() string {
		f := NewFSM(state.NewStore(), nil)
		fillStore(t, f)
		return snapshotTo(t, f).String()
	}()
	truncated := good[:len(good)-20] // cut inside the last row
	tests := []struct {
		name, data, want string
	}{
		{"empty", "", "snapshot header"},
		{"garbage header", "nonsense", "snapshot header"},
		{"future version", `{"Version":2}` + "\n", "snapshot version 2"},
		{"unknown table", `{"Version":1}` + "\n" + `{"T":"acl","R":{}}` + "\n", `unknown table "acl"`},
		{"bad row", `{"Version":1}` + "\n" + `{"T":"nodes","R":{"Node":5}}` + "\n", "decoding snapshot nodes row"},
		{"bad service row", `{"Version":1}` + "\n" + `{"T":"services","R":{"Port":"x"}}` + "\n", "decoding snapshot service"},
		{"truncated", truncated, "reading snapshot"},
		{"row missing its primary key", `{"Version":1}` + "\n" + `{"T":"nodes","R":{"Address":"1.2.3.4"}}` + "\n", "restoring nodes row"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := state.NewStore()
			statetest.MustRegister(t, s, 1, statetest.NodeReq("keep", "10.0.0.1"))
			before := statetest.Tables(t, s)
			abandon := s.AbandonCh()
			rc := &trackingReader{Reader: strings.NewReader(tc.data)}
			err := NewFSM(s, nil).Restore(rc)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Restore error = %v, want one containing %q", err, tc.want)
			}
			if !rc.closed {
				t.Error("Restore did not close its reader")
			}
			if after := statetest.Tables(t, s); !reflect.DeepEqual(before, after) {
				t.Errorf("a failed restore changed the store: %v", after)
			}
			select {
			case <-abandon:
				t.Error("a failed restore closed AbandonCh")
			case <-time.After(time.Millisecond):
			}
		})
	}
}
