package admin

import "errors"

// Execution.
var (
	// ErrLimit is returned (wrapped, inside the interpreter error) when a script
	// exceeded a limit: steps, wall time, heap growth or the size of one value.
	ErrLimit = errors.New("admin script limit exceeded")
	// ErrNotAvailable is returned by a plh function whose hub hook is not wired
	// (e.g. close() on an engine without a broker).
	ErrNotAvailable = errors.New("not available in this hub")
)

// Requests.
var (
	// ErrUnauthorized is returned when a token is configured and the request's
	// token is missing or differs.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrBadRequest is returned when a request is not a JSON object or lacks a
	// string "code".
	ErrBadRequest = errors.New("bad admin request")
	// ErrBadArgument is returned by a plh function given an unusable argument
	// (e.g. a plh.trace path that is not an absolute .jsonl file).
	ErrBadArgument = errors.New("bad argument")
)

// Server lifecycle.
var (
	// ErrClosed is returned by methods of a closed Engine or Server.
	ErrClosed = errors.New("admin: closed")
	// ErrInsecureBind is returned by Listen when the endpoint is not loopback
	// and no token is configured.
	ErrInsecureBind = errors.New("admin endpoint beyond loopback requires a token")
	// ErrTokenFile is returned when the generated token's file cannot be
	// written or a token file cannot be read.
	ErrTokenFile = errors.New("admin token file")
)
