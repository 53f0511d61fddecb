package broker

import (
	"fmt"

	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/internal/wire/curve"
)

// CurveConfig turns the broker's ROUTER into a CURVE server (spec/protocol.md §3,
// docs/security.md). The zero value means NULL security.
type CurveConfig struct {
	// Enabled turns CURVE on. False (the zero value) means NULL.
	Enabled bool
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
func (c Config) curveSecurity() (Config, error) {
	if !c.Curve.Enabled {
		if !c.Curve.Keys.IsZero() || c.Curve.KeysDir != "" || len(c.Curve.Allow) > 0 {
			return c, fmt.Errorf("%w: CURVE keys or allowlist given but Curve.Enabled is false", ErrBadConfig)
		}
		return c, nil
	}
	if c.Wire.Security != nil {
		return c, fmt.Errorf("%w: both Curve.Enabled and Wire.Security set", ErrBadConfig)
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
