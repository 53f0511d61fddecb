package sim

import "errors"

// ErrHarness is returned when the engine itself could not run a scenario: a
// process could not be started, a run folder could not be written, the system
// did not come up within startup_timeout.
var ErrHarness = errors.New("harness error")
