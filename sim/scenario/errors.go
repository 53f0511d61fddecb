package scenario

import "errors"

// ErrScenario is returned when a scenario file (or resolved plan) is invalid:
// unreadable, unknown key, bad value, broken reference. The message names the
// file, the line and the key.
var ErrScenario = errors.New("bad scenario")
