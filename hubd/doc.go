// Package hubd is the hub process as a library: its layered configuration and
// the parts it runs around the broker. cmd/plh-hub (through cmd/internal/hubrole,
// which owns the flags, events and signals) is its one user; applications that
// only talk to a hub use package hub, which knows nothing of this one.
//
// Pieces:
//
//   - Config (config.go) is the hub configuration of spec/api.md §9, loaded by
//     LoadConfig in layers: built-in defaults < config_dir's hub.default.json <
//     hub.user.json (or one explicit file instead), then the PYLABHUB_*
//     environment. A key of the wrong type is an ErrConfig naming file and key.
//     config_admin.go reads the admin shell's and metrics' own keys from the
//     merged JSON; config_security.go the CURVE keys (docs/security.md);
//     config_limits.go the broker limits (broker.max_*, PYLABHUB_BROKER_*).
//
//   - Config.BrokerConfig (hub.go) maps the broker keys onto broker.Config; the
//     caller applies its overrides (flags, CURVE) before Start.
//
//   - Start (hub.go) configures the admin shell (shell.go: admin endpoint
//     check, metrics hook on the broker's request timing), starts the broker,
//     runs the startup script in the admin engine, then serves the metrics and
//     the admin endpoint. Without admin.token (and without the unsafe
//     admin.allow_no_token) the shell gets a generated token, kept in the
//     endpoint's 0600 token file (ready field admin_token_file) and removed
//     on Close. Its error is a *StartError naming the failed part;
//     nothing is left running after a failure. Hub.Close stops them in reverse
//     order, the broker last.
//
//   - The admin shell itself (Starlark engine, protocol, server, metrics) is
//     the subpackage hubd/admin.
//
//   - RepairSlot (repair.go) is the broker's hook for checksum_repair_policy
//     "Repair" (B-16, opt-in and dangerous): the broker queues each
//     CHECKSUM_ERROR_REPORT on its repair goroutine and calls it; it opens the
//     segment as a diagnostic tool, checks the segment is the registered
//     producer's, and recomputes the reported slot's hash if it fails. Why a
//     hook: the broker stays free of shm (a registry any host talks to); the
//     hub process runs beside its host's producers and can map their segments.
//
// Imports: broker, broker/proto, shm (RepairSlot only), internal/wire (and its
// curve subpackage); never hub.
package hubd
