package hub

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pylabhub/plh/shm"
)

// Ring notices: ChannelNotice.Event values that a Producer or Consumer raises
// itself (ChannelNotice.Type "") through its OnChannelError callback, with the
// details in ChannelNotice.Ring. See doc.go, "Ring faults".
const (
	// EventRingError: a ring operation failed with shm.ErrCorrupt (another
	// process scribbled on the control zone) or shm.ErrEntryLost. Raised once
	// per distinct cause, then again every RingErrorEvery while the cause is
	// still seen (RingIssue.Ongoing).
	EventRingError = "ring_error"
	// EventRingReattached: the Consumer's ring Reader lost its heartbeat entry
	// (shm.ErrEntryLost) and was replaced by a new one (RingIssue.Reattached).
	EventRingReattached = "ring_reattached"
)

// RingIssue details a ring notice (ChannelNotice.Ring).
type RingIssue struct {
	// Err is the ring's error; errors.Is(Err, shm.ErrCorrupt) or
	// errors.Is(Err, shm.ErrEntryLost).
	Err error
	// Cause is Err's text with every number written as N: notices are per
	// distinct cause, so a cause whose values change is still one cause.
	Cause string
	// Count is how often the cause was seen since the previous notice of it
	// (1 for the first notice).
	Count uint64
	// Since is when the cause was first seen (it is new again once it has not
	// been seen for two RingErrorEvery periods and the longest backoff).
	Since time.Time
	// Ongoing marks a reminder: the cause was seen again RingErrorEvery or more
	// after its previous notice.
	Ongoing bool
	// Reattached is, for EventRingReattached, how many Readers the Consumer has
	// replaced so far.
	Reattached uint64
}

// RingStats are a channel's ring-fault counters (Producer.RingStats,
// Consumer.RingStats).
type RingStats struct {
	Faults     uint64 // ring operations that failed with shm.ErrCorrupt or shm.ErrEntryLost
	Notices    uint64 // EventRingError notices raised (first notices and reminders)
	Reattached uint64 // Readers replaced after shm.ErrEntryLost (Consumer only)
}

const (
	defaultRingErrorEvery = time.Second
	ringBackoffMin        = 10 * time.Millisecond // first pause after a faulted transaction
	ringBackoffMax        = time.Second           // longest pause
	maxRingCauses         = 16                    // causes remembered per channel
)

// isRingFault reports whether err is a fault of the ring itself: the control
// zone was scribbled, or the Reader's heartbeat entry was taken over.
func isRingFault(err error) bool {
	return err != nil && (errors.Is(err, shm.ErrCorrupt) || errors.Is(err, shm.ErrEntryLost))
}

// ringHealth counts a party's ring faults and raises its ring notices: once per
// distinct cause, then at most one reminder per cause every `every`. notify
// queues a notice on the Messenger's callback goroutine.
type ringHealth struct {
	channel string
	every   time.Duration
	log     *slog.Logger
	notify  func(ChannelNotice)

	faults, notices, reattached atomic.Uint64

	mu     sync.Mutex
	causes map[string]*ringCause // guarded by mu
}

// ringCause is what ringHealth remembers of one cause.
type ringCause struct {
	since, lastSeen, lastNote time.Time
	count                     uint64 // seen since lastNote
}

func newRingHealth(channel string, every time.Duration, log *slog.Logger, notify func(ChannelNotice)) *ringHealth {
	return &ringHealth{channel: channel, every: every, log: log, notify: notify, causes: map[string]*ringCause{}}
}

// events is a count that grows with every fault and reattachment: a loop
// compares it around a transaction to know whether to back off.
func (h *ringHealth) events() uint64 { return h.faults.Load() + h.reattached.Load() }

// stats returns the counters.
func (h *ringHealth) stats() RingStats {
	return RingStats{Faults: h.faults.Load(), Notices: h.notices.Load(), Reattached: h.reattached.Load()}
}

// observe records err when it is a ring fault, raising a notice for a new cause
// or a reminder for one last noticed `every` ago; it reports whether err was one.
func (h *ringHealth) observe(err error) bool {
	if !isRingFault(err) {
		return false
	}
	h.faults.Add(1)
	now, cause := time.Now(), causeOf(err)
	h.mu.Lock()
	c := h.causes[cause]
	if c == nil || now.Sub(c.lastSeen) > 2*h.every+ringBackoffMax {
		c = &ringCause{since: now}
		h.remember(cause, c)
	}
	c.lastSeen = now
	c.count++
	var issue *RingIssue
	if c.lastNote.IsZero() || now.Sub(c.lastNote) >= h.every {
		issue = &RingIssue{Err: err, Cause: cause, Count: c.count, Since: c.since, Ongoing: !c.lastNote.IsZero()}
		c.lastNote, c.count = now, 0
	}
	h.mu.Unlock()
	if issue != nil {
		h.notices.Add(1)
		h.log.Error("hub: ring fault", "err", err, "count", issue.Count, "ongoing", issue.Ongoing, "since", issue.Since)
		h.notify(ChannelNotice{Channel: h.channel, Event: EventRingError, Error: err.Error(), SlotIndex: -1, Ring: issue})
	}
	return true
}

// remember stores cause (mu held), forgetting the cause seen longest ago when
// maxRingCauses are remembered.
func (h *ringHealth) remember(cause string, c *ringCause) {
	if len(h.causes) >= maxRingCauses {
		oldest := ""
		for k, v := range h.causes {
			if oldest == "" || v.lastSeen.Before(h.causes[oldest].lastSeen) {
				oldest = k
			}
		}
		delete(h.causes, oldest)
	}
	h.causes[cause] = c
}

// reattachedAfter counts a Reader replaced after lost and raises
// EventRingReattached.
func (h *ringHealth) reattachedAfter(lost error) {
	n := h.reattached.Add(1)
	h.log.Warn("hub: ring reader lost its heartbeat entry; replaced", "err", lost, "reattached", n)
	h.notify(ChannelNotice{Channel: h.channel, Event: EventRingReattached, Error: lost.Error(), SlotIndex: -1,
		Ring: &RingIssue{Err: lost, Cause: causeOf(lost), Count: 1, Since: time.Now(), Reattached: n}})
}

// causeOf is err's text with every run of digits replaced by N.
func causeOf(err error) string {
	s := err.Error()
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			b = append(b, s[i])
			continue
		}
		if i == 0 || s[i-1] < '0' || s[i-1] > '9' {
			b = append(b, 'N')
		}
	}
	return string(b)
}

// ringBackoff is a loop's bounded exponential pause after faulted
// transactions: ringBackoffMin, doubling up to ringBackoffMax, reset by a
// transaction without a fault.
type ringBackoff struct{ d time.Duration }

// pause waits the next step; false when stop was closed first.
func (b *ringBackoff) pause(stop <-chan struct{}) bool {
	b.d = min(max(2*b.d, ringBackoffMin), ringBackoffMax)
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

// reset starts the next pause at ringBackoffMin again.
func (b *ringBackoff) reset() { b.d = 0 }

// after runs one transaction of a loop: it pauses when the transaction (or
// another on the channel meanwhile) met a ring fault, and resets otherwise.
// It returns false when stop was closed during the pause.
func (b *ringBackoff) after(h *ringHealth, before uint64, stop <-chan struct{}) bool {
	if h.events() == before {
		b.reset()
		return true
	}
	return b.pause(stop)
}
