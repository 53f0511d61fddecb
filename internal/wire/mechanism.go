package wire

import "strings"

// zmq4BadMechanism is the text of zmq4 v0.17.0's unexported errBadSec
// (protocol.go), returned by its handshake when the peer's greeting names another
// security mechanism: a NULL socket of ours facing a CURVE peer.
const zmq4BadMechanism = "invalid or unsupported security mechanism"

// IsMechanismMismatch reports whether err (a DialFailed event's cause, or a
// Dial error) says the peer announced another security mechanism than ours in
// its ZMTP greeting (e.g. a NULL Dealer dialling a CURVE Router). Redialling
// cannot help; callers fail at once instead of waiting for their deadline.
// A CURVE Dealer facing a NULL peer fails inside the Security instead (the
// Security's own sentinel, e.g. curve.ErrHandshake).
func IsMechanismMismatch(err error) bool {
	return err != nil && strings.Contains(err.Error(), zmq4BadMechanism)
}
