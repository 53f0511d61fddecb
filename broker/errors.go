package broker

import "errors"

// Errors of the broker's Go API.
var (
	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("broker: closed")
	// ErrChannelNotFound is returned by CloseChannel for an unknown channel.
	ErrChannelNotFound = errors.New("broker: channel not found")
	// ErrBadConfig is returned by Start when the Config is invalid.
	ErrBadConfig = errors.New("broker: bad config")
)
