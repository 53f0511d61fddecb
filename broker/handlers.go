package broker

import (
	"fmt"
	"time"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/wire"
)

// handle decodes one message and dispatches it to its handler. Bad input gets an
// ERROR reply when the protocol allows one, else it is dropped and counted.
func (s *Service) handle(m wire.Msg) {
	start := time.Now()
	f, err := proto.Parse(m.Frames)
	if err != nil || f.Kind != proto.KindControl {
		s.cnt.inc(&s.cnt.dropped)
		s.cfg.Logger.Warn("broker: dropped message with bad frame layout", "frames", len(m.Frames), "err", err)
		return
	}
	typ := proto.Type(f.Type)
	msg, err := proto.Decode(typ, f.Body)
	if proto.New(typ) == nil {
		s.cnt.add(s.cnt.received, "UNKNOWN")
	} else {
		s.cnt.add(s.cnt.received, string(typ))
	}
	if err != nil {
		code, reply := proto.CodeOf(err)
		if !reply || (!proto.HasReply(typ) && code != proto.CodeUnknownMsgType) {
			s.cnt.inc(&s.cnt.dropped)
			s.cfg.Logger.Warn("broker: dropped message", "type", truncate(f.Type), "err", err)
			return
		}
		if code == proto.CodeUnknownMsgType {
			s.cfg.Logger.Warn("Unknown message type: " + truncate(f.Type))
		} else {
			s.cfg.Logger.Warn("broker: rejected request", "type", typ, "err", err)
		}
		s.send(m.Peer, proto.NewError(code, proto.PeekCorrelation(f.Body), err.Error()))
		return
	}
	s.mu.Lock()
	var reply proto.Message
	switch r := msg.(type) {
	case *proto.RegReq:
		reply = s.handleRegReq(m.Peer, r)
	case *proto.HeartbeatReq:
		s.handleHeartbeatReq(r)
	case *proto.DiscReq:
		reply = s.handleDiscReq(r)
	case *proto.DeregReq:
		reply = s.handleDeregReq(r)
	case *proto.ConsumerRegReq:
		reply = s.handleConsumerRegReq(m.Peer, r)
	case *proto.ConsumerDeregReq:
		reply = s.handleConsumerDeregReq(r)
	case *proto.ChecksumErrorReport:
		s.handleChecksumErrorReport(r)
	case *proto.ConsumerHeartbeatReq:
		s.handleConsumerHeartbeatReq(r)
	case *proto.PingReq:
		reply = &proto.PingAck{ReplyHeader: proto.Success(r.CorrelationID, "")}
	case *proto.ChannelListReq:
		reply = &proto.ChannelListAck{ReplyHeader: proto.Success(r.CorrelationID, ""), Channels: s.channelsLocked()}
	case *proto.ChannelCloseReq:
		reply = s.handleChannelCloseReq(r)
	default:
		// A reply or notification type sent to the broker.
		reply = proto.NewError(proto.CodeUnknownMsgType, proto.PeekCorrelation(f.Body), "Unknown message type: "+string(typ))
		s.cfg.Logger.Warn("Unknown message type: " + string(typ))
	}
	s.countRequestLocked(typ, msg, reply)
	if reply != nil {
		s.send(m.Peer, reply)
	}
	s.mu.Unlock()
	if s.cfg.ObserveRequest != nil {
		s.cfg.ObserveRequest(typ, time.Since(start))
	}
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

func (s *Service) handleRegReq(peer []byte, r *proto.RegReq) proto.Message {
	r.ChannelPattern = proto.NormalizePattern(r.ChannelPattern)
	if old, ok := s.channels[r.ChannelName]; ok {
		if old.reg.SchemaHash != r.SchemaHash {
			s.cfg.Logger.Error(fmt.Sprintf("Cat1 schema mismatch on channel '%s'", r.ChannelName),
				"existing_schema_hash", old.reg.SchemaHash, "attempted_schema_hash", r.SchemaHash, "attempted_pid", r.ProducerPID)
			s.notify(old, old.producer, &proto.ChannelErrorNotify{ChannelName: r.ChannelName, Event: proto.EventSchemaMismatch,
				ExistingSchemaHash: old.reg.SchemaHash, AttemptedSchemaHash: r.SchemaHash, AttemptedPID: r.ProducerPID})
			return proto.NewError(proto.CodeSchemaMismatch, r.CorrelationID,
				fmt.Sprintf("Schema hash differs for channel '%s'", r.ChannelName))
		}
		// Producer restart: replace the entry, keep the consumers.
		old.reg, old.producer = *r, append([]byte(nil), peer...)
		old.status, old.lastHeartbeat = pendingReady, time.Now()
		old.cnt.registrations++ // the counters are kept across a producer re-registration
	} else {
		now := time.Now()
		s.channels[r.ChannelName] = &channel{name: r.ChannelName, reg: *r, producer: append([]byte(nil), peer...),
			status: pendingReady, lastHeartbeat: now, cnt: chanCounters{registeredAt: now, registrations: 1}}
	}
	s.cfg.Logger.Info("producer registered", "channel", r.ChannelName, "pid", r.ProducerPID)
	return &proto.RegAck{ReplyHeader: proto.Success(r.CorrelationID, "Producer registered successfully"), ChannelID: r.ChannelName}
}

func (s *Service) handleHeartbeatReq(r *proto.HeartbeatReq) {
	c, ok := s.channels[r.ChannelName]
	if !ok {
		s.cfg.Logger.Warn("heartbeat for unknown channel", "channel", r.ChannelName)
		return
	}
	c.lastHeartbeat = time.Now()
	if c.status == pendingReady {
		c.status = ready
	}
}

func (s *Service) handleDiscReq(r *proto.DiscReq) proto.Message {
	c, ok := s.channels[r.ChannelName]
	if !ok {
		s.cfg.Logger.Warn("discover: channel not found", "channel", r.ChannelName)
		return proto.NewError(proto.CodeChannelNotFound, r.CorrelationID, fmt.Sprintf("Channel '%s' not found", r.ChannelName))
	}
	if c.status != ready {
		return proto.NewError(proto.CodeChannelNotReady, r.CorrelationID, fmt.Sprintf("Channel '%s' is not ready", r.ChannelName))
	}
	return &proto.DiscAck{ReplyHeader: proto.Success(r.CorrelationID, ""),
		ShmName: c.reg.ShmName, SchemaHash: c.reg.SchemaHash, SchemaVersion: c.reg.SchemaVersion,
		Metadata: c.reg.Metadata, ConsumerCount: uint64(len(c.consumers)), HasSharedMemory: c.reg.HasSharedMemory,
		ChannelPattern: c.reg.ChannelPattern, ZmqCtrlEndpoint: c.reg.ZmqCtrlEndpoint,
		ZmqDataEndpoint: c.reg.ZmqDataEndpoint, ZmqPubkey: c.reg.ZmqPubkey, ProducerPID: c.reg.ProducerPID}
}

func (s *Service) handleDeregReq(r *proto.DeregReq) proto.Message {
	c, ok := s.channels[r.ChannelName]
	if !ok || c.reg.ProducerPID != r.ProducerPID {
		s.cfg.Logger.Warn("deregister: not registered", "channel", r.ChannelName, "pid", r.ProducerPID)
		return proto.NewError(proto.CodeNotRegistered, r.CorrelationID,
			fmt.Sprintf("Channel '%s' is not registered by pid %d", r.ChannelName, r.ProducerPID))
	}
	for _, k := range c.consumers {
		s.unwatchLocked(k)
	}
	delete(s.channels, r.ChannelName)
	return &proto.DeregAck{ReplyHeader: proto.Success(r.CorrelationID, "Producer deregistered successfully")}
}

func (s *Service) handleConsumerRegReq(peer []byte, r *proto.ConsumerRegReq) proto.Message {
	c, ok := s.channels[r.ChannelName]
	if !ok {
		s.cfg.Logger.Warn("consumer register: channel not found", "channel", r.ChannelName)
		return proto.NewError(proto.CodeChannelNotFound, r.CorrelationID, fmt.Sprintf("Channel '%s' not found", r.ChannelName))
	}
	k := &consumer{pid: r.ConsumerPID, hostname: r.ConsumerHostname, identity: append([]byte(nil), peer...),
		heartbeats: r.ProtocolVersion != "", lastHeartbeat: time.Now()}
	s.watchLocked(k, r.ConsumerStartTime)
	c.consumers = append(c.consumers, k)
	c.cnt.joined++
	return &proto.ConsumerRegAck{ReplyHeader: proto.Success(r.CorrelationID, "Consumer registered successfully"), ChannelName: r.ChannelName}
}

func (s *Service) handleConsumerDeregReq(r *proto.ConsumerDeregReq) proto.Message {
	if c, ok := s.channels[r.ChannelName]; ok {
		for i, k := range c.consumers {
			if k.pid == r.ConsumerPID {
				s.unwatchLocked(k)
				c.consumers = append(c.consumers[:i], c.consumers[i+1:]...)
				c.cnt.left++
				return &proto.ConsumerDeregAck{ReplyHeader: proto.Success(r.CorrelationID, "Consumer deregistered successfully")}
			}
		}
	}
	s.cfg.Logger.Warn("consumer deregister: not registered", "channel", r.ChannelName, "pid", r.ConsumerPID)
	return proto.NewError(proto.CodeNotRegistered, r.CorrelationID,
		fmt.Sprintf("Consumer pid %d is not registered on channel '%s'", r.ConsumerPID, r.ChannelName))
}

func (s *Service) handleChecksumErrorReport(r *proto.ChecksumErrorReport) {
	s.cfg.Logger.Warn("Cat2 checksum error reported", "channel", r.ChannelName, "slot_index", r.SlotIndex,
		"error", r.Error, "reporter_pid", r.ReporterPID)
	c, ok := s.channels[r.ChannelName]
	if !ok {
		return
	}
	c.cnt.checksum++
	if s.cfg.Checksum != ChecksumNotifyOnly {
		return
	}
	n := &proto.ChannelEventNotify{ChannelName: r.ChannelName, SlotIndex: r.SlotIndex, Error: r.Error,
		ReporterPID: r.ReporterPID, BrokerAction: proto.ActionNotifyOnly}
	for _, k := range c.consumers {
		s.notify(c, k.identity, n)
	}
	s.notify(c, c.producer, n)
}

func (s *Service) handleConsumerHeartbeatReq(r *proto.ConsumerHeartbeatReq) {
	c, ok := s.channels[r.ChannelName]
	if !ok {
		return
	}
	now := time.Now()
	for _, k := range c.consumers {
		if k.pid == r.ConsumerPID {
			k.heartbeats, k.lastHeartbeat = true, now
		}
	}
}

func (s *Service) handleChannelCloseReq(r *proto.ChannelCloseReq) proto.Message {
	c, ok := s.channels[r.ChannelName]
	if !ok {
		return proto.NewError(proto.CodeChannelNotFound, r.CorrelationID, fmt.Sprintf("Channel '%s' not found", r.ChannelName))
	}
	s.closeChannelLocked(c, proto.ReasonExplicitClose)
	s.cnt.inc(&s.cnt.closed)
	return &proto.ChannelCloseAck{ReplyHeader: proto.Success(r.CorrelationID, "Channel closed"), ChannelName: r.ChannelName}
}
