// Package scenario is the model of a plh-sim fault story: the TOML schema of
// docs/scenarios.md, its strict decoding, validation and resolution into an
// explicit schedule. It runs nothing; the engine (package sim) runs a Plan and
// package verdict judges it.
//
// Load decodes a file strictly (unknown key or bad value → ErrScenario naming
// file, line and key), lays its includes under it (values of the file win,
// lists are appended), expands its matrix into Variants and validates each one:
// required keys, enum values (case-insensitive, normalised to their canonical
// spelling), references between parts (fault targets and their roles,
// expectation nodes and fault ids), and per fault kind what that kind needs
// (FaultRules, one row per kind). Durations must be strings in Go syntax.
//
// invariants.go names the built-in invariants ([invariants], each turned off
// only with a reason) and checks the resource and delivery expectations and
// per_fault; Distinct random faults draw (kind, target) pairs without
// replacement.
//
// program.go checks a node's command, env, dir and events (a user's own
// program instead of plh-node): the program must be found (relative to dir,
// or on PATH), and dir is made absolute against the scenario file's folder so
// a resolved plan runs from anywhere.
//
// explore.go holds the [explore] table (ExploreSpec: what `plh-sim explore`
// may draw), the (kind, target) pairs it may draw (ExplorePairs), WithFaults
// (a variant with a given schedule, for explore's and shrink's candidates),
// SourceVariant (the variant a resolved plan came from) and the checks and
// defaults of consumer_churn, producer_restart, hub_pause, corrupt_control.
//
// Resolve turns a Variant and a seed into a Plan: nodes named per instance
// (c → c1, c2), random faults drawn from the seed (math/rand PCG seeded per
// block), fault ids made unique, defaults filled (exit modes, shm and secrets of
// a channel). Resolve is pure, so the same variant and seed give the same Plan
// and Plan.Encode the same bytes (resolved.toml); LoadPlan reads it back for
// `plh-sim replay`.
package scenario
