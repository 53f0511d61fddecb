package hub

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/internal/wire/curve"
	"github.com/pylabhub/plh/shm"
)

// ProducerOptions configures NewProducer. Zero fields take the defaults noted.
type ProducerOptions struct {
	// Channel is the channel name (required). It also names the segment.
	Channel string
	// Pattern is the data pattern ("" = PubSub).
	Pattern Pattern
	// SHM, when non-nil, makes the channel carry a DataBlock created from it
	// (named Channel; SHM.Secret is what consumers must present). Its HubUID,
	// HubName, ProducerUID and ProducerName are stored in the segment header.
	SHM *shm.Config
	// SchemaHash (raw bytes, forwarded to the broker as lowercase hex) and
	// SchemaVersion describe the data; a channel already registered with another
	// hash is refused with ErrSchemaMismatch.
	SchemaHash    []byte
	SchemaVersion uint32
	// Schema is the schema descriptor registered with the channel (B-9,
	// optional). With one, a channel registered with another hash is still
	// taken over when its descriptor allows (same name and major version,
	// fields only appended with a higher minor: proto.CheckSchema); consumers
	// check it with ConsumerOptions.ExpectedSchema.
	Schema Schema
	// Endpoint is where the peer ROUTER binds (default tcp://127.0.0.1:0).
	Endpoint string
	// Wire configures the peer ROUTER (limits, queues). Wire.Security, when set,
	// is used as is; nil means CURVE unless NoCurve (below).
	Wire wire.Config
	// NoCurve turns CURVE off on the peer ROUTER: NULL security, and REG_REQ
	// carries no zmq_pubkey, so consumers dial NULL. The zero value is CURVE
	// (spec/protocol.md §3; docs/security.md).
	NoCurve bool
	// CurveKeys is the peer ROUTER's CURVE key pair (zero: a fresh pair per
	// Producer, as the original). Its public key is sent as REG_REQ zmq_pubkey.
	CurveKeys curve.KeyPair
	// Timeout bounds registration when the ctx of NewProducer has no deadline,
	// and each broker call of Close (default 5 s).
	Timeout time.Duration
	// SendTimeout bounds Send/SendTo when their ctx has no deadline (default 5 s).
	SendTimeout time.Duration
	// PeerTimeout: a consumer that stays silent this long is dropped with
	// OnConsumerDied(pid, "peer_heartbeat_timeout") (backlog B-4; default 5 s;
	// negative disables). A HELLO without heartbeat_ms is given a heartbeat of
	// PeerTimeout/2, so a foreign consumer that never speaks is pruned too.
	PeerTimeout time.Duration
	// SlowConsumer is the PubSub policy for a consumer without credit (doc.go
	// "Slow consumers"; default SlowConsumerDrop). Pipeline and Bidir ignore it:
	// they always wait for credit.
	SlowConsumer SlowConsumerPolicy
	// SlowConsumerAfter: under SlowConsumerDrop and SlowConsumerDisconnect, a
	// PubSub Send waits this long for a consumer's credit before it counts the
	// consumer slow (default 250 ms; never longer than the send's deadline).
	SlowConsumerAfter time.Duration
	// MaxPeers bounds the joined consumers: a HELLO beyond it is refused (not
	// acknowledged, counted in Stats().Dropped) so foreign HELLOs cannot grow the
	// peer table without bound (default 256; negative: no bound).
	MaxPeers int
	// SlotTimeout is the slot timeout of Push jobs (default 5 s).
	SlotTimeout time.Duration
	// HandlerSlotTimeout is the slot timeout of each real-time write handler
	// transaction (default 50 ms).
	HandlerSlotTimeout time.Duration
	// CloseDrain bounds how long Close waits for queued peer messages (the BYEs,
	// data still queued) to be written (default 1 s).
	CloseDrain time.Duration
	// Wait tunes the shm Writer's waiting.
	Wait shm.WaitOptions
	// RingErrorEvery is how often a ring fault that is still seen is reported
	// again (EventRingError reminders; default 1 s). See doc.go, "Ring faults".
	RingErrorEvery time.Duration
	// Callbacks are the user callbacks; see ProducerCallbacks for threads.
	Callbacks ProducerCallbacks
	// Logger receives diagnostics (nil → discard).
	Logger *slog.Logger
}

// ProducerCallbacks are a Producer's callbacks. Peer callbacks (Joined, Left,
// Message, Data) run one at a time, in arrival order, on the Producer's callback
// goroutine, and only while the Producer is started: what arrives before Start
// is queued and delivered at Start. Broker callbacks (Closing, Died, Error) run on
// the Messenger's callback goroutine whether started or not, and never after
// Close. nil callbacks are skipped. A panic in a callback is recovered and
// logged. Callbacks must not call Close or Stop.
type ProducerCallbacks struct {
	OnConsumerJoined  func(c ConsumerIdentity)
	OnConsumerLeft    func(c ConsumerIdentity)
	OnConsumerMessage func(c ConsumerIdentity, typ string, body []byte)
	OnConsumerData    func(c ConsumerIdentity, payload []byte) // Bidir data from a consumer
	OnChannelClosing  func(reason string)
	// OnConsumerDied: the broker reported the consumer process dead
	// (CONSUMER_DIED_NOTIFY), or it missed its peer heartbeats (reason
	// "peer_heartbeat_timeout"). Its identities are already dropped.
	OnConsumerDied func(pid uint64, reason string)
	// OnChannelError: CHANNEL_ERROR_NOTIFY and CHANNEL_EVENT_NOTIFY, and the
	// ring notices the Producer raises itself (n.Event EventRingError, n.Ring
	// set; doc.go "Ring faults").
	OnChannelError func(n ChannelNotice)
	// OnSlowConsumer: PubSub only. A consumer had no credit for
	// SlowConsumerAfter; action is what the policy did: SlowConsumerDrop (it
	// misses items from now until it returns credit, then it is told how many)
	// or SlowConsumerDisconnect (it was dropped from the channel and told).
	// missed is the number of items it missed so far (0 for a drop streak's
	// start). Once per streak.
	OnSlowConsumer func(c ConsumerIdentity, action SlowConsumerPolicy, missed uint64)
}

// SlowConsumerPolicy is what a PubSub producer does with a consumer that does
// not return credit (doc.go "Slow consumers").
type SlowConsumerPolicy string

const (
	// SlowConsumerBlock: Send waits for every joined consumer's credit up to its
	// deadline and then fails with ErrBackpressure (the behaviour before the
	// policy existed).
	SlowConsumerBlock SlowConsumerPolicy = "block"
	// SlowConsumerDrop: a consumer without credit for SlowConsumerAfter misses
	// the items sent until it returns credit; then the producer sends it GAP
	// with the count (ConsumerCallbacks.OnMissed). The default for PubSub.
	SlowConsumerDrop SlowConsumerPolicy = "drop"
	// SlowConsumerDisconnect: a consumer without credit for SlowConsumerAfter
	// is dropped from the channel and sent SLOW_CONSUMER (its OnChannelError
	// gets EventSlowConsumer); when it speaks again the producer answers REJOIN
	// as for any consumer it dropped.
	SlowConsumerDisconnect SlowConsumerPolicy = "disconnect"
)

// ParseSlowConsumerPolicy parses "block", "drop" or "disconnect" ("" = drop).
func ParseSlowConsumerPolicy(s string) (SlowConsumerPolicy, error) {
	switch p := SlowConsumerPolicy(s); p {
	case "":
		return SlowConsumerDrop, nil
	case SlowConsumerBlock, SlowConsumerDrop, SlowConsumerDisconnect:
		return p, nil
	}
	return "", fmt.Errorf("slow consumer policy %q: %w: want block, drop or disconnect", s, ErrInvalidArgument)
}

// ConsumerOptions configures Connect. Zero fields take the defaults noted.
type ConsumerOptions struct {
	// Channel is the channel name (required).
	Channel string
	// ExpectedSchemaHash (raw bytes): when set and the channel's hash is 32 bytes,
	// they must be equal (ErrSchemaMismatch).
	ExpectedSchemaHash []byte
	// ExpectedSchema, when set, is the descriptor this consumer reads the data
	// as (B-9). Connect fails with ErrSchemaMismatch (also wrapping
	// proto.ErrSchemaIncompatible and naming the first differing field) unless
	// the channel registered a descriptor compatible with it: the same name
	// and major version, and this one's fields first, unchanged (the channel
	// may have appended fields with a higher minor version).
	ExpectedSchema *Schema
	// Secret is the segment's shared secret; 0 = do not attach shared memory.
	Secret uint64
	// Group, when set, makes this consumer a member of a consumer group
	// (B-7): the members of a group split the channel's stream, every item
	// going to exactly one of them, while other groups and consumers without a
	// group each get every item. An item a member took and had not consumed
	// (Recv returned it, OnData returned) when it left or died goes to another
	// member. Named like a channel (letters, marks, digits, punctuation,
	// symbols, space; valid UTF-8; at most MaxGroupBytes), else Connect fails
	// with ErrInvalidArgument. With Secret set on a channel whose ring is
	// Sync_reader the members split the ring's slots too (shm.Block.JoinGroup);
	// on a Latest_only or Single_reader ring Connect fails with
	// ErrGroupUnsupported, as it does when the producer does not confirm the
	// group; on Bidir with ErrWrongPattern.
	// A Pipeline channel's consumers without a group are one group already.
	Group string
	// ExpectSHM, when set, must agree with the segment's geometry.
	ExpectSHM *shm.Config
	// RequireChecksum, when set (not shm.ChecksumDefault), is the checksum
	// policy the segment must have (shm.AttachOptions.RequireChecksum): the
	// policy word is not covered by the layout checksum, so a consumer that
	// relies on verification demands it here. A segment with another policy is
	// not attached, like one that disagrees with ExpectSHM: HasSHM is false and
	// SHMError wraps shm.ErrConfigMismatch.
	RequireChecksum shm.ChecksumPolicy
	// UID (≤ 39 bytes) and Name (≤ 31) are written into the segment's consumer
	// heartbeat entry and into HELLO.
	UID, Name string
	// Timeout bounds discovery, the producer's HELLO_ACK and each broker call of
	// Close when the ctx has no deadline (default 5 s).
	Timeout time.Duration
	// Window is the flow-control credit: how many data messages the producer may
	// have in flight to this consumer (default 256).
	Window int
	// PeerHeartbeat is the period of PEER_HEARTBEAT messages to the producer
	// (backlog B-4; default 1 s; negative: none, and the producer never prunes
	// this consumer for silence).
	PeerHeartbeat time.Duration
	// ProducerLostAfter: when the peer link to the producer is lost (e.g. the
	// producer process was killed: the kernel resets its sockets at once) and not
	// re-established within this grace, OnProducerLost runs and ProducerLost
	// reports true, without waiting for the broker's channel timeout (default
	// 1 s; negative disables). A producer that said BYE is never reported lost.
	ProducerLostAfter time.Duration
	// SlotTimeout is the default slot timeout of Pull (default 5 s);
	// HandlerSlotTimeout that of each real-time read handler call (default 50 ms).
	SlotTimeout, HandlerSlotTimeout time.Duration
	// Wait tunes the shm Reader's waiting.
	Wait shm.WaitOptions
	// RingErrorEvery is how often a ring fault that is still seen is reported
	// again (EventRingError reminders; default 1 s). See doc.go, "Ring faults".
	RingErrorEvery time.Duration
	// Wire configures the peer DEALER. Wire.Security, when set, is used as is;
	// nil means CURVE with a fresh client key pair when discovery gave the
	// producer's key (DISC_ACK zmq_pubkey), NULL when it gave none.
	Wire wire.Config
	// Callbacks are the user callbacks; see ConsumerCallbacks.
	Callbacks ConsumerCallbacks
	// Logger receives diagnostics (nil → discard).
	Logger *slog.Logger
}

// ConsumerCallbacks are a Consumer's callbacks. OnData runs on the Consumer's
// data goroutine while started (without it, data waits for Recv);
// OnProducerMessage, OnProducerBye and OnProducerLost on its callback goroutine
// while started (queued before Start); OnChannelClosing and OnChannelError on the
// Messenger's callback goroutine, never after Close. Panics are recovered and
// logged.
type ConsumerCallbacks struct {
	OnData            func(payload []byte)
	OnProducerMessage func(typ string, body []byte)
	OnProducerBye     func() // the producer closed the channel (Go addition)
	// OnProducerLost: the peer link to the producer was lost and not
	// re-established within ConsumerOptions.ProducerLostAfter (Go addition). It
	// runs at most once per producer incarnation (again for a successor the
	// consumer moved to), never after OnProducerBye, and does not replace
	// OnChannelClosing, which still comes from the broker.
	OnProducerLost func()
	// OnProducerRestarted: a successor producer re-registered the channel (same
	// schema, the broker kept this consumer) and the consumer moved to it by
	// itself: discovered it again, re-attached its DataBlock (when the channel has
	// one and Secret is set), connected to its peer endpoint and said HELLO. info
	// is the successor's discovery record. Counted in Stats().Restarts.
	OnProducerRestarted func(info ChannelInfo)
	// OnRejoined: the producer had dropped this consumer (declared dead, e.g.
	// after a pause past a timeout) and asked it to HELLO again (REJOIN); the
	// HELLO is sent. Counted in Stats().Rejoins. A HELLO that cannot be sent is
	// reported to OnChannelError with event EventRejoinFailed.
	OnRejoined func()
	// OnMissed: PubSub under SlowConsumerDrop. The producer skipped n items
	// for this consumer while it had no credit (it was slow or paused) and said
	// so (GAP) before the next item it sends it. Counted in Stats().Missed.
	OnMissed         func(n uint64)
	OnChannelClosing func(reason string)
	// OnChannelError: CHANNEL_ERROR_NOTIFY and CHANNEL_EVENT_NOTIFY, the
	// ring notices the Consumer raises itself (n.Event EventRingError or
	// EventRingReattached, n.Ring set; doc.go "Ring faults"), and
	// EventSlowConsumer when its producer disconnected it for being slow.
	OnChannelError func(n ChannelNotice)
}

// ConsumerIdentity is what a Producer knows of a joined consumer (from HELLO).
type ConsumerIdentity struct {
	ID        []byte // routing identity on the peer socket
	Pid       uint64
	StartTime uint64 // /proc start time (0 when the consumer did not say)
	UID, Name string
}

const (
	defaultTimeout            = 5 * time.Second
	defaultPeerTimeout        = 5 * time.Second
	defaultPeerHeartbeat      = time.Second
	defaultProducerLostAfter  = time.Second
	defaultHandlerSlotTimeout = 50 * time.Millisecond
	defaultWindow             = 256
	defaultSlowConsumerAfter  = 250 * time.Millisecond
	defaultMaxPeers           = 256
	defaultEndpoint           = "tcp://127.0.0.1:0"
)

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func (o ProducerOptions) withDefaults() ProducerOptions {
	if o.Pattern == "" {
		o.Pattern = PatternPubSub
	}
	o.Pattern = patternOf(string(o.Pattern))
	if o.Endpoint == "" {
		o.Endpoint = defaultEndpoint
	}
	o.Timeout = orDefault(o.Timeout, defaultTimeout)
	o.SendTimeout = orDefault(o.SendTimeout, defaultTimeout)
	o.PeerTimeout = orDefault(o.PeerTimeout, defaultPeerTimeout)
	if o.SlowConsumer == "" {
		o.SlowConsumer = SlowConsumerDrop
	}
	o.SlowConsumerAfter = orDefault(o.SlowConsumerAfter, defaultSlowConsumerAfter)
	if o.MaxPeers == 0 {
		o.MaxPeers = defaultMaxPeers
	}
	o.SlotTimeout = orDefault(o.SlotTimeout, defaultTimeout)
	o.HandlerSlotTimeout = orDefault(o.HandlerSlotTimeout, defaultHandlerSlotTimeout)
	o.CloseDrain = orDefault(o.CloseDrain, time.Second)
	o.RingErrorEvery = orDefault(o.RingErrorEvery, defaultRingErrorEvery)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Wire.Logger == nil {
		o.Wire.Logger = o.Logger
	}
	return o
}

func (o ConsumerOptions) withDefaults() ConsumerOptions {
	o.Timeout = orDefault(o.Timeout, defaultTimeout)
	o.PeerHeartbeat = orDefault(o.PeerHeartbeat, defaultPeerHeartbeat)
	o.ProducerLostAfter = orDefault(o.ProducerLostAfter, defaultProducerLostAfter)
	o.SlotTimeout = orDefault(o.SlotTimeout, defaultTimeout)
	o.HandlerSlotTimeout = orDefault(o.HandlerSlotTimeout, defaultHandlerSlotTimeout)
	o.RingErrorEvery = orDefault(o.RingErrorEvery, defaultRingErrorEvery)
	if o.Window <= 0 {
		o.Window = defaultWindow
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Wire.Logger == nil {
		o.Wire.Logger = o.Logger
	}
	return o
}
