package hubrole

import (
	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/hubd"
)

// configureCurve sets bc.Curve from broker.use_curve, security.curve_keys_dir
// and security.allowed_clients, overridden by --curve/--no-curve and --keys-dir.
// The key pair is loaded or created by broker.Start; the public key reaches the
// ready event as "pubkey".
func configureCurve(cfg *hubd.Config, o options, bc *broker.Config) error {
	on := cfg.Broker.UseCurve
	switch {
	case o.curve:
		on = true
	case o.noCurve:
		on = false
	}
	if !on {
		bc.Curve = broker.CurveConfig{Disabled: true}
		return nil
	}
	allow, err := cfg.AllowedClients()
	if err != nil {
		return err
	}
	dir := cfg.CurveKeysDir()
	if o.set["keys-dir"] {
		dir = o.keysDir
	}
	bc.Curve = broker.CurveConfig{KeysDir: dir, Allow: allow}
	return nil
}
