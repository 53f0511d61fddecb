package sim

import (
	"context"
	"errors"
	"sort"
	"sync"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/sim/scenario"
)

// errExited is returned by collector.wait when the awaited process exited.
var errExited = errors.New("process exited")

// collector holds the merged timeline of a run: every event of every process,
// plus the engine's own. Events arrive in per-process order; Timeline sorts them
// by t (CLOCK_MONOTONIC, shared by every process of the host).
type collector struct {
	mu      sync.Mutex
	evs     []event.Event
	changed chan struct{} // closed and replaced on every add
	onEvent func(event.Event)
}

func newCollector(onEvent func(event.Event)) *collector {
	return &collector{changed: make(chan struct{}), onEvent: onEvent}
}

func (c *collector) add(ev event.Event) {
	if ev.Fields == nil {
		ev.Fields = map[string]any{}
	}
	c.mu.Lock()
	c.evs = append(c.evs, ev)
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	if c.onEvent != nil {
		c.onEvent(ev)
	}
}

// engine records an event of the engine itself, stamped now.
func (c *collector) engine(kind string, fields map[string]any) event.Event {
	ev := event.Event{T: proc.Now(), Node: scenario.EngineName, Kind: kind, Fields: fields}
	c.add(ev)
	return ev
}

// len returns how many events were collected so far.
func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.evs)
}

// wait returns the first event at index ≥ from for which match is true. It
// fails when ctx ends or, if gone is non-nil, when gone is closed first.
func (c *collector) wait(ctx context.Context, from int, match func(event.Event) bool, gone <-chan struct{}) (event.Event, error) {
	for {
		c.mu.Lock()
		for ; from < len(c.evs); from++ {
			if match(c.evs[from]) {
				ev := c.evs[from]
				c.mu.Unlock()
				return ev, nil
			}
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-gone:
			// Look once more: the event may have been written just before exit.
			gone = nil
			c.mu.Lock()
			for ; from < len(c.evs); from++ {
				if match(c.evs[from]) {
					ev := c.evs[from]
					c.mu.Unlock()
					return ev, nil
				}
			}
			c.mu.Unlock()
			return event.Event{}, errExited
		case <-ctx.Done():
			return event.Event{}, ctx.Err()
		}
	}
}

// Timeline returns every event sorted by t (stable: events of one process keep
// their order).
func (c *collector) Timeline() []event.Event {
	c.mu.Lock()
	out := append([]event.Event(nil), c.evs...)
	c.mu.Unlock()
	SortEvents(out)
	return out
}

// SortEvents orders events by t, keeping the order of equal stamps.
func SortEvents(evs []event.Event) {
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].T < evs[j].T })
}
