package support

import (
	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/internal/wire/curve"
)

// CurveClient returns the wire Security of a CURVE client (fresh key pair per
// connection) for a server's Z85 public key, or nil (NULL) for "". Suites use
// it for raw-protocol peers of a broker or producer, which are CURVE by default.
func CurveClient(serverKey string) (wire.Security, error) {
	if serverKey == "" {
		return nil, nil
	}
	pk, err := curve.ParsePublicKey(serverKey)
	if err != nil {
		return nil, err
	}
	return curve.NewClientSecurity(curve.ClientConfig{ServerKey: pk})
}
