package state_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/state"
	"github.com/beacon-dns/beacon/state/statetest"
)

func TestAutopilotConfig(t *testing.T) {
	s := state.NewStore()
	_, cfg, err := s.AutopilotConfig(nil)
	if err != nil || cfg != state.DefaultAutopilotConfig() || !cfg.CleanupDeadServers ||
		time.Duration(cfg.LastContactThreshold) != 200*time.Millisecond || cfg.MaxTrailingLogs != 250 {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}

	set := cfg
	set.CleanupDeadServers = false
	set.MinQuorum = 3
	if ok, err := s.AutopilotApply(5, &state.AutopilotRequest{Config: set}); !ok || err != nil {
		t.Fatalf("set: %v, %v", ok, err)
	}
	idx, got, _ := s.AutopilotConfig(nil)
	if idx != 5 || got.CleanupDeadServers || got.MinQuorum != 3 || got.CreateIndex != 5 || got.ModifyIndex != 5 {
		t.Errorf("after set: %d %+v", idx, got)
	}

	// CAS: the stored ModifyIndex wins, anything else changes nothing.
	stale := got
	stale.ModifyIndex = 4
	if ok, err := s.AutopilotApply(6, &state.AutopilotRequest{Config: stale, CAS: true}); ok || err != nil {
		t.Errorf("CAS with a stale index: %v, %v", ok, err)
	}
	fresh := got
	fresh.MaxTrailingLogs = 10
	if ok, err := s.AutopilotApply(7, &state.AutopilotRequest{Config: fresh, CAS: true}); !ok || err != nil {
		t.Errorf("CAS with the current index: %v, %v", ok, err)
	}
	if _, got, _ = s.AutopilotConfig(nil); got.MaxTrailingLogs != 10 || got.CreateIndex != 5 || got.ModifyIndex != 7 {
		t.Errorf("after CAS: %+v", got)
	}

	// Refused: nothing changes.
	before := statetest.Snapshot(t, s)
	bad := got
	bad.ServerStabilizationTime = -1
	if _, err := s.AutopilotApply(8, &state.AutopilotRequest{Config: bad}); err == nil {
		t.Error("a negative duration was stored")
	}
	if string(statetest.Snapshot(t, s)) != string(before) {
		t.Error("a refused configuration changed the store")
	}
	statetest.AssertRestorable(t, s)

	// JSON durations as Consul's API writes them.
	b, _ := json.Marshal(got)
	var back state.AutopilotConfig
	if err := json.Unmarshal(b, &back); err != nil || back != got {
		t.Errorf("JSON round trip: %s -> %+v, %v", b, back, err)
	}
	if err := json.Unmarshal([]byte(`{"LastContactThreshold":"fast"}`), &back); err == nil {
		t.Error("a malformed duration was accepted")
	}
}
