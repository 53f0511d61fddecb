package admin

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/broker/proto"
)

// BrokerBackend is the Backend of a hub running svc: channels, detail and close
// go to the broker; config and shutdown to the functions given (either may be
// nil: config() returns {} and shutdown() fails).
type BrokerBackend struct {
	svc      *broker.Service
	config   func() any
	shutdown func()
}

// NewBrokerBackend returns the backend for svc.
func NewBrokerBackend(svc *broker.Service, config func() any, shutdown func()) *BrokerBackend {
	return &BrokerBackend{svc: svc, config: config, shutdown: shutdown}
}

// Channels implements Backend.
func (b *BrokerBackend) Channels() (any, error) { return b.svc.Channels(), nil }

// Channel implements Backend.
func (b *BrokerBackend) Channel(name string) (any, error) { return b.svc.ChannelDetail(name) }

// CloseChannel implements Backend.
func (b *BrokerBackend) CloseChannel(name string) error { return b.svc.CloseChannel(name) }

// Config implements Backend.
func (b *BrokerBackend) Config() any {
	if b.config == nil {
		return map[string]any{}
	}
	return b.config()
}

// Metrics implements Backend: the same counters the Prometheus endpoint shows.
func (b *BrokerBackend) Metrics() any { return BrokerStats(b.svc) }

// Shutdown implements Backend.
func (b *BrokerBackend) Shutdown() {
	if b.shutdown != nil {
		b.shutdown()
	}
}

// Schemas implements Backend.
func (b *BrokerBackend) Schemas() any { return b.svc.Schemas() }

// Trace implements Backend: the broker's protocol trace. A file path from the
// shell must be absolute and end in ".jsonl" (admin code cannot append trace
// lines to an arbitrary file of the hub's user).
func (b *BrokerBackend) Trace(on *bool, path string) (any, error) {
	if on != nil && *on && path != "" && (!filepath.IsAbs(path) || !strings.HasSuffix(path, ".jsonl")) {
		return nil, fmt.Errorf("trace: %w: path %q must be absolute and end in .jsonl", ErrBadArgument, path)
	}
	if on != nil {
		if err := b.svc.SetTrace(broker.TraceConfig{On: *on, Path: path}); err != nil {
			return nil, err
		}
	}
	return b.svc.TraceStatus(), nil
}

// BrokerStats converts the broker's counters into HubStats: heartbeat timeouts
// count channels and consumers timed out; dead consumers count consumers removed
// for any reason (process exit or heartbeat timeout).
func BrokerStats(svc *broker.Service) HubStats {
	st := svc.Stats()
	byStatus := map[string]int{proto.StatusPendingReady: 0, proto.StatusReady: 0, proto.StatusClosing: 0}
	for _, c := range svc.Channels() {
		byStatus[c.Status]++
	}
	return HubStats{
		Requests:          st.Received,
		Errors:            st.Errors,
		Notifications:     st.Notifications,
		ChannelsByStatus:  byStatus,
		Consumers:         st.Consumers,
		HeartbeatTimeouts: st.ChannelTimeouts + st.ConsumerTimeouts,
		DeadConsumers:     st.DeadConsumers + st.ConsumerTimeouts,
		ChecksumRepairs:   map[string]uint64{"repaired": st.Repaired, "failed": st.RepairsFailed},
	}
}

// ObserveBrokerRequest adapts Metrics.ObserveRequest to broker.Config.ObserveRequest.
func (m *Metrics) ObserveBrokerRequest(t proto.Type, d time.Duration) {
	m.ObserveRequest(string(t), d)
}
