package broker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/wire"
)

// ChecksumPolicy says what the broker does with CHECKSUM_ERROR_REPORT.
type ChecksumPolicy int

// Checksum policies (spec/protocol.md §5.8).
const (
	ChecksumNone       ChecksumPolicy = iota // log only
	ChecksumNotifyOnly                       // forward as CHANNEL_EVENT_NOTIFY to every party
	// ChecksumRepair (B-16, opt-in, DANGEROUS): Config.RepairSlot recomputes
	// the reported slot's hash, then every party gets CHANNEL_EVENT_NOTIFY with
	// the outcome (repair.go). A recomputed hash vouches for whatever the slot
	// holds, corrupted bytes included.
	ChecksumRepair
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
	// RepairSlot does the repair of policy ChecksumRepair (required with it,
	// unused otherwise). The broker knows no segment: the hub process gives it
	// (hubd.RepairSlot). It runs on the broker's repair goroutine, one report at
	// a time, never under the registry lock; ctx ends at Close.
	RepairSlot func(ctx context.Context, r RepairRequest) (RepairResult, error)
	// Limits bounds what clients can make the broker hold (defaults: DefaultLimits).
	Limits Limits
	// OnReady is called once after bind with the real endpoint and the public key
	// ("" without CURVE), before any message is handled.
	OnReady func(endpoint, pubkey string)
	// ObserveRequest, if set, is called after each request is handled with its
	// type and handling time (for latency histograms). It must not block.
	ObserveRequest func(t proto.Type, d time.Duration)
	// Trace is the protocol trace at start (B-13; off by default); SetTrace
	// switches it at run time.
	Trace TraceConfig
	// Logger receives the broker's logs (nil → discard).
	Logger *slog.Logger
}

// Limits bounds the registry and the input the broker accepts (docs/protocol.md
// "Limits"). A request that would break one gets ERROR LIMIT_EXCEEDED and is
// counted in Stats.LimitsExceeded under the limit's name. A zero field takes its
// default (DefaultLimits); a negative one removes that limit.
type Limits struct {
	// MaxChannels bounds the registry ("channels"; default 100,000). A producer
	// re-registering its channel is not a new channel.
	MaxChannels int
	// MaxConsumersPerChannel bounds one channel's consumer entries
	// ("consumers_per_channel"; default 1,024).
	MaxConsumersPerChannel int
	// MaxNameBytes bounds channel_name in every request ("name_bytes"; default 256).
	MaxNameBytes int
	// MaxMetadataBytes bounds a registration's metadata, as JSON ("metadata_bytes";
	// default 64 KiB).
	MaxMetadataBytes int
	// MaxFieldBytes bounds every other string of a registration: shm_name,
	// schema_hash, hostnames, consumer_id, endpoints, zmq_pubkey ("field_bytes";
	// default 1 KiB).
	MaxFieldBytes int
	// MaxBodyBytes bounds a request's JSON body ("body_bytes"; default and
	// maximum proto.MaxBody, 256 KiB).
	MaxBodyBytes int
	// ListPage bounds the entries of one CHANNEL_LIST_ACK (default 1,000); a page
	// also stops before ListPageBytes of JSON (default 512 KiB), so a reply stays
	// far below the 1 MiB frame limit of plh clients.
	ListPage, ListPageBytes int
	// StaleConsumerAge: a consumer entry not judged by heartbeats (registered
	// without protocol_version, never sent CONSUMER_HEARTBEAT_REQ: an original
	// client) is removed this long after it registered, alive or not, with
	// CONSUMER_DIED_NOTIFY "heartbeat_timeout" (default 1 h). Its client can
	// register again to renew it.
	StaleConsumerAge time.Duration
}

// DefaultLimits returns the limits zero fields take.
func DefaultLimits() Limits {
	return Limits{
		MaxChannels: 100_000, MaxConsumersPerChannel: 1024, MaxNameBytes: 256,
		MaxMetadataBytes: 64 << 10, MaxFieldBytes: 1 << 10, MaxBodyBytes: proto.MaxBody,
		ListPage: 1000, ListPageBytes: 512 << 10, StaleConsumerAge: time.Hour,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	def := func(v *int, dv int) {
		if *v == 0 {
			*v = dv
		}
	}
	def(&l.MaxChannels, d.MaxChannels)
	def(&l.MaxConsumersPerChannel, d.MaxConsumersPerChannel)
	def(&l.MaxNameBytes, d.MaxNameBytes)
	def(&l.MaxMetadataBytes, d.MaxMetadataBytes)
	def(&l.MaxFieldBytes, d.MaxFieldBytes)
	if l.MaxBodyBytes <= 0 || l.MaxBodyBytes > proto.MaxBody {
		l.MaxBodyBytes = proto.MaxBody
	}
	if l.ListPage <= 0 {
		l.ListPage = d.ListPage
	}
	if l.ListPageBytes <= 0 {
		l.ListPageBytes = d.ListPageBytes
	}
	if l.StaleConsumerAge == 0 {
		l.StaleConsumerAge = d.StaleConsumerAge
	}
	return l
}

// within reports whether n is allowed by limit (negative = no limit).
func within(n, limit int) bool { return limit < 0 || n <= limit }

// DefaultConfig returns the defaults zero fields take.
func DefaultConfig() Config {
	return Config{
		Endpoint:         "tcp://0.0.0.0:5570",
		ChannelTimeout:   10 * time.Second,
		ConsumerTimeout:  10 * time.Second,
		LivenessInterval: 5 * time.Second,
		SweepInterval:    100 * time.Millisecond,
		Limits:           DefaultLimits(),
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
	c.Limits = c.Limits.withDefaults()
	switch {
	case c.Checksum < ChecksumNone || c.Checksum > ChecksumRepair:
		return c, fmt.Errorf("%w: unknown checksum policy %d", ErrBadConfig, c.Checksum)
	case c.Checksum == ChecksumRepair && c.RepairSlot == nil:
		return c, fmt.Errorf("%w: checksum policy Repair needs Config.RepairSlot", ErrBadConfig)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Wire.Logger == nil {
		c.Wire.Logger = c.Logger
	}
	return c.curveSecurity()
}
