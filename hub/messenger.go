package hub

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/internal/trace"
	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/internal/wire/curve"
)

// MessengerConfig configures a Messenger. The zero value is usable: every zero
// field takes the default documented beside it (DefaultMessengerConfig).
type MessengerConfig struct {
	// Logger receives diagnostics (nil → discard).
	Logger *slog.Logger
	// HeartbeatInterval is the period of HEARTBEAT_REQ for every channel this
	// Messenger registered and CONSUMER_HEARTBEAT_REQ for every channel it consumes
	// (default 2 s, protocol.md §9.4). Negative: no periodic heartbeats (only the
	// one sent right after each registration).
	HeartbeatInterval time.Duration
	// PingInterval is the period of the PING_REQ liveness probe of the broker
	// (default: HeartbeatInterval when that is positive, else 2 s). Negative: no
	// probe, so a silent (paused) broker is only noticed when its connection drops.
	PingInterval time.Duration
	// LostAfter is how long the broker may stay silent (no reply, no
	// notification) before it is declared lost (OnBrokerLost, backlog B-2) and the
	// connection is dialled again. Default: the larger of RequestTimeout and
	// 2 × PingInterval (5 s with the defaults), so a reply that is merely late, as
	// over a slow link, never counts as a lost broker: a request may take
	// RequestTimeout anyway. A dropped connection is reported at once, without
	// waiting for it. Heartbeats go on while the broker is silent (they stop only
	// while there is no connection), so the broker never sees a live client
	// fall silent because of latency below its own timeouts (docs/config.md,
	// "Timeouts and thresholds").
	LostAfter time.Duration
	// RequestTimeout bounds a request whose context has no deadline (default 5 s).
	RequestTimeout time.Duration
	// Hostname is sent as consumer_hostname (CONSUMER_REG_REQ) and
	// producer_hostname (REG_REQ); the broker judges a consumer by /proc only
	// when it runs on the broker's host (docs/protocol.md "Consumer liveness").
	// Default: os.Hostname(). Tests set it to act as a process of another host.
	Hostname string
	// DiscoverAttempt bounds the first DISC_REQ attempt (default 500 ms; each
	// attempt without a reply doubles it for the next) and
	// DiscoverRetry is the pause after CHANNEL_NOT_READY (default 50 ms).
	DiscoverAttempt, DiscoverRetry time.Duration
	// ReregisterWindow is how long, after the broker came back, a consumer
	// registration that fails with CHANNEL_NOT_FOUND is retried (its producer may
	// re-register later than we do; default 30 s).
	ReregisterWindow time.Duration
	// Identity is the process sent as producer_pid / consumer_pid (and
	// consumer_start_time). Zero: this process (proc.Self). Tests set it to act
	// as another process.
	Identity proc.Identity
	// Wire configures the DEALER (limits, redial backoff). Zero fields take
	// wire's defaults except RedialMax, which defaults to 250 ms here so a
	// restarted broker is found again quickly. Wire.Logger defaults to Logger.
	Wire wire.Config
	// DiscoveryDir is the directory of discovery records (brokerless
	// discovery, discovery_file.go; DefaultDiscoveryDir is the conventional
	// one). "" (default): none. With it, every producer on this Messenger
	// writes its channel's record there, a producer on a Messenger that never
	// connected runs without a broker, and Discover falls back to the records
	// when the broker cannot answer or does not know the channel.
	DiscoveryDir string
	// MaxQueuedCallbacks bounds the notifications waiting for the callback
	// goroutine (default 4096); beyond it notifications are dropped and logged.
	MaxQueuedCallbacks int
	// Trace is the protocol trace at start (B-13; off by default);
	// Messenger.SetTrace switches it at run time.
	Trace TraceConfig
}

// DefaultMessengerConfig returns the defaults that zero fields take.
func DefaultMessengerConfig() MessengerConfig {
	return MessengerConfig{
		HeartbeatInterval:  2 * time.Second,
		PingInterval:       2 * time.Second,
		LostAfter:          5 * time.Second,
		RequestTimeout:     5 * time.Second,
		DiscoverAttempt:    500 * time.Millisecond,
		DiscoverRetry:      50 * time.Millisecond,
		ReregisterWindow:   30 * time.Second,
		MaxQueuedCallbacks: 4096,
	}
}

func (c MessengerConfig) withDefaults() MessengerConfig {
	d := DefaultMessengerConfig()
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = d.HeartbeatInterval
	}
	if c.PingInterval == 0 {
		c.PingInterval = d.PingInterval
		if c.HeartbeatInterval > 0 {
			c.PingInterval = c.HeartbeatInterval
		}
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.LostAfter <= 0 && c.PingInterval > 0 {
		c.LostAfter = max(2*c.PingInterval, c.RequestTimeout)
	}
	if c.Hostname == "" {
		c.Hostname, _ = os.Hostname() // "" when unknown: the broker then judges by heartbeats
	}
	if c.DiscoverAttempt <= 0 {
		c.DiscoverAttempt = d.DiscoverAttempt
	}
	if c.DiscoverRetry <= 0 {
		c.DiscoverRetry = d.DiscoverRetry
	}
	if c.ReregisterWindow <= 0 {
		c.ReregisterWindow = d.ReregisterWindow
	}
	if c.Identity.Pid == 0 {
		c.Identity = proc.Self()
	}
	if c.Wire.RedialMax <= 0 {
		c.Wire.RedialMax = 250 * time.Millisecond
	}
	if c.Wire.Logger == nil {
		c.Wire.Logger = c.Logger
	}
	if c.MaxQueuedCallbacks <= 0 {
		c.MaxQueuedCallbacks = d.MaxQueuedCallbacks
	}
	return c
}

// connState is where a Messenger stands with its broker.
type connState int

const (
	stateIdle       connState = iota // never connected, or disconnected
	stateConnecting                  // Connect in progress
	stateUp                          // the broker answers
	stateLost                        // the broker is lost; the DEALER redials
	stateRecovering                  // the broker is back; re-registering what we own
)

func (s connState) String() string {
	return [...]string{"idle", "connecting", "up", "lost", "recovering"}[s]
}

// Messenger is a broker client (spec/api.md §2): it registers and discovers
// channels, keeps the channels and consumers it owns alive with heartbeats,
// delivers the broker's notifications to callbacks, notices a lost broker and,
// when it returns, registers everything again without user action.
//
// A Messenger is safe for concurrent use. Create it with NewMessenger, connect it
// with Connect, and Close it when done.
type Messenger struct {
	cfg   MessengerConfig
	log   *slog.Logger
	pend  *pendingTable
	disp  *dispatcher
	owned *ownedSet
	trace *trace.Tracer // protocol trace (B-13), off unless configured

	consumerSeq atomic.Uint64 // consumer_id of the next consumer registration

	// Callbacks (any number per channel).
	onClosing    subList[func(reason string)]
	onAnyClosing subList[func(channel, reason string)]
	onDied       subList[func(pid uint64, reason string)]
	onError      subList[func(ChannelNotice)]
	onEvent      subList[func(ChannelNotice)]
	onLost       subList[func(error)]
	onBack       subList[func(channels int)]

	connMu    sync.Mutex // serialises Connect, Disconnect and Close
	closeOnce sync.Once

	mu       sync.Mutex // guards the fields below
	state    connState
	sess     *session // nil unless connecting/connected
	endpoint string
	closed   bool
}

// NewMessenger returns an unconnected Messenger. Every call except Connect fails
// fast with ErrNotConnected until Connect succeeds.
func NewMessenger(cfg MessengerConfig) (*Messenger, error) {
	cfg = cfg.withDefaults()
	if cfg.HeartbeatInterval > 0 && cfg.HeartbeatInterval < time.Millisecond {
		return nil, fmt.Errorf("%w: heartbeat interval %v below 1 ms", ErrInvalidArgument, cfg.HeartbeatInterval)
	}
	if cfg.PingInterval > 0 && cfg.PingInterval < time.Millisecond {
		return nil, fmt.Errorf("%w: ping interval %v below 1 ms", ErrInvalidArgument, cfg.PingInterval)
	}
	m := &Messenger{
		cfg:   cfg,
		log:   cfg.Logger,
		pend:  newPendingTable(),
		owned: newOwnedSet(),
		trace: trace.New("messenger"),
	}
	if cfg.Trace.On {
		if err := m.SetTrace(cfg.Trace); err != nil {
			return nil, err
		}
	}
	m.disp = newDispatcher(cfg.Logger, cfg.MaxQueuedCallbacks)
	return m, nil
}

// Disconnect closes the broker connection and forgets every channel and
// consumer this Messenger registered (their heartbeats stop; the broker is not
// told). Pending calls fail with ErrNotConnected. Idempotent.
func (m *Messenger) Disconnect() error {
	if m == nil {
		return nil
	}
	m.connMu.Lock()
	defer m.connMu.Unlock()
	m.stopSession(fmt.Errorf("%w: disconnected", ErrNotConnected))
	m.owned.clear()
	return nil
}

// Close disconnects, runs the callbacks already queued and stops every goroutine
// of the Messenger. A Connect in progress is interrupted. Later calls return
// ErrClosed. Idempotent, concurrent calls wait for the first; nil-safe.
// IMPORTANT: do not call Close from a Messenger callback (it waits for them).
func (m *Messenger) Close() error {
	if m == nil {
		return nil
	}
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		if m.sess != nil && m.state == stateConnecting {
			m.sess.cancel() // Connect's wait ends; it then releases connMu
		}
		m.mu.Unlock()
		m.connMu.Lock()
		defer m.connMu.Unlock()
		m.stopSession(fmt.Errorf("%w", ErrClosed))
		m.owned.clear()
		m.disp.close()
		_ = m.trace.Close()
	})
	return nil
}

// stopSession ends the current session (if any) and fails pending calls with
// cause. Caller holds connMu.
func (m *Messenger) stopSession(cause error) {
	m.mu.Lock()
	s := m.sess
	m.sess, m.endpoint = nil, ""
	m.state = stateIdle
	m.mu.Unlock()
	m.pend.failAll(cause)
	if s != nil {
		s.stop()
	}
}

// Endpoint returns the broker endpoint while connected ("" otherwise).
func (m *Messenger) Endpoint() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.endpoint
}

// Connected reports whether the broker currently answers (connected and not lost).
func (m *Messenger) Connected() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state == stateUp || m.state == stateRecovering
}

// Pid returns the process id this Messenger sends as producer/consumer pid.
func (m *Messenger) Pid() uint64 { return uint64(m.cfg.Identity.Pid) }

func (m *Messenger) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, m.cfg.RequestTimeout)
}

func (m *Messenger) id() procID {
	return procID{pid: uint64(m.cfg.Identity.Pid), start: m.cfg.Identity.StartTime, host: m.cfg.Hostname}
}

// procID is the process identity sent on the wire: the same in every
// registration and re-registration of this Messenger (with, for a consumer, its
// consumer_id), so a broker that already holds an entry replaces it.
type procID struct {
	pid, start uint64
	host       string
}

// clientSecurity returns the CURVE client security for a broker's Z85 public key
// (protocol.md §3): a fresh client key pair per connection, as the original.
func clientSecurity(serverKey string, cfg MessengerConfig) (wire.Security, error) {
	key, err := curve.ParsePublicKey(serverKey)
	if err != nil {
		return nil, fmt.Errorf("%w: server key: %w", ErrInvalidArgument, err)
	}
	maxFrame := cfg.Wire.MaxFrame
	if maxFrame <= 0 {
		maxFrame = wire.DefaultConfig().MaxFrame
	}
	// MaxMessage bounds ciphertext buffering: a frame plus the MESSAGE overhead.
	sec, err := curve.NewClientSecurity(curve.ClientConfig{ServerKey: key, MaxMessage: maxFrame + 64, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return sec, nil
}
