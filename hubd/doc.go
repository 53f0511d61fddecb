// Package hubd is the hub process as a library: its layered configuration and
// the parts it runs around the broker. cmd/plh-hub (through cmd/internal/hubrole,
// which owns the flags, events and signals) is its one user; applications that
// only talk to a hub use package hub, which knows nothing of this one.
//
// Pieces:
//   - Config (config.go) is the hub configuration of spec/api.md §9, loaded by
//     LoadConfig in layers: built-in defaults < config_dir's hub.default.json <
//     hub.user.json (or one explicit file instead), then the PYLABHUB_*
//     environment. A key of the wrong type is an ErrConfig naming file and key.
//     config_admin.go reads the admin shell's and metrics' own keys from the
//     merged JSON; config_security.go the CURVE keys (docs/security.md).
//   - Config.BrokerConfig (hub.go) maps the broker keys onto broker.Config; the
//     caller applies its overrides (flags, CURVE) before Start.
//   - Start (hub.go) configures the admin shell (shell.go: admin endpoint
//     check, metrics hook on the broker's request timing), starts the broker,
//     runs the startup script in the admin engine, then serves the metrics and
//     the admin endpoint. Without admin.token (and without the unsafe
//     admin.allow_no_token) the shell gets a generated token, kept in the
//     endpoint's 0600 token file (ready field admin_token_file) and removed
//     on Close. Its error is a *StartError naming the failed part;
//     nothing is left running after a failure. Hub.Close stops them in reverse
//     order, the broker last.
//   - The admin shell itself (Starlark engine, protocol, server, metrics) is
//     the subpackage hubd/admin.
//
// Imports: broker, broker/proto, internal/wire (and its curve subpackage); never
// hub.
package hubd
