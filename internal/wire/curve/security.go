package curve

import (
	"fmt"
	"log/slog"
	"net"
)

// Security is CURVE for internal/wire's Security seam (wire.Config.Security):
// wire owns the zmq4 transport, sets the handshake deadline on each raw
// connection and calls Secure; Secure runs the CURVE handshake and returns the
// conn that speaks NULL ZMTP to zmq4 (the same conn the "curve" transport uses).
// It satisfies wire.Security structurally, so curve does not import wire.
//
// A server Security (NewServerSecurity) serves listening sockets (Router, Pub);
// a client Security (NewClientSecurity) serves dialling ones (Dealer, Sub).
type Security struct {
	server *ServerConfig
	client *ClientConfig
	allow  map[PublicKey]struct{}
	log    *slog.Logger
}

// NewServerSecurity returns a server-side Security. cfg.HandshakeTimeout and
// cfg.MaxHandshakes are not used: wire sets the deadline, bounds the handshakes
// (wire.Config.MaxHandshakes) and logs their failures (rate-limited, through
// wire.Config.Logger).
// Set cfg.MaxMessage to wire's MaxFrame so no larger ciphertext is buffered.
func NewServerSecurity(cfg ServerConfig) (*Security, error) {
	if cfg.Keys.IsZero() {
		return nil, fmt.Errorf("%w: server key pair is required", ErrBadKey)
	}
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = DefaultMaxMessage
	}
	if err := checkAllow(cfg.Allow); err != nil {
		return nil, err
	}
	s := &Security{server: &cfg, log: logger(cfg.Logger)}
	if len(cfg.Allow) > 0 {
		s.allow = make(map[PublicKey]struct{}, len(cfg.Allow))
		for _, k := range cfg.Allow {
			s.allow[k] = struct{}{}
		}
	}
	return s, nil
}

// NewClientSecurity returns a client-side Security; with cfg.Keys zero every
// connection uses a fresh client key pair.
func NewClientSecurity(cfg ClientConfig) (*Security, error) {
	if err := checkServerKey(cfg.ServerKey); err != nil {
		return nil, err
	}
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = DefaultMaxMessage
	}
	return &Security{client: &cfg, log: logger(cfg.Logger)}, nil
}

// Mechanism returns "CURVE".
func (s *Security) Mechanism() string { return "CURVE" }

// PublicKey returns this side's permanent public key in Z85: the server key for a
// server Security, the client key for a client Security with fixed keys, else "".
func (s *Security) PublicKey() string {
	switch {
	case s.server != nil:
		return s.server.Keys.Public.String()
	case !s.client.Keys.IsZero():
		return s.client.Keys.Public.String()
	}
	return ""
}

// Secure runs the CURVE handshake on raw within the deadline the caller set on
// it. The server side returns after INITIATE was verified; the client side after
// WELCOME (INITIATE and READY follow when zmq4 writes its READY, still under the
// read deadline wire keeps until the peer's READY). raw is not closed on error.
func (s *Security) Secure(raw net.Conn, server bool) (net.Conn, error) {
	var (
		c   *conn
		err error
	)
	switch {
	case server && s.server != nil:
		c, err = serverHandshake(raw, s.server, s.allow, s.log, false)
	case !server && s.client != nil:
		c, err = clientHandshake(raw, s.client, s.log, false)
	default:
		return nil, fmt.Errorf("%w: a %s Security cannot secure a %s connection", ErrEndpoint, role(!server), role(server))
	}
	if err != nil {
		if !server { // a listener's failures are logged by wire, rate-limited
			s.log.Warn("curve: handshake failed", "peer", raw.RemoteAddr().String(), "server", server, "err", err)
		}
		return nil, err
	}
	return c, nil
}

// checkServerKey refuses a missing or low-order server public key.
func checkServerKey(k PublicKey) error {
	if k.IsZero() {
		return fmt.Errorf("%w: server public key is required", ErrBadKey)
	}
	return checkPublic(k)
}

// checkAllow refuses an allowlist holding a low-order key.
func checkAllow(allow []PublicKey) error {
	for _, k := range allow {
		if err := checkPublic(k); err != nil {
			return fmt.Errorf("allowlist: %w", err)
		}
	}
	return nil
}

func role(server bool) string {
	if server {
		return "server"
	}
	return "client"
}
