package support

import (
	"sync"

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

// brokerKeys maps a broker endpoint to its CURVE public key ("" = NULL).
var brokerKeys sync.Map

// RememberKey records the CURVE public key ("" = NULL) of the broker at
// endpoint, for KeyOf. Suites call it where they start a broker or plh-hub.
func RememberKey(endpoint, key string) { brokerKeys.Store(endpoint, key) }

// KeyOf returns the key RememberKey recorded for endpoint ("" when none: NULL).
func KeyOf(endpoint string) string {
	k, _ := brokerKeys.Load(endpoint)
	s, _ := k.(string)
	return s
}
