package hub

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
)

// cbQueue runs queued callbacks one at a time on its own goroutine, only between
// start and halt; what is submitted meanwhile waits (bounded; beyond it dropped
// and logged).
type cbQueue struct {
	log *slog.Logger
	q   chan func()

	mu   sync.Mutex // guards stop, done
	stop chan struct{}
	done chan struct{}
}

const maxQueuedPeerCallbacks = 4096

func newCBQueue(log *slog.Logger) *cbQueue {
	return &cbQueue{log: log, q: make(chan func(), maxQueuedPeerCallbacks)}
}

func (c *cbQueue) submit(what string, fn func()) {
	select {
	case c.q <- fn:
	default:
		c.log.Warn("hub: callback queue full, dropped", "callback", what)
	}
}

func (c *cbQueue) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stop != nil {
		return
	}
	c.stop, c.done = make(chan struct{}), make(chan struct{})
	go c.loop(c.stop, c.done)
}

// halt stops the goroutine and waits for it (not from inside a callback).
func (c *cbQueue) halt() {
	c.mu.Lock()
	stop, done := c.stop, c.done
	c.stop, c.done = nil, nil
	c.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

func (c *cbQueue) loop(stop, done chan struct{}) {
	defer close(done)
	for {
		select {
		case <-stop:
			return
		case fn := <-c.q:
			safeCall(c.log, "peer callback", fn)
		}
	}
}

// safeCall runs fn, recovering and logging a panic.
func safeCall(log *slog.Logger, what string, fn func()) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("hub: callback panicked", "callback", what, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	fn()
}
