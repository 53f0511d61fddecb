// Package proto defines every control message of the broker protocol
// (spec/protocol.md §5–§7 plus plh's additions: CONSUMER_HEARTBEAT_REQ, PING_REQ,
// CHANNEL_LIST_REQ, CHANNEL_CLOSE_REQ) as Go types, their JSON bodies, the frame
// envelope of spec/protocol.md §2 (Frame, ControlFrames, DataFrames, Parse:
// ['C'][TYPE][json] for control, ['A'][payload] for data), protocol versions and
// error codes. It imports no plh package: internal/wire moves the frames as bytes.
// The wire contract in prose is docs/protocol.md.
//
// Decoding is strict about what matters and tolerant about the rest: a body must
// be one JSON object nested at most MaxDepth deep (ErrMalformed / ErrInvalid: the
// broker replies INVALID_REQUEST to requests that have a reply, drops
// fire-and-forget ones); a body over MaxBody is ErrTooLarge (LIMIT_EXCEEDED); a
// known field of the wrong JSON type, a negative or fractional pid, a registration
// pid outside 1..PidMax, a missing required field, or a channel_name that is not
// printable UTF-8 (ValidName) is ErrInvalid (INVALID_REQUEST); unknown fields are
// ignored, because original clients send extras such as "msg_type". A request whose protocol_version has another major
// version is ErrVersion (VERSION_MISMATCH); a request without protocol_version
// is accepted (original clients never send it).
//
// Schema descriptors (schema.go, B-9): Schema, the BLDS grammar check
// (SchemaFields), version packing and CheckSchema, the one compatibility policy
// that both the broker (re-registration) and the hub (a consumer's expectation)
// apply. Logical names (name.go, B-21): LogicalName cuts a display suffix
// " | pid:<pid>-<n>"; the broker compares channel names through it.
//
// The package is pure data: no goroutines, no I/O, no state.
package proto
