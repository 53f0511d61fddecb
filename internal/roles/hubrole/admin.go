package hubrole

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/hub/admin"
)

// This file adds the hub shell (hub/admin) to plh-hub: the admin endpoint, the
// startup script and the Prometheus metrics server (docs/operations.md).
//
//   - configure: reads admin.startup_script and metrics.listen (wrong types
//     refuse to start), refuses an admin endpoint beyond loopback without a
//     token, and, when metrics are on, hooks the broker's request timing.
//   - start: builds the engine over the running broker, runs the startup script
//     (any failure stops the hub: exit 1, nothing half-started), binds the admin
//     endpoint and the metrics server, and adds admin_endpoint / metrics_addr to
//     the ready event. Binding the default admin endpoint (tcp://127.0.0.1:5600)
//     may fail when another hub on the host holds it: that only warns, so
//     several hubs can run side by side; any other endpoint must bind.

func init() {
	registerModule(module{name: "admin", configure: configureAdmin, start: startAdmin})
}

// adminRun is the admin module's per-run state (Hub.Scratch["admin"]).
type adminRun struct {
	settings hub.AdminSettings
	metrics  *admin.Metrics
}

func configureAdmin(cfg *hub.HubConfig, bc *broker.Config, scratch map[string]any) error {
	s, err := cfg.AdminSettings()
	if err != nil {
		return err
	}
	if ep := cfg.Hub.AdminEndpoint; ep != "" {
		if err := admin.CheckBind(ep, cfg.Admin.Token); err != nil {
			return fmt.Errorf("hub.admin_endpoint: %w (set admin.token or bind to 127.0.0.1)", err)
		}
	}
	r := &adminRun{settings: s}
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
	scratch["admin"] = r
	return nil
}

func startAdmin(ctx context.Context, h *Hub) (func(), error) {
	r, _ := h.Scratch["admin"].(*adminRun)
	if r == nil {
		return nil, errors.New("admin module not configured")
	}
	backend := admin.NewBrokerBackend(h.Broker, func() any { return effectiveConfig(h.Config, r.settings) }, h.Shutdown)
	engine := admin.NewEngine(admin.EngineConfig{HubName: h.Config.Hub.Name, Backend: backend, Logger: h.Logger.With("module", "admin")})

	var stops []func()
	stopAll := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if r.metrics != nil {
		r.metrics.AddStats(func() admin.HubStats { return admin.BrokerStats(h.Broker) })
		ms, err := admin.ServeMetrics(r.settings.MetricsListen, r.metrics, h.Logger)
		if err != nil {
			return nil, fmt.Errorf("metrics.listen: %w", err)
		}
		stops = append(stops, func() { _ = ms.Close() })
		h.ReadyFields["metrics_addr"] = ms.Addr()
		h.Logger.Info("metrics served", "url", "http://"+ms.Addr()+"/metrics")
	}

	if path := r.settings.StartupScript; path != "" {
		if err := runStartupScript(ctx, engine, path, h.Logger); err != nil {
			stopAll()
			return nil, err
		}
	}

	if ep := h.Config.Hub.AdminEndpoint; ep != "" {
		srv, err := admin.Listen(admin.ServerConfig{Endpoint: ep, Token: h.Config.Admin.Token, Engine: engine,
			Backend: backend, Metrics: r.metrics, Logger: h.Logger.With("module", "admin")})
		switch {
		case err == nil:
			stops = append(stops, func() { _ = srv.Close() })
			h.ReadyFields["admin_endpoint"] = srv.Endpoint()
			h.Logger.Info("admin shell listening", "endpoint", srv.Endpoint(), "token", h.Config.Admin.Token != "")
		case ep == admin.DefaultEndpoint:
			h.Logger.Warn("admin shell disabled: default endpoint unavailable", "endpoint", ep, "err", err)
		default:
			stopAll()
			return nil, fmt.Errorf("hub.admin_endpoint: %w", err)
		}
	}
	return stopAll, nil
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
// token redacted, plus where it came from and the admin module's own keys.
func effectiveConfig(cfg *hub.HubConfig, s hub.AdminSettings) any {
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
	}
	m["metrics"] = map[string]any{"listen": s.MetricsListen}
	m["config_dir"] = cfg.ConfigDir
	m["sources"] = cfg.Sources
	return m
}
