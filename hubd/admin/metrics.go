package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HubStats is the snapshot of hub counters the metrics collector reads at each
// scrape (and plh.metrics() returns). Maps may be nil.
type HubStats struct {
	// Requests counts control messages received, by wire type (REG_REQ, ...).
	Requests map[string]uint64 `json:"requests"`
	// Errors counts ERROR replies sent, by error code.
	Errors map[string]uint64 `json:"errors"`
	// Notifications counts notifications sent, by wire type.
	Notifications map[string]uint64 `json:"notifications"`
	// ChannelsByStatus is the number of channels in each status now.
	ChannelsByStatus map[string]int `json:"channels_by_status"`
	// Consumers is the number of registered consumers now.
	Consumers int `json:"consumers"`
	// HeartbeatTimeouts counts producers and consumers declared dead for silence.
	HeartbeatTimeouts uint64 `json:"heartbeat_timeouts"`
	// DeadConsumers counts consumers found dead (any reason).
	DeadConsumers uint64 `json:"dead_consumers"`
	// ChecksumRepairs counts checksum repairs under policy Repair (B-16), by
	// outcome: "repaired" (a slot hash was recomputed), "failed" (failed or
	// refused).
	ChecksumRepairs map[string]uint64 `json:"checksum_repairs"`
}

// Metrics is the hub's Prometheus instrumentation on its own registry (never
// the global default one). The broker counters are read from a HubStats source
// at scrape time; request latencies and admin requests are observed directly.
type Metrics struct {
	reg *prometheus.Registry

	requestLatency *prometheus.HistogramVec // by message type
	adminRequests  *prometheus.CounterVec   // by outcome
	adminLatency   prometheus.Histogram
}

// NewMetrics returns metrics reading stats (may be nil: broker families absent)
// at every scrape, plus the Go runtime and process collectors.
func NewMetrics(stats func() HubStats) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requestLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "plh_broker_request_duration_seconds",
			Help:    "Time the broker took to handle one control request, by message type.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 4, 8), // 50 µs .. ~0.8 s
		}, []string{"type"}),
		adminRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plh_admin_requests_total",
			Help: "Admin shell requests handled, by outcome (ok, script_error, unauthorized, bad_request).",
		}, []string{"outcome"}),
		adminLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "plh_admin_request_duration_seconds",
			Help:    "Time to handle one admin shell request, script included.",
			Buckets: prometheus.ExponentialBuckets(100e-6, 4, 9), // 100 µs .. ~6.5 s
		}),
	}
	for _, o := range []Outcome{OutcomeOK, OutcomeScriptError, OutcomeUnauthorized, OutcomeBadRequest} {
		m.adminRequests.WithLabelValues(string(o)) // export zeros
	}
	m.reg.MustRegister(m.requestLatency, m.adminRequests, m.adminLatency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.AddStats(stats)
	return m
}

// AddStats registers the broker families, read from stats at every scrape. Call
// it once, when stats was nil at NewMetrics (the broker starts after the
// metrics hook is installed). A nil stats is ignored.
func (m *Metrics) AddStats(stats func() HubStats) {
	if stats != nil {
		m.reg.MustRegister(&statsCollector{stats: stats})
	}
}

// Registry returns the private registry (for tests and extra collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler returns the HTTP handler serving the registry in the Prometheus
// exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ObserveRequest records how long the broker took to handle one request of
// msgType. Safe on nil.
func (m *Metrics) ObserveRequest(msgType string, d time.Duration) {
	if m == nil {
		return
	}
	m.requestLatency.WithLabelValues(msgType).Observe(d.Seconds())
}

func (m *Metrics) observeAdmin(o Outcome, d time.Duration) {
	if m == nil {
		return
	}
	m.adminRequests.WithLabelValues(string(o)).Inc()
	m.adminLatency.Observe(d.Seconds())
}

var (
	descRequests = prometheus.NewDesc("plh_broker_requests_total",
		"Control messages received by the broker, by wire message type.", []string{"type"}, nil)
	descErrors = prometheus.NewDesc("plh_broker_errors_total",
		"ERROR replies sent by the broker, by error code.", []string{"code"}, nil)
	descNotifications = prometheus.NewDesc("plh_broker_notifications_sent_total",
		"Notifications sent by the broker, by wire message type.", []string{"type"}, nil)
	descChannels = prometheus.NewDesc("plh_broker_channels",
		"Channels registered now, by status.", []string{"status"}, nil)
	descConsumers = prometheus.NewDesc("plh_broker_consumers",
		"Consumers registered now, over all channels.", nil, nil)
	descHeartbeatTimeouts = prometheus.NewDesc("plh_broker_heartbeat_timeouts_total",
		"Parties declared dead because their heartbeats stopped.", nil, nil)
	descDeadConsumers = prometheus.NewDesc("plh_broker_dead_consumers_total",
		"Consumers found dead (heartbeat timeout or process exit).", nil, nil)
	descChecksumRepairs = prometheus.NewDesc("plh_broker_checksum_repairs_total",
		"Checksum repairs under policy Repair, by outcome (repaired, failed).", []string{"outcome"}, nil)
)

// statsCollector turns a HubStats snapshot into const metrics at scrape time.
type statsCollector struct {
	stats func() HubStats
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descErrors, descNotifications,
		descChannels, descConsumers, descHeartbeatTimeouts, descDeadConsumers, descChecksumRepairs} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	for k, v := range s.Requests {
		ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(v), k)
	}
	for k, v := range s.Errors {
		ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(v), k)
	}
	for k, v := range s.Notifications {
		ch <- prometheus.MustNewConstMetric(descNotifications, prometheus.CounterValue, float64(v), k)
	}
	for k, v := range s.ChannelsByStatus {
		ch <- prometheus.MustNewConstMetric(descChannels, prometheus.GaugeValue, float64(v), k)
	}
	ch <- prometheus.MustNewConstMetric(descConsumers, prometheus.GaugeValue, float64(s.Consumers))
	ch <- prometheus.MustNewConstMetric(descHeartbeatTimeouts, prometheus.CounterValue, float64(s.HeartbeatTimeouts))
	ch <- prometheus.MustNewConstMetric(descDeadConsumers, prometheus.CounterValue, float64(s.DeadConsumers))
	for k, v := range s.ChecksumRepairs {
		ch <- prometheus.MustNewConstMetric(descChecksumRepairs, prometheus.CounterValue, float64(v), k)
	}
}

// MetricsServer serves Metrics over HTTP at /metrics.
type MetricsServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// ServeMetrics listens on addr (host:port, port 0 = ephemeral) and serves m at
// /metrics until Close. One goroutine (http.Server.Serve) plus net/http's
// per-connection goroutines, all gone after Close.
func ServeMetrics(addr string, m *Metrics, logger *slog.Logger) (*MetricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listen %s: %w", addr, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	s := &MetricsServer{
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
			ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server stopped", "error", err)
		}
	}()
	return s, nil
}

// Addr returns the bound address (host:port).
func (s *MetricsServer) Addr() string { return s.ln.Addr().String() }

// Close stops the server (waiting up to 2 s for scrapes in flight). Safe on nil
// and repeated.
func (s *MetricsServer) Close() error {
	if s == nil {
		return nil
	}
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			s.closeErr = s.srv.Close()
		}
		<-s.done
	})
	return s.closeErr
}
