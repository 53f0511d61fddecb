package hub

import "errors"

// Errors of Producer and Consumer (channels). Every returned error wraps one of
// these (or one of errors.go) with the operation and channel.
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
)
