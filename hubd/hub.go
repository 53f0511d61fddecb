package hubd

import (
	"context"
	"log/slog"
	"sync"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/internal/wire"
)

// BrokerConfig maps the broker keys of c (endpoint, timeouts, checksum repair
// policy, frame and queue limits, registry and input limits) onto a broker.Config logging to log. CURVE is
// left to the caller (Config.CurveKeysDir, Config.AllowedClients), which also
// applies its own overrides before Start.
func (c *Config) BrokerConfig(log *slog.Logger) broker.Config {
	bc := broker.Config{
		Endpoint:         c.Hub.BrokerEndpoint,
		ChannelTimeout:   c.ChannelTimeout(),
		ConsumerTimeout:  c.ConsumerTimeout(),
		LivenessInterval: c.ConsumerLivenessCheck(),
		Wire:             wire.Config{MaxFrame: c.Broker.MaxFrameBytes, PeerQueue: c.Broker.PeerQueue},
		Limits:           c.Broker.Limits(),
		Trace:            broker.TraceConfig{On: c.Broker.Trace, Path: c.Broker.TracePath, MaxBytes: c.Broker.TraceMaxBytes},
		Logger:           log,
	}
	bc.Checksum, bc.RepairSlot = ChecksumPolicy(c.Broker.ChecksumRepairPolicy)
	return bc
}

// ChecksumPolicy maps a checksum_repair_policy value ("None", "NotifyOnly",
// "Repair"; anything else is None) onto the broker's policy and, for Repair,
// the hook that does it (RepairSlot).
func ChecksumPolicy(name string) (broker.ChecksumPolicy, func(context.Context, broker.RepairRequest) (broker.RepairResult, error)) {
	switch name {
	case "NotifyOnly":
		return broker.ChecksumNotifyOnly, nil
	case "Repair":
		return broker.ChecksumRepair, RepairSlot
	}
	return broker.ChecksumNone, nil
}

// Params is what Start needs.
type Params struct {
	Config *Config       // the loaded configuration
	Broker broker.Config // usually Config.BrokerConfig plus the caller's overrides
	Logger *slog.Logger  // required
	// Shutdown is called by the admin shell's plh.shutdown(): the caller's
	// graceful stop (nil = plh.shutdown() does nothing).
	Shutdown func()
}

// Hub is a running hub process: the broker, the admin shell and the metrics
// server. Close stops them all.
type Hub struct {
	broker    *broker.Service
	ready     map[string]any
	stops     []func()
	closeOnce sync.Once
}

// Start configures the admin shell and metrics, starts the broker, runs the
// startup script, and binds the metrics server and the admin endpoint. An error
// is a *StartError naming the part that failed; nothing is left running.
func Start(ctx context.Context, p Params) (*Hub, error) {
	if p.Shutdown == nil {
		p.Shutdown = func() {}
	}
	sh, err := configureShell(p.Config, &p.Broker)
	if err != nil {
		return nil, &StartError{Op: "admin", Err: err}
	}
	svc, err := broker.Start(ctx, p.Broker)
	if err != nil {
		return nil, &StartError{Op: "broker", Err: err}
	}
	h := &Hub{broker: svc, ready: map[string]any{}}
	stop, err := sh.start(ctx, p, svc, h.ready)
	if err != nil {
		_ = svc.Close()
		return nil, &StartError{Op: "admin", Err: err}
	}
	h.stops = append(h.stops, stop)
	return h, nil
}

// Broker returns the running broker.
func (h *Hub) Broker() *broker.Service { return h.broker }

// ReadyFields returns what the hub adds to its ready event: admin_endpoint
// and metrics_addr when those are served.
func (h *Hub) ReadyFields() map[string]any {
	out := make(map[string]any, len(h.ready))
	for k, v := range h.ready {
		out[k] = v
	}
	return out
}

// Close stops the admin shell and metrics server, then the broker.
// Idempotent, nil-safe.
func (h *Hub) Close() {
	if h == nil {
		return
	}
	h.closeOnce.Do(func() {
		for i := len(h.stops) - 1; i >= 0; i-- {
			h.stops[i]()
		}
		_ = h.broker.Close()
	})
}
