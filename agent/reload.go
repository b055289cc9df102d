package agent

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// configReloader reloads the process's configuration, the Corefile; main
// sets it, as the agent does not know CoreDNS (the plugin's
// ReloadCorefile).
var configReloader atomic.Pointer[func() error]

// SetConfigReloader gives the agent the way to reload the Corefile, for
// PUT /v1/agent/reload.
func SetConfigReloader(reload func() error) { configReloader.Store(&reload) }

// ReloadConfig reloads the Corefile as SIGUSR1 does (what changes live
// changes; a change that cannot is refused and nothing changes) and
// reports whether it worked.
func (a *Agent) ReloadConfig() error {
	reload := configReloader.Load()
	if reload == nil {
		return errors.New("reloading is not available: this agent was not started from a Corefile")
	}
	a.logger.Info("reloading the Corefile, as the HTTP API asked")
	if err := (*reload)(); err != nil {
		a.logger.Error("Corefile reload failed; the running configuration stays", "error", err)
		return fmt.Errorf("reloading the Corefile: %w", err)
	}
	a.logger.Info("Corefile reloaded")
	return nil
}
