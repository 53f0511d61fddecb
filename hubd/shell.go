package hubd

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/hubd/admin"
)

// This file adds the hub shell (hubd/admin) to the hub: the admin endpoint, the
// startup script and the Prometheus metrics server (docs/operations.md).
//
//   - configureShell: reads admin.startup_script and metrics.listen (wrong
//     types refuse to start), refuses an admin endpoint beyond loopback without
//     a token, and, when metrics are on, hooks the broker's request timing.
//   - start: builds the engine over the running broker, runs the startup script
//     (any failure stops the hub: exit 1, nothing half-started), binds the admin
//     endpoint and the metrics server, and adds admin_endpoint / metrics_addr to
//     the ready fields. Binding the default admin endpoint (tcp://127.0.0.1:5600)
//     may fail when another hub on the host holds it: that only warns, so
//     several hubs can run side by side; any other endpoint must bind.

// shell is the admin shell's state between configureShell and start.
type shell struct {
	settings AdminSettings
	metrics  *admin.Metrics
}

func configureShell(cfg *Config, bc *broker.Config) (*shell, error) {
	s, err := cfg.AdminSettings()
	if err != nil {
		return nil, err
	}
	if ep := cfg.Hub.AdminEndpoint; ep != "" {
		if err := admin.CheckBind(ep, cfg.Admin.Token); err != nil {
			return nil, fmt.Errorf("hub.admin_endpoint: %w (set admin.token or bind to 127.0.0.1)", err)
		}
	}
	r := &shell{settings: s}
	if s.MetricsListen != "" {
		r.metrics = admin.NewMetrics(nil) // stats source added in start, once the broker exists
		prev := bc.ObserveRequest
		bc.ObserveRequest = func(t proto.Type, d time.Duration) {
			r.metrics.ObserveBrokerRequest(t, d)
			if prev != nil {
				prev(t, d)
			}
		}
	}
	return r, nil
}

// start runs the shell over svc; the returned func stops what it started.
func (r *shell) start(ctx context.Context, p Params, svc *broker.Service, ready map[string]any) (func(), error) {
	cfg, log := p.Config, p.Logger
	backend := admin.NewBrokerBackend(svc, func() any { return effectiveConfig(cfg, r.settings) }, p.Shutdown)
	engine := admin.NewEngine(admin.EngineConfig{HubName: cfg.Hub.Name, Backend: backend, Logger: log.With("module", "admin")})

	var stops []func()
	stopAll := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if r.metrics != nil {
		r.metrics.AddStats(func() admin.HubStats { return admin.BrokerStats(svc) })
		ms, err := admin.ServeMetrics(r.settings.MetricsListen, r.metrics, log)
		if err != nil {
			return nil, fmt.Errorf("metrics.listen: %w", err)
		}
		stops = append(stops, func() { _ = ms.Close() })
		ready["metrics_addr"] = ms.Addr()
		log.Info("metrics served", "url", "http://"+ms.Addr()+"/metrics")
	}

	if path := r.settings.StartupScript; path != "" {
		if err := runStartupScript(ctx, engine, path, log); err != nil {
			stopAll()
			return nil, err
		}
	}

	if ep := cfg.Hub.AdminEndpoint; ep != "" {
		stop, err := r.listen(ep, p, engine, backend, ready)
		if err != nil {
			stopAll()
			return nil, err
		}
		stops = append(stops, stop)
	}
	return stopAll, nil
}

// listen serves the admin endpoint ep. Without admin.token (and without
// admin.allow_no_token) it generates a token and keeps it in the endpoint's
// token file (admin.TokenFile), named in the ready fields as admin_token_file
// and removed by the returned stop. On the default endpoint, being held by
// another process or a token file that cannot be written only warns (no
// shell, nothing to stop); on any other endpoint they refuse the start.
func (r *shell) listen(ep string, p Params, engine *admin.Engine, backend admin.Backend, ready map[string]any) (func(), error) {
	cfg, log := p.Config, p.Logger.With("module", "admin")
	token, generate := cfg.Admin.Token, cfg.Admin.Token == "" && !r.settings.AllowNoToken
	if generate {
		token = admin.GenerateToken()
	}
	srv, err := admin.Listen(admin.ServerConfig{Endpoint: ep, Token: token, Engine: engine,
		Backend: backend, Metrics: r.metrics, Logger: log})
	switch {
	case err != nil && ep == admin.DefaultEndpoint:
		log.Warn("admin shell disabled: default endpoint unavailable", "endpoint", ep, "err", err)
		return func() {}, nil
	case err != nil:
		return nil, fmt.Errorf("hub.admin_endpoint: %w", err)
	}
	ready["admin_endpoint"] = srv.Endpoint()
	if !generate {
		if token == "" {
			log.Warn("admin shell listening WITHOUT authentication (admin.allow_no_token): any local process can run code in this hub", "endpoint", srv.Endpoint())
		} else {
			log.Info("admin shell listening", "endpoint", srv.Endpoint(), "token", "configured")
		}
		return func() { _ = srv.Close() }, nil
	}
	path, err := admin.TokenFile(srv.Endpoint())
	if err == nil {
		err = admin.WriteTokenFile(path, token)
	}
	if err != nil {
		_ = srv.Close()
		if ep == admin.DefaultEndpoint {
			log.Warn("admin shell disabled: cannot keep its generated token (set admin.token)", "err", err)
			delete(ready, "admin_endpoint")
			return func() {}, nil
		}
		return nil, fmt.Errorf("admin token (set admin.token, or admin.allow_no_token): %w", err)
	}
	ready["admin_token_file"] = path
	log.Info("admin shell listening", "endpoint", srv.Endpoint(), "token_file", path)
	return func() {
		_ = srv.Close()
		if err := admin.RemoveTokenFile(path, token); err != nil {
			log.Warn("admin token file not removed", "file", path, "err", err)
		}
	}, nil
}

// runStartupScript executes the script in the admin engine, logging its output
// at INFO; any failure is returned (the hub then exits 1).
func runStartupScript(ctx context.Context, engine *admin.Engine, path string, log *slog.Logger) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("startup script: %w", err)
	}
	out, err := engine.Exec(ctx, path, string(src))
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line != "" {
			log.Info("startup script: "+line, "script", path)
		}
	}
	if err != nil {
		return fmt.Errorf("startup script %s failed: %w", path, err)
	}
	log.Info("startup script done", "script", path)
	return nil
}

// effectiveConfig is plh.config(): the loaded configuration with the admin
// token redacted, plus where it came from and the admin shell's own keys.
func effectiveConfig(cfg *Config, s AdminSettings) any {
	var m map[string]any
	raw, err := json.Marshal(cfg)
	if err == nil {
		err = json.Unmarshal(raw, &m)
	}
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	if a, ok := m["admin"].(map[string]any); ok {
		if tok, _ := a["token"].(string); tok != "" {
			a["token"] = "<redacted>"
		}
		a["startup_script"] = s.StartupScript
		a["allow_no_token"] = s.AllowNoToken
	}
	m["metrics"] = map[string]any{"listen": s.MetricsListen}
	m["config_dir"] = cfg.ConfigDir
	m["sources"] = cfg.Sources
	return m
}
