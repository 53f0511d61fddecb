package wire

import (
	"errors"
	"io"
)

// Errors returned by sockets of this package.
var (
	// ErrClosed is returned by every method called after Close, and by calls that
	// were blocked when Close ran.
	ErrClosed = errors.New("wire: socket closed")
	// ErrQueueFull is returned by Send when the bounded send queue of the peer (or
	// of the socket) is full: the message is dropped and counted, never waited for.
	ErrQueueFull = errors.New("wire: send queue full")
	// ErrNotConnected is returned by Dealer.Send and Dealer.WaitConnected when the
	// socket has no live connection to its peer (the peer was lost, or never seen).
	ErrNotConnected = errors.New("wire: not connected")
	// ErrBadEndpoint is returned when an endpoint is not tcp://host:port or ipc://path.
	ErrBadEndpoint = errors.New("wire: bad endpoint")
	// ErrHandshake is wrapped by every reason a listener gives for refusing a
	// peer's ZMTP greeting or READY (logged, counted in Stats.HandshakeFailures),
	// and by a dial whose peer announced a socket type zmq4 does not know.
	ErrHandshake = errors.New("wire: bad ZMTP handshake")
	// ErrTooLarge is returned by Send when a message exceeds the socket's limits.
	ErrTooLarge = errors.New("wire: message too large")
)

// errNotDirect: a connection cannot take a direct write now (zmq4 is mid-message
// on it); the Router hands the messages to zmq4 instead.
var errNotDirect = errors.New("wire: connection not ready for direct writes")

// errViolation is what a guarded connection returns from Read when the peer broke
// a limit (oversized frame, too many frames, bad greeting, silent handshake). It
// wraps io.EOF so zmq4 marks the connection closed and drops it.
type violation struct{ what string }

func (v *violation) Error() string { return "wire: peer violated limits: " + v.what }
func (v *violation) Unwrap() error { return io.EOF }
