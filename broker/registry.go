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
	key           string       // logical name (proto.LogicalName), the registry key
	name          string       // display name of the latest registration
	reg           proto.RegReq // the producer's registration (defaults applied)
	producer      []byte       // ROUTER identity of the registering socket
	consumers     []*consumer  // in registration order, one entry per consumer process
	status        status
	lastHeartbeat time.Time
	cnt           chanCounters // per-channel counters (channel_counters.go)
}

// consumer is one consumer entry. Guarded by Service.mu. An entry is replaced,
// never changed in place, when its consumer registers again, so a pointer taken
// under the lock names one registration.
type consumer struct {
	pid           uint64
	hostname      string
	startTime     uint64 // consumer_start_time as registered (0 = not given)
	id            string // consumer_id as registered ("" = not given)
	identity      []byte
	proc          proc.Identity // watched with a pidfd when Pid != 0
	watched       bool
	heartbeats    bool      // subject to ConsumerTimeout (plh client or has heartbeated)
	lastHeartbeat time.Time // registration, then each CONSUMER_HEARTBEAT_REQ
}

// sameConsumer reports whether registration n names the consumer of entry k:
// the same process (pid and hostname, and start time when both sides gave
// one), registering over the same socket (ROUTER identity) with the same
// consumer_id.
func (k *consumer) sameConsumer(n *consumer) bool {
	return k.pid == n.pid && k.hostname == n.hostname &&
		(k.startTime == 0 || n.startTime == 0 || k.startTime == n.startTime) &&
		k.id == n.id && string(k.identity) == string(n.identity)
}

func (c *channel) info() proto.ChannelInfo {
	return proto.ChannelInfo{
		Name: c.name, SchemaHash: c.reg.SchemaHash, ConsumerCount: uint64(len(c.consumers)),
		ProducerPID: c.reg.ProducerPID, Status: c.status.String(), Pattern: c.reg.ChannelPattern,
		HasSharedMemory: c.reg.HasSharedMemory, LayoutGeneration: c.reg.LayoutGeneration,
	}
}
