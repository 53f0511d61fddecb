package broker

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/wire"
)

// ChecksumPolicy says what the broker does with CHECKSUM_ERROR_REPORT.
type ChecksumPolicy int

// Checksum policies (spec/protocol.md §5.8). Repair is not implemented.
const (
	ChecksumNone       ChecksumPolicy = iota // log only
	ChecksumNotifyOnly                       // forward as CHANNEL_EVENT_NOTIFY to every party
)

// Config configures a Service. Zero fields take the defaults of DefaultConfig;
// a negative duration disables that timer.
type Config struct {
	// Endpoint to bind (default tcp://0.0.0.0:5570; tests use tcp://127.0.0.1:0).
	Endpoint string
	// Wire configures the ROUTER (limits, queues; Security: see Curve).
	Wire wire.Config
	// Curve configures the ROUTER's CURVE server. The zero value is CURVE with a
	// fresh key pair (Service.PublicKey reports it); Curve.Disabled means NULL.
	// An explicit Wire.Security replaces it (CURVE keys beside it: ErrBadConfig).
	Curve CurveConfig
	// ChannelTimeout: a channel without HEARTBEAT_REQ for this long is closed
	// with CHANNEL_CLOSING_NOTIFY "heartbeat_timeout" (default 10 s).
	ChannelTimeout time.Duration
	// ConsumerTimeout: a consumer that heartbeats (CONSUMER_HEARTBEAT_REQ) or
	// registered with a protocol_version (a plh client) and is then silent for
	// this long is removed with CONSUMER_DIED_NOTIFY "heartbeat_timeout" (default 10 s).
	ConsumerTimeout time.Duration
	// LivenessInterval: how often consumers whose process could not be watched
	// with a pidfd are checked with a /proc liveness test (default 5 s).
	LivenessInterval time.Duration
	// SweepInterval: resolution of the timeout sweeps (default 100 ms).
	SweepInterval time.Duration
	// Checksum is the CHECKSUM_ERROR_REPORT policy (default ChecksumNone).
	Checksum ChecksumPolicy
	// OnReady is called once after bind with the real endpoint and the public key
	// ("" without CURVE), before any message is handled.
	OnReady func(endpoint, pubkey string)
	// ObserveRequest, if set, is called after each request is handled with its
	// type and handling time (for latency histograms). It must not block.
	ObserveRequest func(t proto.Type, d time.Duration)
	// Logger receives the broker's logs (nil → discard).
	Logger *slog.Logger
}

// DefaultConfig returns the defaults zero fields take.
func DefaultConfig() Config {
	return Config{
		Endpoint:         "tcp://0.0.0.0:5570",
		ChannelTimeout:   10 * time.Second,
		ConsumerTimeout:  10 * time.Second,
		LivenessInterval: 5 * time.Second,
		SweepInterval:    100 * time.Millisecond,
	}
}

func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.Endpoint == "" {
		c.Endpoint = d.Endpoint
	}
	if c.ChannelTimeout == 0 {
		c.ChannelTimeout = d.ChannelTimeout
	}
	if c.ConsumerTimeout == 0 {
		c.ConsumerTimeout = d.ConsumerTimeout
	}
	if c.LivenessInterval == 0 {
		c.LivenessInterval = d.LivenessInterval
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = d.SweepInterval
	}
	if c.Checksum != ChecksumNone && c.Checksum != ChecksumNotifyOnly {
		return c, fmt.Errorf("%w: unknown checksum policy %d", ErrBadConfig, c.Checksum)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Wire.Logger == nil {
		c.Wire.Logger = c.Logger
	}
	return c.curveSecurity()
}
