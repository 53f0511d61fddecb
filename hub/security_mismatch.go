package hub

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/internal/wire/curve"
)

// isSecurityFailure reports a dial that failed on security, not reachability: a
// failed CURVE handshake (wrong key, refused, a NULL server) or a NULL socket of
// ours facing a CURVE peer.
func isSecurityFailure(err error) bool {
	return errors.Is(err, curve.ErrHandshake) || wire.IsMechanismMismatch(err)
}

// connectAbort lets tickLoop (which owns the Dealer's events) end Connect's wait
// for the first connection when a dial failed on security. A failure seen before
// Connect starts waiting is kept and ends the wait at once.
type connectAbort struct {
	mu     sync.Mutex
	cancel context.CancelCauseFunc // set while Connect waits
	err    error                   // first security failure
}

// wait returns a context that ends with cause ErrBrokerSecurity on such a
// failure, and its release function.
func (a *connectAbort) wait(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	a.mu.Lock()
	a.cancel = cancel
	if a.err != nil {
		cancel(a.err)
	}
	a.mu.Unlock()
	return ctx, func() {
		a.mu.Lock()
		a.cancel = nil
		a.mu.Unlock()
		cancel(nil)
	}
}

// fail records a security failure of a dial to endpoint.
func (a *connectAbort) fail(endpoint string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err == nil {
		a.err = fmt.Errorf("%w: %w at %s: %w", ErrNotConnected, ErrBrokerSecurity, endpoint, err)
	}
	if a.cancel != nil {
		a.cancel(a.err)
	}
}

// cause returns the security failure that ended ctx, or nil.
func securityCause(ctx context.Context) error {
	if err := context.Cause(ctx); errors.Is(err, ErrBrokerSecurity) {
		return err
	}
	return nil
}
