package scenario

import (
	"slices"

	"github.com/pylabhub/plh/chaos"
)

// Kinds of events beyond the node's usual stream that the engine itself relies
// on or records (docs/events.md, docs/scenarios.md).
const (
	// KindLockHeld is written by a producer holding a write slot after a
	// hold_lock control line.
	KindLockHeld = chaos.LockHeldKind
	// KindLockReclaimed and KindLockReclaimFailed are recorded by the engine
	// after a kill_holding_lock fault.
	KindLockReclaimed     = "lock_reclaimed"
	KindLockReclaimFailed = "lock_reclaim_failed"
	// KindSegmentCheck is recorded by the engine after a producer with shared
	// memory was killed: chaos.CheckSegment's report on its segment.
	KindSegmentCheck = "segment_check"
)

// EventKinds is every event kind of docs/events.md's "Kinds" table (node
// kinds and the engine's own), with the fields it may carry besides t, node
// and kind. Validation checks an expectation's kind and match keys against it,
// so a misspelt kind or field is an error instead of a check that never
// matches; a test keeps it equal to docs/events.md.
var EventKinds = map[string][]string{
	// Every process.
	"ready": {"endpoint", "pubkey", "admin_endpoint", "admin_token_file", "metrics_addr", "pid", "role", "channel"},
	"error": {"error", "op"},
	"exit": {"code", "reason", "written", "read", "lost", "gaps", "reorders", "checksum_errors", "stalls",
		"written_upstream", "read_upstream", "signal", "recorded_by"},
	"stats":    {"goroutines", "channels", "consumers"},
	"resource": {"pid", "fds", "threads", "rss_kb", "goroutines", "phase", "recorded_by"},
	// The hub, on a snapshot control line.
	"registry": {"channels"},
	// Clients (producer, consumer).
	"registered":      {"channel", "pattern", "shm"},
	"discovered":      {"channel", "pattern", "shm_name", "consumer_count"},
	"attached":        {"channel", "shm", "reason"},
	"consumer_joined": {"channel", "identity", "consumer_pid"},
	"consumer_left":   {"channel", "identity"},
	"consumer_died":   {"channel", "consumer_pid", "reason"},
	"notification": {"type", "channel", "reason", "event", "consumer_pid", "existing_schema_hash",
		"attempted_schema_hash", "attempted_pid", "slot_index", "error", "reporter_pid", "broker_action", "broker_detail",
		"shm_name", "layout_generation", "final_seq"},
	"producer_lost":              {"channel"},
	"producer_restarted":         {"channel", "producer_pid"},
	"slow_consumer":              {"channel", "identity", "consumer_pid", "action", "missed"},
	"missed":                     {"channel", "missed"},
	"slow_disconnected":          {"channel", "reason"},
	"holding":                    {"channel", "seq", "id"},
	"broker_lost":                {"endpoint"},
	"broker_reconnected":         {"endpoint", "channels"},
	"backpressure_stall":         {"channel", "duration_ns", "path", "reported", "written"},
	"backpressure_stall_start":   {"channel", "waited_ns", "path"},
	"backpressure_stall_ongoing": {"channel", "waited_ns", "path"},
	"written":                    {"channel", "count", "first_seq", "last_seq", "bytes", "upstream", "from_pid", "tail", "recorded_by"},
	"read": {"channel", "count", "first_seq", "last_seq", "bytes", "lat_p50_ns", "lat_max_ns", "gaps", "lost",
		"from_pid", "upstream", "tail", "recorded_by"},
	"gap":             {"channel", "expected", "got", "lost", "gaps", "from_pid"},
	"reorder":         {"channel", "prev", "got", "from_pid"},
	"checksum_error":  {"channel", "slot_index", "seq", "slot_id", "source", "upstream"},
	KindLockHeld:      {"channel", "slot_index", "seq"},
	"ring_error":      {"channel", "error", "cause", "count", "ongoing", "duration_ns"},
	"ring_reattached": {"channel", "error", "reattached"},
	"remap":           {"channel", "layout_generation", "shm_name", "slots", "duration_ns"},
	"remapped":        {"channel", "layout_generation", "from", "shm_name", "final_seq", "read"},
	"remap_failed":    {"channel", "error", "layout_generation"},
	// The engine (node plh-sim).
	"spawned":      {"target", "role", "pid"},
	"run_start":    {"duration_ns", "seed"},
	"fault":        {"id", "fault", "target", "detail", "duration_ns"},
	"fault_failed": {"id", "fault", "target", "error"},
	"fault_end":    {"id", "fault", "target", "detail"},
	KindLockReclaimed: {"id", "target", "channel", "slot_index", "holder_pid", "holder", "by", "how",
		"write_lock_contention", "recovery_actions", "stuck_seen", "stuck_duration_ms", "reacquired", "duration_ns"},
	KindLockReclaimFailed: {"id", "target", "channel", "slot_index", "holder_pid", "holder", "stuck_seen", "error"},
	"process_end":         {"target", "role", "pid", "code", "signal", "forced", "stopped"},
	KindSegmentCheck:      {"id", "target", "channel", "ok", "problems", "slots_verified", "bad_slots", "detail", "error"},
	"end_state":           {"leaked", "leftover_segments"},
	"run_end":             {},
	"parties":             {"parties"},
	"no_hub":              {"discovery_dir"},
	"interrupted":         {"reason"},
}

// hasField reports whether events of kind carry field.
func hasField(kind, field string) bool { return slices.Contains(EventKinds[kind], field) }

// MetricSource says which events a metric reads: their kind, the field it
// aggregates and how ("count", "sum" or "max").
func MetricSource(m Metric) (kind, field, agg string) {
	switch m {
	case "stalls":
		return "backpressure_stall", "", "count"
	case "stall_ns":
		return "backpressure_stall", "duration_ns", "sum"
	case "lost":
		return "gap", "lost", "sum"
	case "gaps":
		return "gap", "", "count"
	case "reorders":
		return "reorder", "", "count"
	case "checksum_errors":
		return "checksum_error", "", "count"
	case "written":
		return "written", "count", "sum"
	case "read":
		return "read", "count", "sum"
	case "latency_max_ns":
		return "read", "lat_max_ns", "max"
	case "latency_p50_ns":
		return "read", "lat_p50_ns", "max"
	case "stuck_duration_ms":
		return KindLockReclaimed, "stuck_duration_ms", "max"
	case "broker_lost", "broker_reconnected":
		return string(m), "", "count"
	}
	return string(m), "", "count"
}
