package hubd

import "errors"

// ErrConfig is returned by LoadConfig when a configuration source has a key
// of the wrong type, or the explicit config file is unreadable or not JSON, and
// by the Config accessors (AdminSettings, AllowedClients) for a malformed key.
var ErrConfig = errors.New("hubd: bad configuration")

// ErrRepair wraps why RepairSlot could not repair a reported slot (segment
// missing or not a DataBlock, not the registered producer's, slot out of
// range). The broker sends its text as broker_detail with repair_failed.
var ErrRepair = errors.New("hubd: checksum repair refused")

// StartError is what Start returns: Op names the part that failed ("admin" for
// the admin shell, startup script or metrics server, "broker" for the broker);
// its message is the underlying error's.
type StartError struct {
	Op  string
	Err error
}

func (e *StartError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *StartError) Unwrap() error { return e.Err }
