package sim

import "errors"

// Errors of loading and running scenarios.
var (
	// ErrScenario is returned when a scenario file (or resolved plan) is invalid:
	// unreadable, unknown key, bad value, broken reference. The message names the
	// file, the line and the key.
	ErrScenario = errors.New("bad scenario")

	// ErrHarness is returned when the engine itself could not run a scenario: a
	// process could not be started, a run folder could not be written, the system
	// did not come up within startup_timeout.
	ErrHarness = errors.New("harness error")
)
