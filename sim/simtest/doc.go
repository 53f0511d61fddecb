// Package simtest runs plh-sim scenarios from a team's own Go tests (Ginkgo
// or plain testing) and asserts on their outcome with Gomega matchers.
//
// An Engine runs a scenario file (RunFile) or a scenario.Scenario built in Go
// (RunScenario, which writes it as TOML next to its run folder and loads it
// like a file, so it is validated exactly as plh-sim validates files). The
// engine runs in the test's process (sim.Run); the hub, the plh-node nodes
// and the janitor are a plh-sim binary's roles (Engine.Bin), users' own
// programs their own commands. A Result holds the report, the run folder and,
// on demand, the merged timeline.
//
// Matchers: Pass (the run passed), HaveVerdict (an expectation, invariant or
// end-state check by name ended with a status), HoldInvariant (a built-in
// invariant held), HaveEventWithin (an event of a kind at a node within a
// deadline after run start or a fault). Every failure message names the run
// folder, where results.json, events.jsonl, timeline.html and logs/ explain
// the run.
//
// simtest imports Gomega, so it is for tests only: no binary links it
// (internal/archtest).
package simtest
