// Package broker is the discovery and liveness broker of spec/protocol.md §4–§8:
// a ROUTER (internal/wire) that keeps the channel registry, answers the requests
// of broker/proto with one handleXxx per message, and pushes
// CHANNEL_CLOSING_NOTIFY, CHANNEL_ERROR_NOTIFY, CONSUMER_DIED_NOTIFY and
// CHANNEL_EVENT_NOTIFY. Start runs it in-process (B-6); cmd/plh-hub runs it as a
// process.
//
// Goroutines: recvLoop (decode + handle, one message at a time), repairLoop
// (policy Repair only: Config.RepairSlot for each queued CHECKSUM_ERROR_REPORT,
// one at a time, without s.mu; at most repairQueue wait, more are answered
// repair_failed at once; repair.go), sweepLoop
// (channel heartbeat timeout, consumer heartbeat timeout (B-3), stale entries;
// every SweepInterval), livenessLoop (/proc liveness of unwatched consumers,
// every LivenessInterval), and the one proc.Watch goroutine that
// reports the exit of local consumers through their pidfds (onProcessExit, well
// under 100 ms); a consumer's pidfd is closed as soon as its last entry goes.
// Close stops all of them.
//
// Lock: Service.mu guards the registry. Every handler, sweep and exit callback
// runs under it, and none of them blocks while holding it: replies and
// notifications are queued with wire.Router.Send, which never blocks. So timers
// never wait behind a slow peer (B-18). Lock order: Service.mu → proc.Watch's
// lock (Add/Remove); the Watch never calls back while holding its own lock.
//
// Consumer liveness (docs/protocol.md "Consumer liveness"): a consumer is
// judged by /proc on this host only when its consumer_hostname is ours, or empty
// from an original client that never heartbeats; it is then watched with a pidfd
// (exact process when consumer_start_time is given) or, if that fails, checked by
// the liveness sweep (LivenessInterval). An empty hostname with a start time that
// names a live local process exactly is also watched by pidfd. Every other
// consumer is judged by its heartbeats (ConsumerTimeout). One entry per consumer
// process and channel: a registration of the same process replaces its entry.
// The sweep copies its candidates under s.mu, reads /proc without it, and removes
// the dead under it again.
//
// Registry keys are logical names (proto.LogicalName, B-21): a display suffix
// " | pid:<pid>-<n>" is cut before every lookup; the entry keeps the display
// name of its latest registration (channel.name) for listings and notices.
//
// Schema registry (B-9): the registration's descriptor (schema_name,
// schema_version, schema_blds) is kept in the entry and returned on DISC_ACK
// and by Schemas. A registration with another schema_hash replaces the entry
// only when both carry a descriptor and proto.CheckSchema finds the new one
// compatible (schemaConflict); otherwise SCHEMA_MISMATCH naming the reason.
//
// Protocol trace (B-13, trace.go): handle traces every message in, send every
// message out, through internal/trace (off by default: one atomic load);
// Config.Trace at start, SetTrace at run time (the admin shell's plh.trace).
//
// Limits (Config.Limits) bound the registry and the input; a request over one
// gets LIMIT_EXCEEDED (Stats.LimitsExceeded). CHANNEL_LIST is paged; the names are
// sorted outside s.mu. Log lines a client can provoke go through limitedLog
// (log.go): a burst per kind of line, then a count of the suppressed ones.
//
// Security: the ROUTER is a CURVE server by default (Config.Curve; zero value =
// CURVE, Curve.Disabled = NULL; internal/wire/curve through wire's Security
// seam): key pair given, kept in a keys directory (curve.LoadOrCreate, B-1) or
// fresh per Start; optional client allowlist. A refused handshake only drops that connection (Stats.Wire).
//
// Bad input: a message that is not ['C'][type][body], or a fire-and-forget
// message that fails to decode, is dropped and counted (Stats.Dropped); every
// other control message gets an ERROR reply: unknown or unusable type frames
// UNKNOWN_MSG_TYPE, bad bodies and fields INVALID_REQUEST, broken limits
// LIMIT_EXCEEDED, version mismatches VERSION_MISMATCH. Counters per
// message type, error code and notification type are in Stats (B-13); each
// registry entry also keeps its own (channel_counters.go, ChannelDetail.Counters:
// fixed arrays updated under s.mu, kept across a producer re-registration, gone
// with the entry).
package broker
