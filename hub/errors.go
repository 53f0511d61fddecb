package hub

import (
	"errors"
	"fmt"
)

// Errors of the broker client (Messenger). Callers branch on them with errors.Is;
// every returned error wraps one of them with the operation and channel.
var (
	// Connection state.

	// ErrNotConnected is returned by every Messenger call made while no broker
	// connection exists: before Connect, after Disconnect, and (together with
	// ErrBrokerLost) while the broker is lost.
	ErrNotConnected = errors.New("hub: not connected to a broker")
	// ErrBrokerLost is returned by calls made, or pending, while the broker does not
	// answer its liveness probe (it also matches ErrNotConnected).
	ErrBrokerLost = errors.New("hub: broker lost")
	// ErrClosed is returned by every call on a closed object.
	ErrClosed = errors.New("hub: closed")
	// ErrTimeout is returned when the broker did not answer within the call's
	// context deadline (or the configured request timeout).
	ErrTimeout = errors.New("hub: timed out waiting for the broker")
	// ErrBadReply is returned when a broker reply could not be understood
	// (malformed JSON, missing or mistyped fields).
	ErrBadReply = errors.New("hub: malformed reply from the broker")
	// ErrBrokerSecurity is returned by Messenger.Connect (wrapped with
	// ErrNotConnected) when the security handshake with the broker failed: a wrong
	// server key, or one side CURVE and the other NULL. Connect fails at once,
	// without waiting for its deadline: redialling with the same key cannot help.
	ErrBrokerSecurity = errors.New("hub: security handshake with the broker failed")

	// Caller mistakes.

	// ErrInvalidArgument is returned when a call's arguments are unusable (empty
	// channel name, empty endpoint, server key not 40 Z85 characters).
	ErrInvalidArgument = errors.New("hub: invalid argument")

	// Broker error codes (protocol.md §5.1), one sentinel per code.

	// ErrInvalidRequest is returned when the broker answered INVALID_REQUEST.
	ErrInvalidRequest = errors.New("hub: broker rejected the request as invalid")
	// ErrSchemaMismatch is returned when the channel exists with another schema
	// hash (broker code SCHEMA_MISMATCH).
	ErrSchemaMismatch = errors.New("hub: schema mismatch")
	// ErrChannelNotFound is returned when the broker does not know the channel
	// (CHANNEL_NOT_FOUND).
	ErrChannelNotFound = errors.New("hub: channel not found")
	// ErrChannelNotReady is returned when the channel is registered but has not
	// had its first heartbeat yet (CHANNEL_NOT_READY); Discover retries it.
	ErrChannelNotReady = errors.New("hub: channel not ready")
	// ErrNotRegistered is returned when a deregistration names a channel or pid the
	// broker does not hold (NOT_REGISTERED).
	ErrNotRegistered = errors.New("hub: not registered")
	// ErrUnknownMessage is returned when the broker did not know the request type
	// (UNKNOWN_MSG_TYPE), e.g. an older broker.
	ErrUnknownMessage = errors.New("hub: broker does not know the message type")
	// ErrVersionMismatch is returned when the broker speaks another major protocol
	// version (VERSION_MISMATCH).
	ErrVersionMismatch = errors.New("hub: protocol version mismatch")

	// Shared memory.

	// ErrNoSHM is returned when an operation needs the channel's shared-memory
	// segment and the channel has none (or it could not be attached).
	ErrNoSHM = errors.New("hub: channel has no shared memory")
)

// Errors of Producer and Consumer (channels). Every returned error wraps one of
// these (or one of the Messenger errors above) with the operation and channel.
var (
	// ErrWrongPattern is returned when a call does not apply to the channel's
	// pattern: Send on a Bidir channel, SendTo or Consumer.Send on a PubSub or
	// Pipeline channel.
	ErrWrongPattern = errors.New("hub: operation not valid for the channel pattern")
	// ErrNoConsumers is returned by a Pipeline Send (and SendTo) when no consumer
	// has joined before the send deadline.
	ErrNoConsumers = errors.New("hub: no consumer joined")
	// ErrBackpressure is returned when a send waited for a consumer's credit
	// (flow control) until its deadline: the consumers do not keep up. A PubSub
	// Send returning it was delivered to every consumer that had credit.
	ErrBackpressure = errors.New("hub: consumers do not keep up (no credit before the deadline)")
	// ErrUnknownConsumer is returned by SendTo/SendCtrl for an identity that has
	// not joined (or has left).
	ErrUnknownConsumer = errors.New("hub: unknown consumer identity")
	// ErrRunning is returned by Start on a running Producer or Consumer.
	ErrRunning = errors.New("hub: already running")
	// ErrNotRunning is returned by Push when the Producer is not started.
	ErrNotRunning = errors.New("hub: not running")
	// ErrReservedType is returned when a user control message uses a type the
	// peer protocol reserves (HELLO, HELLO_ACK, BYE, PEER_HEARTBEAT, CREDIT).
	ErrReservedType = errors.New("hub: reserved control message type")
	// ErrPeerProtocol describes a malformed message from a peer; such messages
	// are dropped and counted (ChannelStats.Dropped), never fatal.
	ErrPeerProtocol = errors.New("hub: malformed peer message")
	// ErrNoSlot is returned by a write or read transaction step that could not
	// get a slot before its slot timeout (it unwraps to shm.ErrTimeout too).
	ErrNoSlot = errors.New("hub: no slot before the slot timeout")
	// ErrPeerSecurity is returned by Connect when the security handshake with the
	// producer failed: the key from discovery is not the producer's, or the two
	// sides disagree on CURVE vs NULL. It is not retried.
	ErrPeerSecurity = errors.New("hub: security handshake with the producer failed")
	// ErrRingReaderTaken is returned by Connect when the channel's ring already
	// has the one reader it allows: a Single_reader ring (one read cursor), or the
	// ring of a Pipeline channel (it cannot split items among consumers; each
	// would read every item). It wraps shm.ErrReaderLocked. The pairs allowed are
	// listed in doc.go, "Ring readers". The next reader may connect once the
	// current one closed or died.
	ErrRingReaderTaken = errors.New("hub: the ring already has its one reader")

	// ErrGroupUnsupported: a consumer group (ConsumerOptions.Group) cannot be
	// joined here: the producer did not confirm it (it does not know groups),
	// or the consumer would read a shared-memory ring whose policy has no
	// cursor per reader (Latest_only, Single_reader; B-7 splits Sync_reader
	// rings only).
	ErrGroupUnsupported = errors.New("hub: consumer group not supported here")
	// ErrNotInitialized is returned by a managed wrapper's Get before its Start
	// succeeded or after its Stop.
	ErrNotInitialized = errors.New("hub: managed object not initialised")
)

// BrokerError is an ERROR reply of the broker. It unwraps to the sentinel of its
// code (ErrSchemaMismatch, ErrChannelNotFound, ...), so callers use errors.Is.
type BrokerError struct {
	Op      string // request type, e.g. "REG_REQ"
	Channel string // channel named in the request ("" when none)
	Code    string // wire error code, e.g. "SCHEMA_MISMATCH"
	Message string // the broker's text
}

// Error implements error.
func (e *BrokerError) Error() string {
	if e.Channel != "" {
		return fmt.Sprintf("%s %q: broker error %s: %s", e.Op, e.Channel, e.Code, e.Message)
	}
	return fmt.Sprintf("%s: broker error %s: %s", e.Op, e.Code, e.Message)
}

// Unwrap returns the sentinel matching Code (nil for an unknown code).
func (e *BrokerError) Unwrap() error { return codeErr(e.Code) }

// codeErr maps a wire error code to its sentinel.
func codeErr(code string) error {
	switch code {
	case "INVALID_REQUEST":
		return ErrInvalidRequest
	case "SCHEMA_MISMATCH":
		return ErrSchemaMismatch
	case "CHANNEL_NOT_FOUND":
		return ErrChannelNotFound
	case "CHANNEL_NOT_READY":
		return ErrChannelNotReady
	case "NOT_REGISTERED":
		return ErrNotRegistered
	case "UNKNOWN_MSG_TYPE":
		return ErrUnknownMessage
	case "VERSION_MISMATCH":
		return ErrVersionMismatch
	}
	return nil
}

// Errors of brokerless discovery (discovery_file.go).
var (
	// ErrDiscoveryDir is returned when the discovery directory cannot be used:
	// it is a symlink, not a directory, another user's, or cannot be created
	// or written.
	ErrDiscoveryDir = errors.New("hub: unusable discovery directory")
	// ErrBadRecord is returned when a channel's discovery record is not a
	// regular file of ours, is too large, or does not parse; the error names
	// the file.
	ErrBadRecord = errors.New("hub: malformed discovery record")
	// ErrChannelInUse is returned by NewProducer without a broker when a live
	// process's discovery record already names the channel.
	ErrChannelInUse = errors.New("hub: channel has a live producer")
)
