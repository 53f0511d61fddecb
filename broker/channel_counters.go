package broker

import (
	"time"

	"github.com/pylabhub/plh/broker/proto"
)

// This file holds the per-channel counters of a registry entry (admin shell:
// plh.channel(name)["counters"]). They live in the channel struct, so they are
// guarded by Service.mu like the rest of the entry: only code holding s.mu (the
// handlers of recvLoop, the sweeps, onProcessExit) updates them, and
// ChannelDetail snapshots them under the same lock. Updates are increments of
// fixed arrays indexed by message type, error code and notification type: no
// allocation per request. They start at zero when the entry is created, are
// kept when the producer re-registers (same entry), and vanish with the entry
// (DEREG_REQ, close, heartbeat timeout): a channel registered again starts from
// zero.

// chanRequestTypes are the request types that name a channel, in display order.
var chanRequestTypes = [...]proto.Type{proto.TypeRegReq, proto.TypeHeartbeatReq, proto.TypeDiscReq, proto.TypeDeregReq,
	proto.TypeConsumerRegReq, proto.TypeConsumerDeregReq, proto.TypeConsumerHeartbeatReq,
	proto.TypeChecksumErrorReport, proto.TypeChannelCloseReq, proto.TypeRemapReq}

// chanNotifyTypes are the notifications the broker sends about a channel.
var chanNotifyTypes = [...]proto.Type{proto.TypeChannelClosingNotify, proto.TypeChannelErrorNotify,
	proto.TypeConsumerDiedNotify, proto.TypeChannelEventNotify}

// chanDeathReasons are the reasons a consumer is removed without deregistering.
var chanDeathReasons = [...]string{proto.ReasonProcessDead, proto.ReasonHeartbeatTimeout}

// nCodes is len(proto.Codes) as a constant, for the array size; a unit test
// (TestChannelCountersCoverProto) fails when proto.Codes changes.
const nCodes = 8

// chanCounters is one entry's counters. Guarded by Service.mu.
type chanCounters struct {
	registeredAt  time.Time
	registrations uint64 // REG_REQ accepted (1 + producer re-registrations)
	requests      [len(chanRequestTypes)]uint64
	errors        [nCodes]uint64
	notifications [len(chanNotifyTypes)]uint64
	joined, left  uint64
	died          [len(chanDeathReasons)]uint64
	checksum      uint64
}

func requestIndex(t proto.Type) int {
	switch t {
	case proto.TypeRegReq:
		return 0
	case proto.TypeHeartbeatReq:
		return 1
	case proto.TypeDiscReq:
		return 2
	case proto.TypeDeregReq:
		return 3
	case proto.TypeConsumerRegReq:
		return 4
	case proto.TypeConsumerDeregReq:
		return 5
	case proto.TypeConsumerHeartbeatReq:
		return 6
	case proto.TypeChecksumErrorReport:
		return 7
	case proto.TypeChannelCloseReq:
		return 8
	case proto.TypeRemapReq:
		return 9
	}
	return -1
}

func notifyIndex(t proto.Type) int {
	switch t {
	case proto.TypeChannelClosingNotify:
		return 0
	case proto.TypeChannelErrorNotify:
		return 1
	case proto.TypeConsumerDiedNotify:
		return 2
	case proto.TypeChannelEventNotify:
		return 3
	}
	return -1
}

func codeIndex(c proto.Code) int {
	for i, k := range proto.Codes {
		if k == c {
			if i < nCodes {
				return i
			}
			break
		}
	}
	return -1
}

func reasonIndex(r string) int {
	if r == proto.ReasonHeartbeatTimeout {
		return 1
	}
	return 0
}

// countRequestLocked counts a handled request msg of type t naming a channel,
// and its ERROR reply if the reply was one, on the entry that exists after the
// handler ran (a REG_REQ that created the entry counts on it; a DEREG_REQ or
// CHANNEL_CLOSE_REQ that removed it counts nowhere). Caller holds s.mu.
func (s *Service) countRequestLocked(t proto.Type, msg, reply proto.Message) {
	name := proto.ChannelOf(msg)
	if name == "" {
		return
	}
	c, ok := s.channels[proto.LogicalName(name)]
	if !ok {
		return
	}
	if i := requestIndex(t); i >= 0 {
		c.cnt.requests[i]++
	}
	if e, ok := reply.(*proto.ErrorReply); ok {
		if i := codeIndex(e.ErrorCode); i >= 0 {
			c.cnt.errors[i]++
		}
	}
}

func (cc *chanCounters) countNotify(t proto.Type) {
	if i := notifyIndex(t); i >= 0 {
		cc.notifications[i]++
	}
}

// ChannelCounters is a snapshot of one channel's counters (ChannelDetail).
// Every known key is present in the maps, zero or not.
type ChannelCounters struct {
	RegisteredAgeSecs float64           `json:"registered_age_s"`       // since the entry was created (first REG_REQ)
	Registrations     uint64            `json:"producer_registrations"` // accepted REG_REQs: 1 + re-registrations
	Requests          map[string]uint64 `json:"requests"`               // handled requests naming this channel, by type
	Errors            map[string]uint64 `json:"errors"`                 // ERROR replies to those requests, by code
	Notifications     map[string]uint64 `json:"notifications"`          // notifications sent about this channel, by type
	ConsumersJoined   uint64            `json:"consumers_joined"`       // CONSUMER_REG_REQ accepted
	ConsumersLeft     uint64            `json:"consumers_left"`         // CONSUMER_DEREG_REQ accepted
	ConsumersDied     map[string]uint64 `json:"consumers_died"`         // removed by the broker, by reason
	ChecksumErrors    uint64            `json:"checksum_error_reports"` // CHECKSUM_ERROR_REPORTs received
}

func (cc *chanCounters) snapshot(now time.Time) ChannelCounters {
	out := ChannelCounters{
		RegisteredAgeSecs: now.Sub(cc.registeredAt).Seconds(), Registrations: cc.registrations,
		Requests:        make(map[string]uint64, len(cc.requests)),
		Errors:          make(map[string]uint64, nCodes),
		Notifications:   make(map[string]uint64, len(cc.notifications)),
		ConsumersJoined: cc.joined, ConsumersLeft: cc.left,
		ConsumersDied:  make(map[string]uint64, len(cc.died)),
		ChecksumErrors: cc.checksum,
	}
	for i, t := range chanRequestTypes {
		out.Requests[string(t)] = cc.requests[i]
	}
	for i, c := range proto.Codes[:nCodes] {
		out.Errors[string(c)] = cc.errors[i]
	}
	for i, t := range chanNotifyTypes {
		out.Notifications[string(t)] = cc.notifications[i]
	}
	for i, r := range chanDeathReasons {
		out.ConsumersDied[r] = cc.died[i]
	}
	return out
}
