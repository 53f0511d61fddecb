package broker

import (
	"sync"

	"github.com/pylabhub/plh/internal/wire"
)

// Stats is a snapshot of the broker's counters (B-13). Maps are copies.
type Stats struct {
	Received         map[string]uint64 // requests received by message type ("UNKNOWN" for unknown types)
	Errors           map[string]uint64 // ERROR replies by error code, counted as they are queued (a failed send is also in SendFailures)
	Notifications    map[string]uint64 // notifications by type, counted as they are queued
	Dropped          uint64            // messages dropped without reply (malformed, data frames, too large)
	ChannelTimeouts  uint64            // channels closed for missing heartbeats
	ConsumerTimeouts uint64            // consumers removed for missing consumer heartbeats
	DeadConsumers    uint64            // consumers removed because their process died
	ChannelsClosed   uint64            // channels closed explicitly (CHANNEL_CLOSE_REQ, CloseChannel)
	SendFailures     uint64            // replies/notifications refused by the wire (queue full)
	LimitsExceeded   map[string]uint64 // requests refused with LIMIT_EXCEEDED, by limit (Limits field docs)
	LivenessSweeps   uint64            // /proc liveness sweeps finished
	Repaired         uint64            // checksum repairs that recomputed a hash (policy Repair)
	RepairsFailed    uint64            // checksum repairs that failed or could not run here (policy Repair)
	Channels         int               // channels registered now
	Consumers        int               // consumer entries now
	Wire             wire.Stats        // the ROUTER's counters
}

type counters struct {
	mu                                                            sync.Mutex
	received, errors, notifications, limits                       map[string]uint64
	dropped, chTimeouts, consTimeouts, dead, closed, sendFailures uint64
	sweeps, repaired, repairsFailed                               uint64
}

func newCounters() *counters {
	return &counters{received: map[string]uint64{}, errors: map[string]uint64{}, notifications: map[string]uint64{},
		limits: map[string]uint64{}}
}

func (c *counters) add(m map[string]uint64, k string) {
	c.mu.Lock()
	m[k]++
	c.mu.Unlock()
}

func (c *counters) inc(p *uint64) {
	c.mu.Lock()
	*p++
	c.mu.Unlock()
}

func copyMap(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (c *counters) snapshot() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{
		Received: copyMap(c.received), Errors: copyMap(c.errors), Notifications: copyMap(c.notifications),
		Dropped: c.dropped, ChannelTimeouts: c.chTimeouts, ConsumerTimeouts: c.consTimeouts,
		DeadConsumers: c.dead, ChannelsClosed: c.closed, SendFailures: c.sendFailures,
		LimitsExceeded: copyMap(c.limits), LivenessSweeps: c.sweeps,
		Repaired: c.repaired, RepairsFailed: c.repairsFailed,
	}
}
