package hub

import (
	"fmt"

	"github.com/pylabhub/plh/internal/wire"
)

// clientSecurity returns the CURVE client security for a broker's Z85 public key.
// CURVE is not wired into internal/wire yet (its own issue): until it is, a
// non-empty server key is refused with a clear error rather than silently
// ignored.
func clientSecurity(serverKey string, _ MessengerConfig) (wire.Security, error) {
	return nil, fmt.Errorf("%w: CURVE server key given, but CURVE is not available in this build (use \"\" for NULL security)", ErrInvalidArgument)
}
