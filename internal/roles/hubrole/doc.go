// Package hubrole is the plh-hub program as a library: Main parses flags, loads
// the layered HubConfig (hub.LoadHubConfig), starts the broker, writes one
// "ready" event on stdout (docs/events.md), logs to stderr, and on ctx
// cancellation (first SIGINT/SIGTERM, handled by the caller with
// internal/shutdown) waits --shutdown-delay (still serving), stops everything
// and writes an "exit" event; a second signal meanwhile is the caller's exit(1).
// CURVE (curve.go): broker.use_curve / --curve / --no-curve, keys dir and
// allowlist become broker.Config.Curve; the ready event carries "pubkey". cmd/plh-hub and
// plh-sim (re-executing itself) both call Main.
//
// Extension: other files of this package add optional parts (admin endpoint,
// startup script, metrics server) without touching this file:
//
//	func init() { registerModule(module{name: "admin", flags: ..., start: ...}) }
//
// A module's flags are added to the FlagSet, its start runs after the broker is
// up (with the *Hub: config, broker Service, logger, ready-event fields), and the
// func it returns runs at shutdown in reverse order.
package hubrole
