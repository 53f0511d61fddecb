// Package hubrole is the plh-hub program's wiring: Main parses flags, loads the
// layered configuration (hubd.LoadConfig), applies the flag overrides to the
// broker configuration, starts the hub process (hubd.Start: broker, admin
// shell, startup script, metrics), writes one "ready" event on stdout
// (docs/events.md), logs to stderr, and on ctx cancellation (first
// SIGINT/SIGTERM, handled by the caller with cmd/internal/shutdown, or
// plh.shutdown() from the admin shell) waits --shutdown-delay (still serving),
// stops everything and writes an "exit" event; a second signal meanwhile is the
// caller's exit(1). A start-up failure is an "error" event whose op names the
// part (config, admin, broker).
// The ready event also carries admin_token_file when the hub generated its
// admin token (docs/operations.md), never the token itself.
// CURVE (curve.go): broker.use_curve / --curve / --no-curve, keys dir and
// allowlist become broker.Config.Curve; the ready event carries "pubkey".
// With --control (control.go) it answers JSON lines on stdin:
// {"cmd":"snapshot"} with a registry event (channels, producer pid, consumers'
// pid and hostname, read from broker.Service), {"cmd":"stats"} with a stats
// event (goroutines, registry size), also emitted every --stats-interval. The
// scenario engine reads the registry this way, not through the admin shell.
// cmd/plh-hub and plh-sim (re-executing itself) both call Main.
package hubrole
