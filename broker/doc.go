// Package broker is the discovery and liveness broker of spec/protocol.md §4–§8:
// a ROUTER (internal/wire) that keeps the channel registry, answers the requests
// of broker/proto with one handleXxx per message, and pushes
// CHANNEL_CLOSING_NOTIFY, CHANNEL_ERROR_NOTIFY, CONSUMER_DIED_NOTIFY and
// CHANNEL_EVENT_NOTIFY. Start runs it in-process (B-6); cmd/plh-hub runs it as a
// process.
//
// Goroutines: recvLoop (decode + handle, one message at a time), sweepLoop
// (channel heartbeat timeout, consumer heartbeat timeout (B-3), /proc liveness of
// unwatched consumers; every SweepInterval), and the one proc.Watch goroutine that
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
// Consumer liveness: a CONSUMER_REG_REQ from this host (consumer_hostname "" or
// ours) naming a live pid is watched with a pidfd (exact process when
// consumer_start_time is given). A pid that is not alive at registration is left
// to the liveness sweep (LivenessInterval), as the original did. Consumers that
// registered with a protocol_version (plh clients) or that ever sent
// CONSUMER_HEARTBEAT_REQ are removed after ConsumerTimeout of silence.
//
// Security: the ROUTER is a CURVE server by default (Config.Curve; zero value =
// CURVE, Curve.Disabled = NULL; internal/wire/curve through wire's Security
// seam): key pair given, kept in a keys directory (curve.LoadOrCreate, B-1) or
// fresh per Start; optional client allowlist. A refused handshake only drops that connection (Stats.Wire).
//
// Bad input: a bad frame layout, non-JSON body, or a fire-and-forget message
// that fails to decode is dropped and counted (Stats.Dropped); unknown types,
// invalid fields and version mismatches get an ERROR reply. Counters per
// message type, error code and notification type are in Stats (B-13); each
// registry entry also keeps its own (channel_counters.go, ChannelDetail.Counters:
// fixed arrays updated under s.mu, kept across a producer re-registration, gone
// with the entry).
package broker
