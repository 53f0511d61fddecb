package hub

import (
	"context"
	"fmt"

	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/internal/wire/curve"
)

// Producer-consumer CURVE (spec/protocol.md §3, §10.1–10.2; docs/security.md).
// The producer's peer ROUTER is a CURVE server with a key pair per channel
// (ProducerOptions.CurveKeys, or a fresh pair); its public key travels in REG_REQ
// zmq_pubkey and DISC_ACK. A consumer whose DISC_ACK carries a key dials as a
// CURVE client with a fresh key pair per connection; without a key it dials NULL.

// curveOverhead is what a CURVE MESSAGE adds to a frame (flags, nonce, MAC).
const curveOverhead = 64

// peerSecurity returns the Security of the producer's peer ROUTER: o.Wire.Security
// when set, nil (NULL) with NoCurve, else a CURVE server with CurveKeys or a
// fresh key pair.
func (o ProducerOptions) peerSecurity() (wire.Security, error) {
	if o.Wire.Security != nil {
		return o.Wire.Security, nil
	}
	if o.NoCurve {
		if !o.CurveKeys.IsZero() {
			return nil, fmt.Errorf("%w: CurveKeys given with NoCurve", ErrInvalidArgument)
		}
		return nil, nil
	}
	keys := o.CurveKeys
	if keys.IsZero() {
		var err error
		if keys, err = curve.GenerateKeyPair(); err != nil {
			return nil, fmt.Errorf("CURVE key pair: %w", err)
		}
	}
	sec, err := curve.NewServerSecurity(curve.ServerConfig{Keys: keys, MaxMessage: maxFrameOf(o.Wire) + curveOverhead, Logger: o.Wire.Logger})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return sec, nil
}

// consumerSecurity returns the Security of a consumer's peer DEALER: o.Wire.Security
// when set, a CURVE client for the producer's key from discovery, or nil (NULL)
// when discovery gave no key.
func consumerSecurity(o ConsumerOptions, info ChannelInfo) (wire.Security, error) {
	if o.Wire.Security != nil || info.PubKey == "" {
		return o.Wire.Security, nil
	}
	key, err := curve.ParsePublicKey(info.PubKey)
	if err != nil {
		return nil, fmt.Errorf("%w: producer key from discovery: %w", ErrBadReply, err)
	}
	sec, err := curve.NewClientSecurity(curve.ClientConfig{ServerKey: key, MaxMessage: maxFrameOf(o.Wire) + curveOverhead, Logger: o.Wire.Logger})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return sec, nil
}

func maxFrameOf(c wire.Config) int {
	if c.MaxFrame > 0 {
		return c.MaxFrame
	}
	return wire.DefaultConfig().MaxFrame
}

// waitLink waits until the Dealer is connected to the producer. A failed
// security handshake ends the wait at once with ErrPeerSecurity (redialling with
// the same key cannot help); other dial failures (nothing listening yet) are
// retried by the Dealer until ctx ends. Caller: Connect, before tickLoop runs
// (waitLink is then the only reader of the Dealer's events).
func (c *consumer) waitLink(ctx context.Context, d *wire.Dealer) error {
	for !d.Connected() {
		select {
		case ev := <-d.Events():
			if ev.Kind == wire.DialFailed && isHandshakeFailure(ev.Err) {
				return fmt.Errorf("%w: producer at %s: %w", ErrPeerSecurity, d.Endpoint(), ev.Err)
			}
		case <-ctx.Done():
			if err := d.WaitConnected(ctx); err != nil {
				return fmt.Errorf("producer at %s: %w", d.Endpoint(), err)
			}
			return nil
		}
	}
	return nil
}

// isHandshakeFailure reports a failed CURVE handshake (wrong key, refused, a
// NULL server, a truncated handshake) or a NULL consumer facing a CURVE producer.
func isHandshakeFailure(err error) bool {
	return isSecurityFailure(err)
}

// PublicKey returns the peer ROUTER's CURVE public key in Z85, as registered
// (REG_REQ zmq_pubkey); "" when the peer link is NULL (NoCurve).
func (p *producer) PublicKey() string { return p.r.PublicKey() }
