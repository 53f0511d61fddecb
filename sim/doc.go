// Package sim is the scenario engine: it reads fault stories written in TOML,
// runs them with real processes and says, with evidence, whether the system
// behaved. docs/scenarios.md is the user's reference; this is the design.
//
// Pipeline. Load decodes a file strictly (unknown key or bad value → ErrScenario
// naming file, line and key), lays its includes under it, expands its matrix
// into Variants and validates them. Resolve turns a Variant and a seed into a
// Plan: nodes named per instance, random faults drawn from the seed (math/rand
// PCG seeded per block), defaults filled. Resolve is pure, so the same seed
// gives a byte-identical resolved.toml. Run executes a Plan; Evaluate checks a
// Plan's expectations against a merged event timeline and is pure too (unit
// tested over synthetic timelines).
//
// Run. The supervisor starts every process (hub, producers, consumers,
// intruders) in its own process group with a parent-death SIGKILL; stdout is
// parsed as the event stream of docs/events.md into one collector, stderr goes to
// logs/NAME.log, stdin carries control lines (chaos.Command). A janitor process
// (RunJanitor; `plh-sim janitor`) learns every group and segment and cleans up
// if the engine itself is killed. Phases: hub ready → producers ready →
// consumers ready → t0 (run_start) → faults and delayed spawns at t0+offset,
// each in its own goroutine → t0+duration (run_end) → stop tier by tier
// (consumers, producers, hub: SIGTERM, SIGKILL after stop_grace) → leaked
// process groups and leftover segments recorded (end_state) and swept.
//
// Timeline. All times are CLOCK_MONOTONIC nanoseconds (proc.Now), the clock of
// every process on the host, so sorting by t merges the streams. The engine
// records its own events under node "plh-sim": spawned, run_start, fault,
// fault_failed, fault_end, process_end, end_state, run_end, interrupted; and an
// exit event for a process that died without writing one.
//
// Goroutines: per child one reader (stdout → collector, then Wait); per
// scheduled action one timer goroutine; chaos proxies' own. Run returns only
// after all of them ended and every child was reaped. Locks: run.mu (endpoint,
// proxies, t0), supervisor.mu (children), child.mu (flags), collector.mu
// (events); none is held while taking another, and none across I/O.
package sim
