package shutdown

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// OnSignal returns a context cancelled by the first SIGINT/SIGTERM; a second signal
// calls exit(1). stop releases the signal handlers and the watching goroutine.
func OnSignal(parent context.Context, exit func(code int)) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-done:
			return
		}
		select {
		case <-sigs:
			exit(1)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		select {
		case <-done:
		default:
			close(done)
		}
		cancel()
	}
}
