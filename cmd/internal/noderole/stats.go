package noderole

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"time"
)

// aggregator batches written/read events per 100 ms interval and keeps the
// totals for the exit event. A batch holds the items of one writer
// incarnation (from: the writer's pid, 0 for the node's own writes): when it
// changes the batch is emitted at once.
type aggregator struct {
	n        *node
	producer bool        // written events, else read events
	upstream bool        // Bidir's consumer-to-producer direction (events say upstream = true)
	status   *statusFile // running totals that survive a SIGKILL (nil: none)
	quit     chan struct{}
	done     chan struct{}

	mu                   sync.Mutex // guards everything below
	count, bytes         uint64
	first, last          uint64
	from                 uint64
	lat                  []int64
	total                uint64
	lost, gaps, reorders uint64
	checksumErrs, stalls uint64
	stopped              bool
	// Latest_only skips of the current interval (one gap event per interval).
	ivGaps, ivLost uint64
	ivExpected     uint64 // first sequence wanted in the interval
	ivGot          uint64 // last sequence received after a skip
}

const aggInterval = 100 * time.Millisecond

func newAggregator(n *node, producer, upstream bool, status *statusFile) *aggregator {
	a := &aggregator{n: n, producer: producer, upstream: upstream, status: status, quit: make(chan struct{}), done: make(chan struct{})}
	go a.loop()
	return a
}

func (a *aggregator) loop() {
	defer close(a.done)
	t := time.NewTicker(aggInterval)
	defer t.Stop()
	for {
		select {
		case <-a.quit:
			a.flush()
			return
		case <-t.C:
			a.flush()
		}
	}
}

// add records one message written by incarnation from (latency < 0: none).
func (a *aggregator) add(seq uint64, size int, latency int64, from uint64) {
	a.mu.Lock()
	if a.count > 0 && from != a.from {
		a.mu.Unlock()
		a.flush() // one incarnation per batch
		a.mu.Lock()
	}
	if a.count == 0 {
		a.first, a.from = seq, from
	}
	a.last = seq
	a.status.set(a.total+1, seq, from)
	a.count++
	a.total++
	a.bytes += uint64(size)
	if latency >= 0 && len(a.lat) < 4096 {
		a.lat = append(a.lat, latency)
	}
	a.mu.Unlock()
}

// skip records a Latest_only skip (expected wanted, got received). a.mu held.
func (a *aggregator) skip(expected, got, lost uint64) {
	if a.ivGaps == 0 {
		a.ivExpected = expected
	}
	a.ivGaps++
	a.ivLost += lost
	a.ivGot = got
	a.gaps++
	a.lost += lost
}

func (a *aggregator) note(f func(a *aggregator)) {
	a.mu.Lock()
	f(a)
	a.mu.Unlock()
}

func (a *aggregator) flush() {
	a.mu.Lock()
	var gap map[string]any
	if a.ivGaps > 0 {
		gap = map[string]any{"channel": a.n.o.channel, "expected": a.ivExpected, "got": a.ivGot,
			"lost": a.ivLost, "gaps": a.ivGaps}
	}
	if a.count == 0 {
		a.ivGaps, a.ivLost = 0, 0
		a.mu.Unlock()
		if gap != nil {
			a.n.emit("gap", gap)
		}
		return
	}
	f := map[string]any{"channel": a.n.o.channel, "count": a.count, "first_seq": a.first, "last_seq": a.last, "bytes": a.bytes}
	if a.from != 0 {
		f["from_pid"] = a.from
	}
	if a.upstream {
		f["upstream"] = true
	}
	kind := "written"
	if !a.producer {
		kind = "read"
		if len(a.lat) > 0 {
			slices.Sort(a.lat)
			f["lat_p50_ns"] = a.lat[len(a.lat)/2]
			f["lat_max_ns"] = a.lat[len(a.lat)-1]
		}
		if gap != nil {
			f["gaps"], f["lost"] = a.ivGaps, a.ivLost
		}
	}
	a.count, a.bytes, a.lat = 0, 0, a.lat[:0]
	a.ivGaps, a.ivLost = 0, 0
	a.mu.Unlock()
	a.n.emit(kind, f)
	if gap != nil {
		a.n.emit("gap", gap)
	}
}

// stop emits the final batch and ends the ticker. Idempotent.
func (a *aggregator) stop() {
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return
	}
	a.stopped = true
	a.mu.Unlock()
	close(a.quit)
	<-a.done
}

func (a *aggregator) totals() map[string]any {
	a.stop()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.upstream {
		if a.producer {
			return map[string]any{"written_upstream": a.total}
		}
		return map[string]any{"read_upstream": a.total}
	}
	f := map[string]any{"lost": a.lost, "gaps": a.gaps, "reorders": a.reorders,
		"checksum_errors": a.checksumErrs, "stalls": a.stalls}
	if a.producer {
		f["written"] = a.total
	} else {
		f["read"] = a.total
	}
	return f
}

// statsLoop emits a stats event (goroutines) every --stats-interval and on
// each {"cmd":"stats"} control line, until ctx ends.
func (n *node) statsLoop(ctx context.Context) {
	t := time.NewTicker(n.o.statsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.ctl.stats:
		}
		n.emit("stats", map[string]any{"goroutines": runtime.NumGoroutine()})
	}
}
