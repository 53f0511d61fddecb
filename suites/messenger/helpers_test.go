package messenger_test

import (
	"context"
	"log/slog"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/suites/support"
)

// logger writes to the spec's output (shown on failure).
func logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(GinkgoWriter, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// quietLogger logs warnings and errors only (specs with thousands of channels).
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(GinkgoWriter, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startBroker runs an in-process broker on an ephemeral loopback port (unless
// cfg.Endpoint is set) and closes it after the spec.
func startBroker(cfg broker.Config) *broker.Service {
	if cfg.Endpoint == "" {
		cfg.Endpoint = "tcp://127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = logger()
	}
	b, err := broker.Start(context.Background(), cfg)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(b.Close)
	rememberKey(b.Endpoint(), b.PublicKey())
	return b
}

// The broker keys are recorded by startBroker and startHub (support.RememberKey),
// so raw clients and Messengers speak each broker's security (CURVE by default).
var rememberKey, keyOf = support.RememberKey, support.KeyOf

// newMessenger returns an unconnected Messenger closed after the spec.
func newMessenger(cfg hub.MessengerConfig) *hub.Messenger {
	if cfg.Logger == nil {
		cfg.Logger = logger()
	}
	m, err := hub.NewMessenger(cfg)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(m.Close)
	return m
}

// connected returns a Messenger connected to endpoint.
func connected(endpoint string, cfg hub.MessengerConfig) *hub.Messenger {
	m := newMessenger(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	Expect(m.Connect(ctx, endpoint, keyOf(endpoint))).To(Succeed())
	return m
}

// ctx5 returns a context with a generous deadline for one call.
func ctx5() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	DeferCleanup(cancel)
	return ctx
}

// uniq returns a channel name unique to this process and call.
func uniq(label string) string { return support.UniqueName(label) }

// consumerCount discovers channel and returns its consumer count.
func consumerCount(m *hub.Messenger, channel string) func() (uint64, error) {
	return func() (uint64, error) {
		info, err := m.Discover(ctx5(), channel)
		return info.ConsumerCount, err
	}
}

type brokerService = broker.Service

// brokerCfg is the in-process broker configuration of most specs: defaults (CURVE
// with a fresh key pair) on an ephemeral loopback port.
func brokerCfg() broker.Config { return broker.Config{Endpoint: "tcp://127.0.0.1:0"} }

// curveClient is a CURVE client Security for a Z85 server key (nil for "").
func curveClient(key string) wire.Security {
	sec, err := support.CurveClient(key)
	Expect(err).NotTo(HaveOccurred())
	return sec
}
