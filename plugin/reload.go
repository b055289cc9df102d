package discovery

import (
	"errors"
	"fmt"
	"sync"

	"github.com/coredns/caddy"
)

// reloadMu lets one reload asked through ReloadCorefile run at a time.
var reloadMu sync.Mutex

// ReloadCorefile reads the Corefile again and restarts CoreDNS's instance
// with it, as the `reload` plugin does when the file changes (and SIGUSR1
// does): every block sets up again, the agent outlives it, and a Corefile
// that fails (a syntax error, a refused agent change) leaves the running
// instance serving as it was. Unlike the signal, it says whether the
// reload worked: PUT /v1/agent/reload reports its error.
func ReloadCorefile() error {
	reloadMu.Lock()
	defer reloadMu.Unlock()
	instances := caddy.Instances()
	if len(instances) == 0 {
		return errors.New("no CoreDNS instance is running to reload")
	}
	inst := instances[0] // the one running: a restart replaces it in the list
	input, err := caddy.LoadCaddyfile(inst.Caddyfile().ServerType())
	if err != nil {
		return fmt.Errorf("loading the Corefile: %w", err)
	}
	if _, err := inst.Restart(input); err != nil {
		return err
	}
	return nil
}
