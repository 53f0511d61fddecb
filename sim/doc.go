// Package sim is the scenario engine: it runs a resolved scenario (a
// scenario.Plan) with real processes, injects its faults on schedule, merges
// every process's event stream into one timeline and hands it to
// verdict.Evaluate; report writes the run folder. docs/scenarios.md is the
// user's reference; this is the design of the engine. The parts:
//
//   - sim/scenario: the scenario model: decode (strict TOML, includes, matrix),
//     validate, resolve into a Plan (pure: the same seed gives a byte-identical
//     resolved.toml).
//   - sim/verdict: expectations and end-state checks over a timeline (pure).
//   - sim/report: results.json, junit.xml, timeline.html, events.jsonl,
//     resolved.toml and replay.sh of a run folder.
//   - sim (this package): run, supervisor, collector, faults, janitor, progress.
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
// Faults. faults.go holds one table, faultTable, with a row per fault kind:
// its name, its inject (the action, through chaos, and the detail of the fault
// event) and, for a kind with a duration, its undo (run at fault_end). What a
// kind needs (target role, keys) is validated before any run by
// sim/scenario, which cannot see the engine; a test keeps faultTable equal to
// scenario.FaultKinds. chaos holds the primitives the rows call.
//
// Resources and invariants. resources.go samples every running child every
// 500 ms (/proc/PID/fd, /proc/PID/status) into `resource` events under the
// child's name, and the hub with its goroutines (a {"cmd":"stats"} control
// line, answered by a stats event) at baseline, t0, run_end and once every
// node ended (quiesced, via supervisor.beforeHub). invariants.go records, at
// run_end, the live parties and the hub's registry ({"cmd":"snapshot"} →
// registry event), asking again while verdict.RegistryDiff finds
// disagreements; and, for a node that died without an exit event, the reads
// or writes its status file counted beyond its events (supervisor.recordTail).
// sim/verdict judges all of it (the built-in invariants).
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
