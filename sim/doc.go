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
// faults_more.go has the rows of consumer_churn (a --churn consumer),
// producer_restart (kill, then a successor of the same node), corrupt_control
// and checkSegmentAfter: once a producer with shared memory died by a signal
// (kill, kill_holding_lock, producer_restart), chaos.CheckSegment's report on
// its segment becomes a segment_check event.
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
// Hosts (hosts.go). A plan with [[hosts]] runs on simulated machines: one
// chaos.Net per run, made before the hub and closed after the last process;
// every process runs on its host (chaos.Host.Argv), the hub and producers
// bind on their host's address, link proxies live inside the node's host; the
// janitor learns the hosts' init groups and the net id; logs/hosts.log names
// them. partition, heal and host_kill are rows of faultTable like the others.
//
// Users' programs (program.go). A node with command runs the user's program
// instead of plh-node (supervisor.spawn: its env and dir), told the node's
// flags as PLH_* variables (programEnv over nodeFlags, one source for both);
// it is supervised, faulted and stopped like any node. For one with events =
// "none" the engine records its ready event at spawn; sim/verdict then judges
// only what the engine saw of it (docs/events.md, "Your own program as a
// node"). sim/simtest runs scenarios from Go tests with this engine.
//
// Explore and shrink (explore*.go, shrink.go). Explore runs one system (a
// Variant with [explore]) again and again, each run's schedule drawn from
// (seed, run number) by a generator over scenario.ExplorePairs: fresh, or a
// mutation (shift, add, drop, retarget, redraw) of a corpus schedule that
// reached new coverage (explore_coverage.go: features of the timeline). A
// schedule becomes a Plan through scenario.WithFaults and Resolve, so it runs
// and replays like a file. The first failed run is shrunk: Shrink drops faults
// (none, halves, … one at a time), then moves them earlier and shortens them;
// a candidate still fails when one of Tries runs fails a verdict of the same
// name. Both write into folders of their own (coverage.tsv, runs.tsv,
// summary.txt, shrink/minimal). They call Run; they hold no state across runs
// but the corpus and the coverage set, so nothing of theirs outlives Explore.
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
