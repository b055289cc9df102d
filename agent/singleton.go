package agent

import (
	"fmt"
	"sync"

	"github.com/beacon-dns/beacon/corefile"
)

// The agent is one per process: CoreDNS builds a new plugin chain on every
// reload while the old one still serves, so the agent outlives them all and
// is closed only when the process exits.
var (
	singletonMu sync.Mutex
	running     *Agent
)

// Acquire returns the process's agent, starting it from cfg if none runs yet.
// A cfg that names agent settings other than the running agent's is refused:
// those cannot change live, and the caller (a reload) must fail whole. The
// settings that change live (TLS) are applied by ApplyLive, once the whole
// new configuration has set up.
func Acquire(cfg *corefile.Config) (*Agent, error) {
	singletonMu.Lock()
	defer singletonMu.Unlock()
	if running != nil {
		if cfg.AgentSet {
			if diff := running.cfg.DiffFixed(cfg.Agent); diff != "" {
				return nil, fmt.Errorf("agent setting %s cannot change while the agent runs: restart beacon to change it", diff)
			}
		}
		return running, nil
	}
	a, err := start(cfg.Agent)
	if err != nil {
		return nil, fmt.Errorf("starting agent: %w", err)
	}
	running = a
	return a, nil
}

// ApplyLive applies to the running agent the settings of cfg that change
// live: it loads the TLS files cfg names and has new connections use them.
// A reload calls it once every block of the new Corefile has set up, so
// that a reload refused for another reason changes nothing. When the files
// do not load, the running material stays and the error says why.
func ApplyLive(cfg *corefile.Config) error {
	singletonMu.Lock()
	a := running
	singletonMu.Unlock()
	if a == nil || !cfg.AgentSet {
		return nil
	}
	return a.applyTLS(cfg.Agent)
}

// ShutdownFinal stops the agent; the process is exiting. It is safe to call
// more than once.
func ShutdownFinal() error {
	singletonMu.Lock()
	defer singletonMu.Unlock()
	// Forgotten only once stopped: an Acquire meanwhile waits, rather than
	// start a second agent on the same ports and data_dir.
	a := running
	if a == nil {
		return nil
	}
	err := a.shutdown()
	running = nil
	return err
}
