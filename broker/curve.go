package broker

import (
	"fmt"

	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/internal/wire/curve"
)

// CurveConfig configures the CURVE server of the broker's ROUTER (spec/protocol.md
// §3, docs/security.md). The zero value means CURVE with a fresh key pair per
// Start, as the original; Disabled turns CURVE off (NULL security).
type CurveConfig struct {
	// Disabled turns CURVE off: the ROUTER uses Config.Wire.Security as given
	// (nil = NULL). False (the zero value) means CURVE.
	Disabled bool
	// Keys is the server key pair. Zero: loaded from (or created in) KeysDir,
	// or, without KeysDir, a fresh pair per Start (the original's behaviour).
	Keys curve.KeyPair
	// KeysDir keeps the key pair across restarts (curve.LoadOrCreate), so
	// clients that know the public key keep working after a broker restart (B-1).
	KeysDir string
	// Allow, when not empty, lists the client public keys that may connect;
	// other clients are refused during the handshake (ERROR "400", like ZAP).
	Allow []curve.PublicKey
}

// curveSecurity fills cfg.Wire.Security from cfg.Curve. Caller: withDefaults.
// An explicit Wire.Security is kept (CURVE settings beside it are refused).
func (c Config) curveSecurity() (Config, error) {
	tuned := !c.Curve.Keys.IsZero() || c.Curve.KeysDir != "" || len(c.Curve.Allow) > 0
	switch {
	case c.Curve.Disabled && tuned:
		return c, fmt.Errorf("%w: CURVE keys or allowlist given but Curve.Disabled is set", ErrBadConfig)
	case c.Wire.Security != nil && tuned:
		return c, fmt.Errorf("%w: both CURVE keys or allowlist and Wire.Security set", ErrBadConfig)
	case c.Curve.Disabled || c.Wire.Security != nil:
		return c, nil
	}
	keys := c.Curve.Keys
	var err error
	switch {
	case !keys.IsZero():
	case c.Curve.KeysDir != "":
		if keys, err = curve.LoadOrCreate(c.Curve.KeysDir); err != nil {
			return c, fmt.Errorf("%w: CURVE keys: %w", ErrBadConfig, err)
		}
	default:
		if keys, err = curve.GenerateKeyPair(); err != nil {
			return c, fmt.Errorf("broker: CURVE key pair: %w", err)
		}
	}
	maxFrame := c.Wire.MaxFrame
	if maxFrame <= 0 {
		maxFrame = wire.DefaultConfig().MaxFrame
	}
	sec, err := curve.NewServerSecurity(curve.ServerConfig{Keys: keys, Allow: c.Curve.Allow, MaxMessage: maxFrame, Logger: c.Logger})
	if err != nil {
		return c, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	c.Wire.Security = sec
	c.Curve.Keys = keys
	return c, nil
}
