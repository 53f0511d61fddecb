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
//     shutdown, schemas (B-9), trace (B-13: the broker's protocol trace,
//     switched at run time), log, hub_name, reset, version.
//   - Runaway scripts: every request runs under a step limit, a wall-clock limit
//     and a heap-growth limit, checked every 1,000 steps from the thread's
//     OnMaxSteps hook, and a timer/context cancel. Built-ins never check
//     cancellation, so before resolution the source tree is rewritten
//     (rewrite.go) to route every size-growing operation (*, +, % and their
//     augmented forms, .join/.replace/.format/.extend) through guard builtins
//     (guard.go) that refuse results above Limits.MaxValueLen, and list(),
//     sorted(), all(), str(), print() and friends refuse oversize inputs. The
//     guard names contain '$', so admin code cannot call or rebind them.
//     Recursion stays forbidden (it would grow the Go stack before any limit).
//   - Memory (memory.go): each request has an account. The guards charge the
//     size a result would have before producing it, and every call and slice
//     result passes through plh$charge, which charges its size after the fact;
//     any single charge of a MiB or more, and every MiB charged, reads the Go
//     heap, so a comprehension of a dozen steps that allocates gigabytes is
//     stopped at the heap-growth limit. After the request the globals are
//     sized (sizer: shared containers and long strings counted once, stopping
//     at the cap); over Limits.MaxGlobals the request's bindings are undone
//     (a shallow copy of the globals taken before it), and if a kept value
//     grew in place the user globals are cleared. A request that hit a limit
//     or grew the heap a lot is followed by debug.FreeOSMemory.
//     Residual risk, documented in docs/operations.md: one built-in call may
//     allocate a few times its inputs before it is accounted.
//   - Admin token (token.go): GenerateToken, and the token file a hub without
//     a configured token keeps (TokenFile: $XDG_RUNTIME_DIR/plh/admin-<endpoint>.token,
//     WriteTokenFile 0600 in a private 0700 directory, ReadTokenFile for
//     plh-admin, RemoveTokenFile on shutdown).
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
