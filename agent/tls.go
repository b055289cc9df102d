package agent

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/beacon-dns/beacon/adminapi"
	"github.com/beacon-dns/beacon/corefile"
	"github.com/beacon-dns/beacon/internal/tlsutil"
)

// The agent's TLS material is loaded at start; a Corefile reload may
// change it (ApplyLive), and SIGHUP reads its files again, as Consul
// reloads its certificates on SIGHUP (CoreDNS ignores the signal; the
// Corefile reloads on SIGUSR1). Either way new handshakes take the new
// material and established connections carry on: nothing is dropped.

// loadTLS loads the TLS files cfg names.
func loadTLS(cfg corefile.AgentConfig, logger hclog.Logger) (*tlsutil.Configurator, error) {
	material, err := tlsutil.Load(cfg.TLSUtil())
	if err != nil {
		return nil, fmt.Errorf("loading TLS: %w", err)
	}
	if cfg.TLS != (corefile.TLSConfig{}) {
		logger.Info("TLS loaded", material.Summary()...)
	}
	return tlsutil.NewConfigurator(material), nil
}

// listenAPI serves the HTTP API on cfg's http address and, when it has
// one, its https address.
func listenAPI(cfg corefile.AgentConfig, agent adminapi.Agent, tlsc *tlsutil.Configurator, logger hclog.Logger) (*adminapi.Server, error) {
	srv, err := adminapi.Listen(cfg.HTTP, agent, logger)
	if err != nil {
		return nil, err
	}
	if cfg.HTTPS != "" {
		if err := srv.ListenTLS(cfg.HTTPS, tlsc.IncomingHTTPS()); err != nil {
			_ = srv.Shutdown(context.Background()) // nothing in flight yet
			return nil, err
		}
	}
	return srv, nil
}

// applyTLS loads the TLS files of cfg and installs them.
func (a *Agent) applyTLS(cfg corefile.AgentConfig) error {
	material, err := tlsutil.Load(cfg.TLSUtil())
	if err != nil {
		return fmt.Errorf("reloading TLS: %w (the running certificates stay)", err)
	}
	if a.tls.Use(material) {
		a.logger.Info("TLS reloaded: new connections use it", material.Summary()...)
	}
	return nil
}

// watchSIGHUP has SIGHUP delivered to the channel it returns, from now
// on (before the agent is handed out, so that a SIGHUP never finds the
// signal's default action, which ends the process).
func watchSIGHUP() chan os.Signal {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup
}

// reloadTLSOnSIGHUP reads the TLS files again on every SIGHUP until the
// agent stops.
func (a *Agent) reloadTLSOnSIGHUP(hup chan os.Signal) {
	defer a.wg.Done()
	defer signal.Stop(hup)
	for {
		select {
		case <-a.stop:
			return
		case <-hup:
			changed, err := a.tls.Reload()
			switch {
			case err != nil:
				a.logger.Error("SIGHUP: reloading TLS failed; the running certificates stay", "error", err)
			case changed:
				a.logger.Info("SIGHUP: TLS reloaded: new connections use it", a.tls.Current().Summary()...)
			default:
				a.logger.Info("SIGHUP: TLS files unchanged")
			}
		}
	}
}
