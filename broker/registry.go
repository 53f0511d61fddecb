package broker

import (
	"time"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/proc"
)

type status int

const (
	pendingReady status = iota
	ready
	closing
)

func (s status) String() string {
	switch s {
	case ready:
		return proto.StatusReady
	case closing:
		return proto.StatusClosing
	}
	return proto.StatusPendingReady
}

// channel is one registry entry (spec/protocol.md §4). Guarded by Service.mu.
type channel struct {
	name          string
	reg           proto.RegReq // the producer's registration (defaults applied)
	producer      []byte       // ROUTER identity of the registering socket
	consumers     []*consumer  // in registration order, duplicates allowed
	status        status
	lastHeartbeat time.Time
	cnt           chanCounters // per-channel counters (channel_counters.go)
}

// consumer is one consumer entry. Guarded by Service.mu.
type consumer struct {
	pid           uint64
	hostname      string
	identity      []byte
	proc          proc.Identity // watched with a pidfd when Pid != 0
	watched       bool
	heartbeats    bool // subject to ConsumerTimeout (plh client or has heartbeated)
	lastHeartbeat time.Time
}

func (c *channel) info() proto.ChannelInfo {
	return proto.ChannelInfo{
		Name: c.name, SchemaHash: c.reg.SchemaHash, ConsumerCount: uint64(len(c.consumers)),
		ProducerPID: c.reg.ProducerPID, Status: c.status.String(), Pattern: c.reg.ChannelPattern,
		HasSharedMemory: c.reg.HasSharedMemory,
	}
}
