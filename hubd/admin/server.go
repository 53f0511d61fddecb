package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pylabhub/plh/internal/wire"
)

// DefaultEndpoint is the admin endpoint when none is configured (loopback only).
const DefaultEndpoint = "tcp://127.0.0.1:5600"

// ServerConfig configures a Server.
type ServerConfig struct {
	// Endpoint to bind (default DefaultEndpoint; port 0 = ephemeral).
	Endpoint string
	// Token required in every request; "" = no authentication, which is allowed
	// only on a loopback or ipc endpoint.
	Token string
	// Engine runs the code (required).
	Engine *Engine
	// Backend serves the :channels, :config and :metrics shortcuts (may be nil).
	Backend Backend
	// Metrics, when set, counts requests by outcome and times them.
	Metrics *Metrics
	// Wire configures the ROUTER socket (zero = wire defaults).
	Wire wire.Config
	// Logger: nil → discard.
	Logger *slog.Logger
}

// Server is the admin endpoint: a ROUTER answering every request with exactly
// one reply. One goroutine receives and handles requests in order.
type Server struct {
	router  *wire.Router
	handler *Handler
	metrics *Metrics
	log     *slog.Logger

	queued atomic.Uint64   // replies accepted by router.Send
	ctx    context.Context // cancelled by Close: stops receiving
	cancel context.CancelFunc
	done   chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// CheckBind returns ErrInsecureBind when endpoint is reachable beyond this host
// (not loopback, not ipc) and token is empty. Binaries call it before starting
// anything so a misconfiguration is refused at start.
func CheckBind(endpoint, token string) error {
	if token != "" {
		return nil
	}
	local, err := isLocalEndpoint(endpoint)
	if err != nil {
		return err
	}
	if !local {
		return fmt.Errorf("%w: %s", ErrInsecureBind, endpoint)
	}
	return nil
}

func isLocalEndpoint(endpoint string) (bool, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme == "" {
		return false, fmt.Errorf("admin endpoint %q: not a tcp:// or ipc:// endpoint", endpoint)
	}
	switch u.Scheme {
	case "ipc", "inproc":
		return true, nil
	case "tcp":
	default:
		return false, fmt.Errorf("admin endpoint %q: unsupported transport %q", endpoint, u.Scheme)
	}
	host := u.Hostname()
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// Listen checks the bind rule, binds the endpoint and starts serving.
func Listen(cfg ServerConfig) (*Server, error) {
	if cfg.Engine == nil {
		return nil, fmt.Errorf("admin: ServerConfig.Engine is required")
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = DefaultEndpoint
	}
	if err := CheckBind(cfg.Endpoint, cfg.Token); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Wire.Logger == nil {
		cfg.Wire.Logger = log
	}
	r, err := wire.Listen(cfg.Wire, cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	s := &Server{
		router:  r,
		handler: NewHandler(cfg.Engine, cfg.Backend, cfg.Token, log),
		metrics: cfg.Metrics,
		log:     log,
		done:    make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.serve()
	return s, nil
}

// Endpoint returns the bound endpoint (with the real port).
func (s *Server) Endpoint() string { return s.router.Endpoint() }

func (s *Server) serve() {
	defer close(s.done)
	for {
		m, err := s.router.Recv(s.ctx)
		if err != nil {
			return // closed
		}
		s.answer(m)
	}
}

// answer handles one message. A REQ client sends [empty][payload], a DEALER
// [payload]; the reply mirrors the envelope so both get it.
func (s *Server) answer(m wire.Msg) {
	start := time.Now()
	var envelope [][]byte
	frames := m.Frames
	if len(frames) >= 2 && len(frames[0]) == 0 {
		envelope, frames = [][]byte{{}}, frames[1:]
	}
	var (
		reply   Reply
		outcome Outcome
	)
	if len(frames) != 1 {
		reply, outcome = Reply{Error: errTextInvalidJSON}, OutcomeBadRequest
	} else {
		// A running script is not cancelled by Close (the reply to
		// plh.shutdown() must be complete); its own limits bound it.
		reply, outcome = s.handler.Handle(context.Background(), frames[0])
	}
	body, err := json.Marshal(reply)
	if err != nil { // cannot happen: Reply holds strings and a bool
		body = []byte(`{"success":false,"output":"","error":"internal error"}`)
	}
	if err := s.router.Send(m.Peer, append(envelope, body)...); err != nil {
		s.log.Warn("admin reply not sent", "error", err)
	} else {
		s.queued.Add(1)
	}
	s.metrics.observeAdmin(outcome, time.Since(start))
}

// flushTimeout bounds how long Close waits for queued replies to be written.
const flushTimeout = time.Second

// Close stops serving: the request being executed finishes (bounded by the
// engine's limits), replies already queued are written (for up to a second: the
// reply to plh.shutdown() must reach its client), the socket is closed, and the
// serving goroutine has exited when Close returns. Safe on nil and repeated.
func (s *Server) Close() error {
	if s == nil {
		return nil
	}
	s.closeOnce.Do(func() {
		s.cancel()
		<-s.done
		deadline := time.Now().Add(flushTimeout)
		for time.Now().Before(deadline) {
			st := s.router.Stats()
			if st.Sent+st.SendErrors >= s.queued.Load() {
				break
			}
			time.Sleep(5 * time.Millisecond) // polling a counter: wire has no flush call
		}
		s.closeErr = s.router.Close()
	})
	return s.closeErr
}
