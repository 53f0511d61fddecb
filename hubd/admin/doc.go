// Package admin is the hub shell: a scriptable admin endpoint (spec api.md §10)
// that runs Starlark code against the running hub, plus the hub's Prometheus
// metrics.
//
// Pieces:
//   - Engine (engine.go) executes code in one persistent Starlark namespace
//     (go.starlark.net, a deterministic Python dialect; CPython code and imports
//     are NOT supported). Globals survive between requests; a mutex serialises
//     requests, so the engine runs on the caller's goroutine and starts none
//     except a timer per request, stopped before Exec returns. print() output
//     is captured (capped) into the reply. A trailing expression's value is
//     printed, as in an interactive interpreter.
//   - The plh module (module.go, also bound as pylabhub) reaches the hub through
//     the Backend interface: channels, channel detail, close, config, metrics,
//     shutdown, log, hub_name, reset, version.
//   - Runaway scripts: every request runs under a step limit, a wall-clock limit
//     and a heap-growth limit, checked every 10,000 steps from the thread's
//     OnMaxSteps hook, and a timer/context cancel. Built-ins never check
//     cancellation, so before resolution the source tree is rewritten
//     (rewrite.go) to route every size-growing operation (*, +, % and their
//     augmented forms, .join/.replace/.format/.extend) through guard builtins
//     (guard.go) that refuse results above Limits.MaxValueLen, and list(),
//     sorted(), all(), str(), print() and friends refuse oversize inputs. The
//     guard names contain '$', so admin code cannot call or rebind them.
//     Recursion stays forbidden (it would grow the Go stack before any limit).
//     Residual risk, documented in docs/operations.md: a builtin not listed
//     here could still allocate in one call; the endpoint is loopback and
//     token protected by default.
//   - Handler (protocol.go) parses the JSON envelope, compares the token in
//     constant time (SHA-256 of both sides, then subtle.ConstantTimeCompare),
//     expands the shortcuts :channels :config :metrics :help, and runs the code.
//     Nothing is executed before the token has matched.
//   - Server (server.go) answers requests on an internal/wire ROUTER; it accepts
//     REQ envelopes ([identity][empty][payload]) and DEALER ones
//     ([identity][payload]) and replies in the same shape. One goroutine serves
//     requests in order.
//   - Metrics (metrics.go) exposes broker counters and admin request counters on
//     a private prometheus.Registry, served over HTTP by MetricsServer.
//
// Lock order: Engine.mu is taken by Exec only; Backend methods are called with
// it held and must not call back into the engine.
package admin
