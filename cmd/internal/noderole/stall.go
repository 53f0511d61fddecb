package noderole

import (
	"sync"
	"sync/atomic"
	"time"
)

// stallThreshold: a write that waited at least this long is a backpressure_stall.
const stallThreshold = time.Millisecond

// Defaults of --stall-after and --stall-every.
const (
	defaultStallAfter = 100 * time.Millisecond
	defaultStallEvery = time.Second
)

// stallWatch makes a waiting write visible while it waits. The write loop marks
// each write's begin and end (begin is one atomic store: nothing allocates on
// the hot path); a watcher goroutine emits backpressure_stall_start once the
// current write has waited `after`, then backpressure_stall_ongoing every
// `every`; end emits backpressure_stall with the length of any wait of at least
// stallThreshold (reported = whether the start was emitted), whether the write
// then succeeded or the node was stopped. A write blocked forever is thus seen
// within `after`, and counted in exit.stalls when the node stops.
type stallWatch struct {
	n            *node
	path         string // "shm" or "peer": what the writes wait for
	after, every time.Duration

	since atomic.Int64 // monotonic ns the current write began; 0 between writes

	mu        sync.Mutex // orders the watcher's reports against end
	announced int64      // `since` of the stall whose start was emitted
	lastNote  int64      // when the last start/ongoing was emitted

	stop chan struct{}
	done chan struct{}
}

func newStallWatch(n *node, path string) *stallWatch {
	w := &stallWatch{n: n, path: path, after: n.o.stallAfter, every: n.o.stallEvery,
		stop: make(chan struct{}), done: make(chan struct{})}
	if w.after <= 0 {
		w.after = defaultStallAfter
	}
	if w.every <= 0 {
		w.every = defaultStallEvery
	}
	go w.loop()
	return w
}

// begin marks the start of a write.
func (w *stallWatch) begin() { w.since.Store(now()) }

// end marks the end of the write begun last; written: it succeeded.
func (w *stallWatch) end(written bool) {
	t0 := w.since.Swap(0)
	if t0 == 0 {
		return
	}
	d := time.Duration(now() - t0)
	if d < stallThreshold {
		return
	}
	w.mu.Lock()
	reported := w.announced == t0
	w.announced = 0
	w.mu.Unlock()
	w.n.agg.note(func(a *aggregator) { a.stalls++ })
	w.n.emit("backpressure_stall", map[string]any{"channel": w.n.o.channel, "duration_ns": d.Nanoseconds(),
		"path": w.path, "reported": reported, "written": written})
}

// loop checks the current write a few times per `after`.
func (w *stallWatch) loop() {
	defer close(w.done)
	t := time.NewTicker(min(max(w.after/4, 5*time.Millisecond), 50*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.check()
		}
	}
}

func (w *stallWatch) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	t0 := w.since.Load()
	if t0 == 0 {
		return
	}
	tn := now()
	waited := time.Duration(tn - t0)
	kind := ""
	switch {
	case waited < w.after:
	case w.announced != t0:
		w.announced, w.lastNote, kind = t0, tn, "backpressure_stall_start"
	case time.Duration(tn-w.lastNote) >= w.every:
		w.lastNote, kind = tn, "backpressure_stall_ongoing"
	}
	if kind != "" {
		w.n.emit(kind, map[string]any{"channel": w.n.o.channel, "waited_ns": waited.Nanoseconds(), "path": w.path})
	}
}

// close stops the watcher goroutine; idempotent.
func (w *stallWatch) close() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}
