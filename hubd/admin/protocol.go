package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"text/tabwriter"
)

// Reply is the admin endpoint's answer to one request (spec api.md §10).
type Reply struct {
	Success bool   `json:"success"`
	Output  string `json:"output"`
	Error   string `json:"error"`
}

// Error texts of the protocol (spec api.md §10).
const (
	errTextInvalidJSON  = "invalid JSON request"
	errTextUnauthorized = "unauthorized"
	errTextBadCode      = "missing or invalid 'code' field"
	errTextInterpreter  = "interpreter error: "
)

// Outcome classifies a handled request for metrics.
type Outcome string

// Outcomes of Handle.
const (
	OutcomeOK           Outcome = "ok"
	OutcomeScriptError  Outcome = "script_error"
	OutcomeUnauthorized Outcome = "unauthorized"
	OutcomeBadRequest   Outcome = "bad_request"
)

// Handler turns request bytes into a Reply: it parses the envelope, checks the
// token in constant time, expands the REPL shortcuts and runs the code on the
// engine. It is safe for concurrent use (the engine serialises execution).
type Handler struct {
	engine  *Engine
	backend Backend
	token   []byte // sha256 of the configured token; nil = no authentication
	log     *slog.Logger
}

// NewHandler returns a handler running code on engine. An empty token disables
// authentication. backend (may be nil) serves the shortcuts.
func NewHandler(engine *Engine, backend Backend, token string, logger *slog.Logger) *Handler {
	h := &Handler{engine: engine, backend: backend, log: logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if token != "" {
		sum := sha256.Sum256([]byte(token))
		h.token = sum[:]
	}
	return h
}

// Handle answers one request. Nothing runs unless the envelope is valid and the
// token matches.
func (h *Handler) Handle(ctx context.Context, raw []byte) (Reply, Outcome) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return Reply{Error: errTextInvalidJSON}, OutcomeBadRequest
	}
	if !h.authorized(fields["token"]) {
		h.log.Warn("admin request refused: unauthorized")
		return Reply{Error: errTextUnauthorized}, OutcomeUnauthorized
	}
	var code string
	if c, ok := fields["code"]; !ok || json.Unmarshal(c, &code) != nil {
		return Reply{Error: errTextBadCode}, OutcomeBadRequest
	}
	if out, ok, err := h.shortcut(strings.TrimSpace(code)); ok {
		if err != nil {
			return Reply{Output: out, Error: errTextInterpreter + err.Error()}, OutcomeScriptError
		}
		return Reply{Success: true, Output: out}, OutcomeOK
	}
	out, err := h.engine.Exec(ctx, "<admin>", code)
	if err != nil {
		h.log.Info("admin code failed", "error", err)
		return Reply{Output: out, Error: errTextInterpreter + err.Error()}, OutcomeScriptError
	}
	return Reply{Success: true, Output: out}, OutcomeOK
}

// authorized compares the request token with the configured one in constant
// time (both are hashed first so even their lengths stay hidden).
func (h *Handler) authorized(raw json.RawMessage) bool {
	if h.token == nil {
		return true
	}
	var tok string
	if raw == nil || json.Unmarshal(raw, &tok) != nil {
		tok = ""
	}
	sum := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(sum[:], h.token) == 1 && tok != ""
}

// HelpText is the output of the :help shortcut.
const HelpText = `plh admin shell: Starlark (a Python dialect; CPython code and imports are not supported).
Globals persist between requests. A trailing expression's value is printed.
  plh.channels()      list of channels (name, schema_hash, consumer_count, producer_pid, status, pattern)
  plh.channel(name)   one channel: producer, consumers, status, pattern, counters
  plh.close(name)     close a channel; its producer and consumers are notified
  plh.config()        effective configuration
  plh.metrics()       hub counters
  plh.shutdown()      graceful hub shutdown (as SIGINT)
  plh.log(msg)        write msg to the hub log
  plh.hub_name()      the hub's name
  plh.reset()         forget user globals after this request
  plh.version         version string (the module is also reachable as pylabhub)
Shortcuts: :channels  :config  :metrics  :help  (:quit in plh-admin)
`

// shortcut expands the REPL shortcuts server-side, so every client (plh-admin,
// a pyzmq script) gets them.
func (h *Handler) shortcut(code string) (string, bool, error) {
	if !strings.HasPrefix(code, ":") || strings.ContainsAny(code, " \n") {
		return "", false, nil
	}
	switch code {
	case ":help":
		return HelpText, true, nil
	case ":channels":
		if h.backend == nil {
			return "(no channels)\n", true, nil
		}
		v, err := h.backend.Channels()
		if err != nil {
			return "", true, err
		}
		return channelTable(v)
	case ":config", ":metrics":
		if h.backend == nil {
			return "", true, fmt.Errorf("%s: %w", code, ErrNotAvailable)
		}
		v := h.backend.Config()
		if code == ":metrics" {
			v = h.backend.Metrics()
		}
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return "", true, err
		}
		return string(b) + "\n", true, nil
	}
	return "", true, fmt.Errorf("unknown shortcut %q (try :help)", code)
}

func channelTable(v any) (string, bool, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return "", true, err
	}
	var rows []map[string]any
	if err := json.Unmarshal(raw, &rows); err != nil {
		return "", true, fmt.Errorf("channel list: %w", err)
	}
	if len(rows) == 0 {
		return "(no channels)\n", true, nil
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCONSUMERS\tPRODUCER_PID\tSTATUS\tPATTERN")
	for _, r := range rows {
		fmt.Fprintf(tw, "%v\t%v\t%v\t%v\t%v\n", r["name"], r["consumer_count"], r["producer_pid"], r["status"], r["pattern"])
	}
	_ = tw.Flush()
	return buf.String(), true, nil
}
