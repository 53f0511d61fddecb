package proto

import (
	"errors"
	"fmt"
)

// Decoding errors (errors.Is). CodeOf maps them to the ERROR code to reply with.
var (
	// ErrMalformed is returned when a message has a bad frame layout or its body is
	// not one JSON object. The broker answers a request that has a reply with
	// INVALID_REQUEST and drops a fire-and-forget message (counted).
	ErrMalformed = errors.New("proto: malformed message")
	// ErrUnknownType is returned for a message type this package does not know.
	ErrUnknownType = errors.New("proto: unknown message type")
	// ErrInvalid is returned when a known field has the wrong JSON type or a
	// required field is missing or empty.
	ErrInvalid = errors.New("proto: invalid request")
	// ErrVersion is returned when a request's protocol_version has another major version.
	ErrVersion = errors.New("proto: protocol version mismatch")
	// ErrTooLarge is returned when a body exceeds MaxBody (or the broker's own
	// body limit): LIMIT_EXCEEDED.
	ErrTooLarge = errors.New("proto: body too large")
	// ErrBadFrames is returned by Parse when a message does not follow the frame
	// layout (too few frames, unknown frame-type byte, empty type).
	ErrBadFrames = errors.New("proto: bad frame layout")
)

// CodeOf returns the ERROR code to reply with for a decoding error, and false for
// an error that is not a decoding error. Whether to reply at all depends on the
// message type too (HasReply): fire-and-forget messages are never answered.
func CodeOf(err error) (Code, bool) {
	switch {
	case errors.Is(err, ErrTooLarge):
		return CodeLimitExceeded, true
	case errors.Is(err, ErrMalformed):
		return CodeInvalidRequest, true
	case errors.Is(err, ErrUnknownType):
		return CodeUnknownMsgType, true
	case errors.Is(err, ErrVersion):
		return CodeVersionMismatch, true
	case errors.Is(err, ErrInvalid):
		return CodeInvalidRequest, true
	}
	return "", false
}

// RemoteError is the error a client gets for an ERROR reply; errors.Is matches
// it against the sentinel of its code (ErrSchemaMismatch, ...).
type RemoteError struct {
	Code    Code
	Message string
}

func (e *RemoteError) Error() string { return fmt.Sprintf("broker error %s: %s", e.Code, e.Message) }

// Sentinels per error code, matched by errors.Is on a *RemoteError.
var (
	ErrInvalidRequest  = errors.New(string(CodeInvalidRequest))
	ErrSchemaMismatch  = errors.New(string(CodeSchemaMismatch))
	ErrChannelNotFound = errors.New(string(CodeChannelNotFound))
	ErrChannelNotReady = errors.New(string(CodeChannelNotReady))
	ErrNotRegistered   = errors.New(string(CodeNotRegistered))
	ErrUnknownMsgType  = errors.New(string(CodeUnknownMsgType))
	ErrVersionMismatch = errors.New(string(CodeVersionMismatch))
	ErrLimitExceeded   = errors.New(string(CodeLimitExceeded))
)

var codeSentinel = map[Code]error{
	CodeInvalidRequest: ErrInvalidRequest, CodeSchemaMismatch: ErrSchemaMismatch,
	CodeChannelNotFound: ErrChannelNotFound, CodeChannelNotReady: ErrChannelNotReady,
	CodeNotRegistered: ErrNotRegistered, CodeUnknownMsgType: ErrUnknownMsgType,
	CodeVersionMismatch: ErrVersionMismatch, CodeLimitExceeded: ErrLimitExceeded,
}

// Is makes errors.Is(err, proto.ErrSchemaMismatch) work on a *RemoteError.
func (e *RemoteError) Is(target error) bool { return codeSentinel[e.Code] == target }

// Err returns nil for a success reply and a *RemoteError for an error reply.
func Err(r Reply) error {
	h := r.reply()
	if h.OK() {
		return nil
	}
	e := &RemoteError{Message: h.Message}
	if er, ok := r.(*ErrorReply); ok {
		e.Code = er.ErrorCode
	}
	return e
}
