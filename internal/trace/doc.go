// Package trace is the protocol trace of B-13: an opt-in record of every
// control message a party sends or receives (['C'][type][body] frames), one
// JSON object per line, to a file or to a slog.Logger.
//
// A record holds the time, the side ("broker", "messenger"), the direction
// ("in", "out"), the message type, the correlation_id and channel_name read
// from the body's top level, the error_code of an ERROR, the peer (the
// broker's ROUTER identity in hex, or the Messenger's broker endpoint), the
// body size in bytes, and for the second message of a correlation id (a reply
// out at the broker, a reply in at the Messenger) the time since the first:
// elapsed_us. Bodies are never written: they may carry keys and metadata, and
// a trace must be safe to hand around.
//
// Bounds: a file is rotated at Config.MaxBytes (the previous one is kept as
// path.1, so at most twice MaxBytes on disk); at most Config.MaxRate records a
// second are written, the rest counted (Status.Dropped) and reported in the
// next record written (dropped_before). The table of open correlation ids is
// capped (maxOpen); ids beyond it get no elapsed_us.
//
// A Tracer is switched on and off at run time (Set); while off, Message costs
// one atomic load. It is safe for concurrent use; Close closes the file.
package trace
