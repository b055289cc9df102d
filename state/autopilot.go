package state

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"
)

// Autopilot's configuration (Consul's /v1/operator/autopilot/configuration):
// one row, replicated by Raft and kept in snapshots, so every server's
// leader applies the same settings.

const (
	tableAutopilot = "autopilot-config"
	autopilotRowID = "autopilot"
)

// AutopilotConfig is autopilot's configuration, in Consul's shape (without
// the Enterprise fields).
type AutopilotConfig struct {
	// CleanupDeadServers has the leader remove servers gossip holds failed
	// from the Raft configuration, when that leaves a quorum.
	CleanupDeadServers bool
	// LastContactThreshold: a server the leader has not heard from for
	// longer is unhealthy.
	LastContactThreshold Duration
	// MaxTrailingLogs: a server further behind the leader's last index is
	// unhealthy.
	MaxTrailingLogs uint64
	// MinQuorum: dead servers are not removed below this many voters.
	MinQuorum uint
	// ServerStabilizationTime: how long a server must be healthy before
	// it counts as stable, and failed before cleanup removes it.
	ServerStabilizationTime Duration
	CreateIndex             uint64
	ModifyIndex             uint64
}

// DefaultAutopilotConfig is Consul's default configuration.
func DefaultAutopilotConfig() AutopilotConfig {
	return AutopilotConfig{CleanupDeadServers: true, LastContactThreshold: Duration(200 * time.Millisecond),
		MaxTrailingLogs: 250, ServerStabilizationTime: Duration(10 * time.Second)}
}

// Duration is a time.Duration that JSON carries as Consul's API does, as a
// string ("200ms"); a number is taken as nanoseconds.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		v, err := time.ParseDuration(string(b[1 : len(b)-1]))
		if err != nil {
			return fmt.Errorf("duration %s: %w", b, err)
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if _, err := fmt.Sscan(string(b), &n); err != nil {
		return fmt.Errorf("duration %s: want a string such as \"10s\" or nanoseconds", b)
	}
	*d = Duration(n)
	return nil
}

// AutopilotRequest sets the configuration; with CAS only if the stored
// one's ModifyIndex is Config.ModifyIndex (0: none stored yet).
type AutopilotRequest struct {
	Datacenter string
	Config     AutopilotConfig
	CAS        bool
}

// Validate refuses a configuration no leader could apply.
func (c *AutopilotConfig) Validate() error {
	switch {
	case c.LastContactThreshold < 0 || c.ServerStabilizationTime < 0:
		return fmt.Errorf("%w: durations must not be negative", ErrInvalidRegistration)
	case c.MinQuorum > 7:
		return fmt.Errorf("%w: MinQuorum %d is more servers than a cluster has (7 at most)", ErrInvalidRegistration, c.MinQuorum)
	}
	return nil
}

type autopilotRow struct {
	ID     string
	Config AutopilotConfig
}

func autopilotTableSchema() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableAutopilot, Indexes: map[string]*memdb.IndexSchema{
		"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
	}}
}

// AutopilotConfig is the stored configuration, Consul's defaults when none
// was ever set.
func (s *Store) AutopilotConfig(ws memdb.WatchSet) (uint64, AutopilotConfig, error) {
	tx := s.ReadTxn()
	ch, raw, err := tx.FirstWatch(tableAutopilot, "id", autopilotRowID)
	if err != nil {
		return 0, AutopilotConfig{}, fmt.Errorf("reading autopilot configuration: %w", err)
	}
	watch(ws, ch)
	if raw == nil {
		return maxIndex(tx, tableAutopilot), DefaultAutopilotConfig(), nil
	}
	return maxIndex(tx, tableAutopilot), raw.(*autopilotRow).Config, nil
}

// AutopilotApply stores req's configuration at index idx; false when a CAS
// found another index.
func (s *Store) AutopilotApply(idx uint64, req *AutopilotRequest) (bool, error) {
	if err := req.Config.Validate(); err != nil {
		return false, err
	}
	tx := s.db.Load().Txn(true)
	defer tx.Abort()
	raw, err := tx.First(tableAutopilot, "id", autopilotRowID)
	if err != nil {
		return false, fmt.Errorf("reading autopilot configuration: %w", err)
	}
	cfg := req.Config
	cfg.CreateIndex = idx
	if raw != nil {
		old := raw.(*autopilotRow).Config
		if req.CAS && old.ModifyIndex != req.Config.ModifyIndex {
			return false, nil
		}
		cfg.CreateIndex = old.CreateIndex
	} else if req.CAS && req.Config.ModifyIndex != 0 {
		return false, nil
	}
	cfg.ModifyIndex = idx
	if err := tx.Insert(tableAutopilot, &autopilotRow{ID: autopilotRowID, Config: cfg}); err != nil {
		return false, fmt.Errorf("storing autopilot configuration: %w", err)
	}
	if err := setIndex(tx, idx, tableAutopilot); err != nil {
		return false, err
	}
	tx.Commit()
	return true, nil
}
