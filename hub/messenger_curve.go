package hub

import (
	"fmt"

	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/internal/wire/curve"
)

// clientSecurity returns the CURVE client security for a broker's Z85 public key
// (protocol.md §3): a fresh client key pair per connection, as the original.
func clientSecurity(serverKey string, cfg MessengerConfig) (wire.Security, error) {
	key, err := curve.ParsePublicKey(serverKey)
	if err != nil {
		return nil, fmt.Errorf("%w: server key: %w", ErrInvalidArgument, err)
	}
	maxFrame := cfg.Wire.MaxFrame
	if maxFrame <= 0 {
		maxFrame = wire.DefaultConfig().MaxFrame
	}
	// MaxMessage bounds ciphertext buffering: a frame plus the MESSAGE overhead.
	sec, err := curve.NewClientSecurity(curve.ClientConfig{ServerKey: key, MaxMessage: maxFrame + 64, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return sec, nil
}
