package hub

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// subList holds any number of callbacks per channel name. Add returns an
// unsubscribe function; get returns a snapshot, so callbacks run without the lock
// and may subscribe or unsubscribe from inside a callback.
type subList[F any] struct {
	mu   sync.Mutex
	next uint64
	m    map[string][]subEntry[F] // guarded by mu
}

type subEntry[F any] struct {
	id uint64
	fn F
}

// add registers fn under key and returns its idempotent unsubscribe function.
func (s *subList[F]) add(key string, fn F) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]subEntry[F]{}
	}
	s.next++
	id := s.next
	s.m[key] = append(s.m[key], subEntry[F]{id: id, fn: fn})
	var once sync.Once
	return func() { once.Do(func() { s.remove(key, id) }) }
}

func (s *subList[F]) remove(key string, id uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.m[key]
	for i, e := range list {
		if e.id == id {
			// Copy so a snapshot handed out earlier is never modified.
			nl := make([]subEntry[F], 0, len(list)-1)
			nl = append(nl, list[:i]...)
			nl = append(nl, list[i+1:]...)
			if len(nl) == 0 {
				delete(s.m, key)
			} else {
				s.m[key] = nl
			}
			return
		}
	}
}

// get returns the callbacks registered under key, in subscription order.
func (s *subList[F]) get(key string) []F {
	s.mu.Lock()
	list := s.m[key]
	s.mu.Unlock()
	out := make([]F, len(list))
	for i, e := range list {
		out[i] = e.fn
	}
	return out
}

// count returns how many callbacks are registered under key.
func (s *subList[F]) count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m[key])
}

// dispatcher runs callbacks on its own goroutine, in submission order, so a slow
// or panicking callback never delays the socket loop (replies keep flowing). The
// queue is bounded by max: beyond it notifications are dropped and counted, which
// only happens when callbacks block for a long time.
type dispatcher struct {
	log *slog.Logger
	max int

	mu      sync.Mutex
	queue   []func() // guarded by mu
	closed  bool     // guarded by mu
	wake    chan struct{}
	done    chan struct{}
	dropped atomic.Uint64
	panics  atomic.Uint64
}

func newDispatcher(log *slog.Logger, max int) *dispatcher {
	d := &dispatcher{log: log, max: max, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go d.run()
	return d
}

// submit queues fn; false when the queue is full or the dispatcher is closed.
func (d *dispatcher) submit(what string, fn func()) bool {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return false
	}
	if len(d.queue) >= d.max {
		d.mu.Unlock()
		d.dropped.Add(1)
		d.log.Warn("messenger: callback queue full, notification dropped", "what", what, "max", d.max)
		return false
	}
	d.queue = append(d.queue, fn)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	return true
}

func (d *dispatcher) run() {
	defer close(d.done)
	for {
		d.mu.Lock()
		batch := d.queue
		d.queue = nil
		closed := d.closed
		d.mu.Unlock()
		for _, fn := range batch {
			d.call(fn)
		}
		if len(batch) > 0 {
			continue
		}
		if closed {
			return
		}
		<-d.wake
	}
}

// call runs fn, recovering and logging a panic.
func (d *dispatcher) call(fn func()) {
	defer func() {
		if r := recover(); r != nil {
			d.panics.Add(1)
			d.log.Error("messenger: callback panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	fn()
}

// close runs what is already queued, then stops the goroutine and waits for it.
// It must not be called from a callback.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	<-d.done
}
