// Package verdict checks a run's merged timeline against its plan: the
// scenario's expectations (event, never, count, metric, exit) and the
// end-state checks every run gets (no process left running, no segment left
// behind, every node ended as its exit mode says). Evaluate is a pure function
// of (plan, timeline, channel names), unit-tested over synthetic timelines;
// the engine (package sim) calls it after a run and package report writes what
// it returns.
//
// Built-in invariants (invariants.go, registry.go, deaths.go, sequences.go),
// one check per name of scenario.Invariants, follow the end-state checks:
// registry_matches, consumers_read, no_false_death, ordered_complete,
// hub_resources_return, hub_resources_steady; a plan may turn one off with a
// reason. sequences.go also holds the delivery expectation (per producer
// incarnation, from the read events' from_pid), resource.go the resource
// expectation and per_fault bounds.
//
// A window starts at its anchor (run start or a fault's firing) plus `from` and
// ends at `within`/`to` after the anchor or at run_end. Every verdict carries
// its evidence: the anchor event and the first match, the offenders, or the
// near misses (same kind at that node) when nothing matched. A Report's status
// is the worst of its verdicts (fail > inconclusive > pass); a fault that could
// not fire makes a passing run inconclusive. The exit codes of plh-sim
// (ExitPass … ExitError) are the Report's.
package verdict
