package curve

import "errors"

// Keys and endpoints.
var (
	// ErrBadKey is returned when a key is not 40 Z85 characters (or 32 bytes), or a
	// Z85 string has a length that is not a multiple of 5 or a character outside
	// the alphabet.
	ErrBadKey = errors.New("curve: bad key")
	// ErrKeyFile is returned when a keys directory holds a key file that cannot be
	// trusted: readable by group or others, malformed, or inconsistent with its
	// public half.
	ErrKeyFile = errors.New("curve: bad key file")
	// ErrEndpoint is returned when an endpoint is malformed, names an unknown or
	// released key handle, or has the wrong role (client handle used to listen).
	ErrEndpoint = errors.New("curve: bad endpoint")
	// ErrClosed is returned by Accept after the listener was closed.
	ErrClosed = errors.New("curve: closed")
)

// Handshake. Every handshake failure wraps ErrHandshake plus, where one applies,
// a more specific sentinel below.
var (
	// ErrHandshake is returned when the CURVE handshake with a peer failed.
	ErrHandshake = errors.New("curve: handshake failed")
	// ErrHandshakeTimeout is returned when the peer did not finish the handshake
	// within the configured deadline (a silent or truncated peer).
	ErrHandshakeTimeout = errors.New("curve: handshake deadline exceeded")
	// ErrMechanism is returned when the peer's greeting is not ZMTP 3 with the
	// CURVE mechanism in the expected role (e.g. a NULL peer, or two servers).
	ErrMechanism = errors.New("curve: peer does not speak ZMTP 3 CURVE in the expected role")
	// ErrMalformed is returned when a handshake command has the wrong name, size
	// or layout, or metadata is not a valid ZMTP property list.
	ErrMalformed = errors.New("curve: malformed command")
	// ErrWrongKey is returned when a handshake box does not open: the client used
	// a server public key that is not this server's (server side), or the server
	// is not the holder of the expected public key (client side).
	ErrWrongKey = errors.New("curve: cryptographic box did not open (wrong key?)")
	// ErrUnknownClient is returned (and logged by the server) when a client's
	// permanent public key is not in the server's allowlist.
	ErrUnknownClient = errors.New("curve: client key not allowed")
	// ErrRefused is returned to a client whose server answered with an ERROR
	// command (e.g. its key is not allowed); the reason is quoted.
	ErrRefused = errors.New("curve: server refused the connection")
)

// Message phase: every one of these drops the connection.
var (
	// ErrTampered is returned when a MESSAGE box fails authentication.
	ErrTampered = errors.New("curve: message failed authentication (tampered or wrong key)")
	// ErrReplay is returned when a MESSAGE short nonce is not strictly greater
	// than the previous one (a replayed or reordered message).
	ErrReplay = errors.New("curve: message nonce not increasing (replayed message)")
	// ErrTooLarge is returned when a frame is larger than the configured limit.
	ErrTooLarge = errors.New("curve: frame too large")
	// ErrProtocol is returned for any other protocol violation by the peer or by
	// the local zmq4 socket (e.g. a frame that is not a MESSAGE).
	ErrProtocol = errors.New("curve: protocol error")
)
