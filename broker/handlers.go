package broker

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/trace"
	"github.com/pylabhub/plh/internal/wire"
)

// handle decodes one message and dispatches it to its handler. Bad input gets an
// ERROR reply whenever the message is a control message of a type that has a
// reply (the peer is always known: the ROUTER identity); it is dropped and
// counted only when it is not a control message at all, or is fire-and-forget.
func (s *Service) handle(m wire.Msg) {
	start := time.Now()
	s.trace.Message(trace.In, m.Peer, m.Frames)
	f, err := proto.Parse(m.Frames)
	if err != nil || f.Kind != proto.KindControl {
		if badTypeFrame(m.Frames) {
			s.rejectType(m.Peer, string(m.Frames[1]), m.Frames[2])
			return
		}
		s.drop("broker: dropped message with bad frame layout", "frames", len(m.Frames), "err", err)
		return
	}
	typ := proto.Type(f.Type)
	if proto.New(typ) == nil {
		s.rejectType(m.Peer, f.Type, f.Body)
		return
	}
	s.cnt.add(s.cnt.received, string(typ))
	var msg proto.Message
	if len(f.Body) > s.cfg.Limits.MaxBodyBytes {
		s.cnt.add(s.cnt.limits, "body_bytes")
		err = fmt.Errorf("%w: %s body of %d bytes, limit %d", proto.ErrTooLarge, typ, len(f.Body), s.cfg.Limits.MaxBodyBytes)
	} else {
		msg, err = proto.Decode(typ, f.Body)
	}
	if err == nil {
		err = s.checkName(msg)
	}
	if err != nil {
		s.reject(m.Peer, typ, f.Body, err)
		return
	}
	if r, ok := msg.(*proto.ChannelListReq); ok {
		s.send(m.Peer, s.handleChannelListReq(r)) // takes s.mu itself, briefly
		s.observe(typ, start)
		return
	}
	s.mu.Lock()
	reply := s.dispatchLocked(m.Peer, msg, f.Body)
	s.countRequestLocked(typ, msg, reply)
	if reply != nil {
		s.send(m.Peer, reply)
	}
	s.mu.Unlock()
	s.observe(typ, start)
}

func (s *Service) observe(t proto.Type, start time.Time) {
	if s.cfg.ObserveRequest != nil {
		s.cfg.ObserveRequest(t, time.Since(start))
	}
}

// dispatchLocked runs the handler of msg. Caller holds s.mu.
func (s *Service) dispatchLocked(peer []byte, msg proto.Message, body []byte) proto.Message {
	switch r := msg.(type) {
	case *proto.RegReq:
		return s.handleRegReq(peer, r)
	case *proto.HeartbeatReq:
		s.handleHeartbeatReq(r)
	case *proto.DiscReq:
		return s.handleDiscReq(r)
	case *proto.DeregReq:
		return s.handleDeregReq(r)
	case *proto.ConsumerRegReq:
		return s.handleConsumerRegReq(peer, r)
	case *proto.ConsumerDeregReq:
		return s.handleConsumerDeregReq(r)
	case *proto.ChecksumErrorReport:
		s.handleChecksumErrorReport(r)
	case *proto.ConsumerHeartbeatReq:
		s.handleConsumerHeartbeatReq(r)
	case *proto.PingReq:
		return &proto.PingAck{ReplyHeader: proto.Success(r.CorrelationID, "")}
	case *proto.ChannelCloseReq:
		return s.handleChannelCloseReq(r)
	case *proto.RemapReq:
		return s.handleRemapReq(peer, r)
	default:
		// A reply or notification type sent to the broker.
		s.log.warn("Unknown message type", "type", msg.MsgType())
		return proto.NewError(proto.CodeUnknownMsgType, proto.PeekCorrelation(body), "Unknown message type: "+string(msg.MsgType()))
	}
	return nil
}

// badTypeFrame reports whether frames are ['C'][type][body] with a type frame
// that proto.Parse refuses (empty, too long, not printable ASCII): a control
// message whose sender can be told UNKNOWN_MSG_TYPE.
func badTypeFrame(frames [][]byte) bool {
	return len(frames) >= 3 && len(frames[0]) == 1 && frames[0][0] == proto.KindControl
}

// rejectType answers a message of an unknown (or unusable) type.
func (s *Service) rejectType(peer []byte, typ string, body []byte) {
	s.cnt.add(s.cnt.received, "UNKNOWN")
	q := strconv.QuoteToASCII(quote(typ))
	s.log.warn("Unknown message type", "type", q)
	s.send(peer, proto.NewError(proto.CodeUnknownMsgType, proto.PeekCorrelation(body), "Unknown message type: "+q[1:len(q)-1]))
}

// reject answers a request that failed decoding or a limit, or drops it when its
// type has no reply (fire-and-forget messages are never answered).
func (s *Service) reject(peer []byte, typ proto.Type, body []byte, err error) {
	code, ok := proto.CodeOf(err)
	if !ok || !proto.HasReply(typ) {
		s.drop("broker: dropped message", "type", typ, "err", err)
		return
	}
	s.log.warn("broker: rejected request", "type", typ, "code", code, "err", err)
	s.send(peer, proto.NewError(code, proto.PeekCorrelation(body), err.Error()))
}

func (s *Service) drop(msg string, args ...any) {
	s.cnt.inc(&s.cnt.dropped)
	s.log.warn(msg, args...)
}

// checkName applies Limits.MaxNameBytes to the channel_name of any request.
func (s *Service) checkName(msg proto.Message) error {
	if name := proto.ChannelOf(msg); !within(len(name), s.cfg.Limits.MaxNameBytes) {
		s.cnt.add(s.cnt.limits, "name_bytes")
		return fmt.Errorf("%w: channel_name of %d bytes, limit %d (%q)", proto.ErrTooLarge, len(name), s.cfg.Limits.MaxNameBytes, quote(name))
	}
	return nil
}

// limitError counts a broken limit and builds its LIMIT_EXCEEDED reply.
func (s *Service) limitError(limit, corr, format string, args ...any) proto.Message {
	s.cnt.add(s.cnt.limits, limit)
	msg := fmt.Sprintf(format, args...)
	s.log.warn("broker: limit exceeded", "limit", limit, "detail", msg)
	return proto.NewError(proto.CodeLimitExceeded, corr, msg)
}

// checkRegLimits applies the field and metadata limits to a registration.
func (s *Service) checkRegLimits(r *proto.RegReq) proto.Message {
	for name, v := range map[string]string{"shm_name": r.ShmName, "schema_hash": r.SchemaHash,
		"producer_hostname": r.ProducerHostname, "zmq_ctrl_endpoint": r.ZmqCtrlEndpoint,
		"zmq_data_endpoint": r.ZmqDataEndpoint, "zmq_pubkey": r.ZmqPubkey, "schema_name": r.SchemaName} {
		if !within(len(v), s.cfg.Limits.MaxFieldBytes) {
			return s.limitError("field_bytes", r.CorrelationID, "%s of %d bytes, limit %d", name, len(v), s.cfg.Limits.MaxFieldBytes)
		}
	}
	if s.cfg.Limits.MaxMetadataBytes >= 0 && (r.Metadata != nil || r.SchemaBLDS != "") {
		n := len(r.SchemaBLDS)
		if r.Metadata != nil {
			b, _ := json.Marshal(r.Metadata)
			n += len(b)
		}
		if n > s.cfg.Limits.MaxMetadataBytes {
			return s.limitError("metadata_bytes", r.CorrelationID, "metadata and schema_blds of %d bytes, limit %d", n, s.cfg.Limits.MaxMetadataBytes)
		}
	}
	return nil
}

// schemaConflict decides whether registration r may replace the channel
// registered as old (docs/protocol.md "Schema registry"), and why not: the
// same schema_hash always may (a producer restart); with another hash, only
// when both carry a schema descriptor and r's is compatible with old's
// (proto.CheckSchema: same name and major, old's fields kept, appended
// fields only with a higher minor version).
func schemaConflict(old proto.RegReq, r *proto.RegReq) string {
	if old.SchemaHash == r.SchemaHash {
		return ""
	}
	if !old.Schema().Present() || !r.Schema().Present() {
		return fmt.Sprintf("schema_hash %q, registered %q", quote(r.SchemaHash), quote(old.SchemaHash))
	}
	if err := proto.CheckSchema(old.Schema(), r.Schema()); err != nil {
		return err.Error()
	}
	return ""
}

func (s *Service) handleRegReq(peer []byte, r *proto.RegReq) proto.Message {
	r.ChannelPattern = proto.NormalizePattern(r.ChannelPattern)
	if e := s.checkRegLimits(r); e != nil {
		return e
	}
	key := proto.LogicalName(r.ChannelName)
	if old, ok := s.channels[key]; ok {
		if why := schemaConflict(old.reg, r); why != "" {
			s.log.errorLine("Cat1 schema mismatch", "channel", r.ChannelName,
				"existing_schema_hash", old.reg.SchemaHash, "attempted_schema_hash", r.SchemaHash, "attempted_pid", r.ProducerPID, "why", why)
			s.notify(old, old.producer, &proto.ChannelErrorNotify{ChannelName: old.name, Event: proto.EventSchemaMismatch,
				ExistingSchemaHash: old.reg.SchemaHash, AttemptedSchemaHash: r.SchemaHash, AttemptedPID: r.ProducerPID})
			return proto.NewError(proto.CodeSchemaMismatch, r.CorrelationID,
				fmt.Sprintf("Schema differs for channel '%s': %s", r.ChannelName, why))
		}
		// Producer restart (or a compatible schema upgrade): replace the
		// entry, keep the consumers.
		old.name, old.reg, old.producer = r.ChannelName, *r, append([]byte(nil), peer...)
		old.status, old.lastHeartbeat = pendingReady, time.Now()
		old.cnt.registrations++ // the counters are kept across a producer re-registration
	} else {
		if !within(len(s.channels)+1, s.cfg.Limits.MaxChannels) {
			return s.limitError("channels", r.CorrelationID, "the broker holds %d channels, limit %d", len(s.channels), s.cfg.Limits.MaxChannels)
		}
		now := time.Now()
		s.channels[key] = &channel{key: key, name: r.ChannelName, reg: *r, producer: append([]byte(nil), peer...),
			status: pendingReady, lastHeartbeat: now, cnt: chanCounters{registeredAt: now, registrations: 1}}
		s.chanGen++
	}
	s.cfg.Logger.Info("producer registered", "channel", r.ChannelName, "pid", r.ProducerPID)
	return &proto.RegAck{ReplyHeader: proto.Success(r.CorrelationID, "Producer registered successfully"), ChannelID: r.ChannelName}
}

func (s *Service) handleHeartbeatReq(r *proto.HeartbeatReq) {
	c, ok := s.channels[proto.LogicalName(r.ChannelName)]
	if !ok {
		s.log.warn("heartbeat for unknown channel", "channel", r.ChannelName)
		return
	}
	c.lastHeartbeat = time.Now()
	if c.status == pendingReady {
		c.status = ready
	}
}

func (s *Service) handleDiscReq(r *proto.DiscReq) proto.Message {
	c, ok := s.channels[proto.LogicalName(r.ChannelName)]
	if !ok {
		s.log.warn("discover: channel not found", "channel", r.ChannelName)
		return proto.NewError(proto.CodeChannelNotFound, r.CorrelationID, fmt.Sprintf("Channel '%s' not found", r.ChannelName))
	}
	if c.status != ready {
		return proto.NewError(proto.CodeChannelNotReady, r.CorrelationID, fmt.Sprintf("Channel '%s' is not ready", r.ChannelName))
	}
	return &proto.DiscAck{ReplyHeader: proto.Success(r.CorrelationID, ""),
		ShmName: c.reg.ShmName, SchemaHash: c.reg.SchemaHash, SchemaVersion: c.reg.SchemaVersion,
		Metadata: c.reg.Metadata, ConsumerCount: uint64(len(c.consumers)), HasSharedMemory: c.reg.HasSharedMemory,
		ChannelPattern: c.reg.ChannelPattern, ZmqCtrlEndpoint: c.reg.ZmqCtrlEndpoint,
		ZmqDataEndpoint: c.reg.ZmqDataEndpoint, ZmqPubkey: c.reg.ZmqPubkey, ProducerPID: c.reg.ProducerPID,
		SchemaName: c.reg.SchemaName, SchemaBLDS: c.reg.SchemaBLDS, LayoutGeneration: c.reg.LayoutGeneration}
}

// handleRemapReq applies a structure remap (B-19; docs/protocol.md "Structure
// remapping"): only the registered producer (pid and connection) may move its
// channel to a new segment, and only forward (a higher layout_generation).
// The registration takes the new segment, schema and generation (consumers
// kept), then every consumer and the producer get CHANNEL_EVENT_NOTIFY "remap".
func (s *Service) handleRemapReq(peer []byte, r *proto.RemapReq) proto.Message {
	c, ok := s.channels[proto.LogicalName(r.ChannelName)]
	if !ok {
		return proto.NewError(proto.CodeChannelNotFound, r.CorrelationID, fmt.Sprintf("Channel '%s' not found", r.ChannelName))
	}
	if c.reg.ProducerPID != r.ProducerPID || string(c.producer) != string(peer) {
		return proto.NewError(proto.CodeNotRegistered, r.CorrelationID,
			fmt.Sprintf("Channel '%s' is not registered by pid %d on this connection", r.ChannelName, r.ProducerPID))
	}
	if r.LayoutGeneration <= c.reg.LayoutGeneration {
		return proto.NewError(proto.CodeInvalidRequest, r.CorrelationID,
			fmt.Sprintf("layout_generation %d is not above the registered %d", r.LayoutGeneration, c.reg.LayoutGeneration))
	}
	for name, v := range map[string]string{"shm_name": r.ShmName, "schema_hash": r.SchemaHash, "schema_name": r.SchemaName} {
		if !within(len(v), s.cfg.Limits.MaxFieldBytes) {
			return s.limitError("field_bytes", r.CorrelationID, "%s of %d bytes, limit %d", name, len(v), s.cfg.Limits.MaxFieldBytes)
		}
	}
	if !within(len(r.SchemaBLDS), s.cfg.Limits.MaxMetadataBytes) {
		return s.limitError("metadata_bytes", r.CorrelationID, "schema_blds of %d bytes, limit %d", len(r.SchemaBLDS), s.cfg.Limits.MaxMetadataBytes)
	}
	c.reg.ShmName, c.reg.HasSharedMemory, c.reg.LayoutGeneration = r.ShmName, true, r.LayoutGeneration
	if r.SchemaHash != "" {
		c.reg.SchemaHash = r.SchemaHash
	}
	if r.SchemaVersion != 0 {
		c.reg.SchemaVersion = r.SchemaVersion
	}
	if r.Schema().Present() {
		c.reg.SchemaName, c.reg.SchemaBLDS = r.SchemaName, r.SchemaBLDS
	}
	s.cfg.Logger.Info("channel remapped", "channel", c.name, "shm_name", r.ShmName, "layout_generation", r.LayoutGeneration,
		"schema_hash", c.reg.SchemaHash, "final_seq", r.FinalSeq)
	s.notifyParties(c, &proto.ChannelEventNotify{ChannelName: c.name, Event: proto.EventRemap, SlotIndex: -1,
		BrokerAction: proto.ActionRemap, ShmName: r.ShmName, SchemaHash: c.reg.SchemaHash,
		LayoutGeneration: r.LayoutGeneration, FinalSeq: r.FinalSeq})
	return &proto.RemapAck{ReplyHeader: proto.Success(r.CorrelationID, "Channel remapped"), ChannelName: c.name,
		LayoutGeneration: r.LayoutGeneration}
}

func (s *Service) handleDeregReq(r *proto.DeregReq) proto.Message {
	c, ok := s.channels[proto.LogicalName(r.ChannelName)]
	if !ok || c.reg.ProducerPID != r.ProducerPID {
		s.log.warn("deregister: not registered", "channel", r.ChannelName, "pid", r.ProducerPID)
		return proto.NewError(proto.CodeNotRegistered, r.CorrelationID,
			fmt.Sprintf("Channel '%s' is not registered by pid %d", r.ChannelName, r.ProducerPID))
	}
	for _, k := range c.consumers {
		s.unwatchLocked(k)
	}
	delete(s.channels, c.key)
	s.chanGen++
	return &proto.DeregAck{ReplyHeader: proto.Success(r.CorrelationID, "Producer deregistered successfully")}
}

// handleConsumerRegReq adds a consumer entry, or replaces the entry of the same
// consumer (sameConsumer: process, socket, consumer_id) when it registers
// again: one entry per consumer, whatever its client retries.
func (s *Service) handleConsumerRegReq(peer []byte, r *proto.ConsumerRegReq) proto.Message {
	c, ok := s.channels[proto.LogicalName(r.ChannelName)]
	if !ok {
		s.log.warn("consumer register: channel not found", "channel", r.ChannelName)
		return proto.NewError(proto.CodeChannelNotFound, r.CorrelationID, fmt.Sprintf("Channel '%s' not found", r.ChannelName))
	}
	if n := max(len(r.ConsumerHostname), len(r.ConsumerID)); !within(n, s.cfg.Limits.MaxFieldBytes) {
		return s.limitError("field_bytes", r.CorrelationID, "consumer_hostname or consumer_id of %d bytes, limit %d", n, s.cfg.Limits.MaxFieldBytes)
	}
	k := &consumer{pid: r.ConsumerPID, hostname: r.ConsumerHostname, startTime: r.ConsumerStartTime, id: r.ConsumerID,
		identity: append([]byte(nil), peer...), heartbeats: r.ProtocolVersion != "", lastHeartbeat: time.Now()}
	i := slices.IndexFunc(c.consumers, func(o *consumer) bool { return o.sameConsumer(k) })
	if i < 0 && !within(len(c.consumers)+1, s.cfg.Limits.MaxConsumersPerChannel) {
		return s.limitError("consumers_per_channel", r.CorrelationID, "channel '%s' has %d consumers, limit %d",
			r.ChannelName, len(c.consumers), s.cfg.Limits.MaxConsumersPerChannel)
	}
	s.watchLocked(k, r.ConsumerStartTime)
	if i >= 0 {
		s.unwatchLocked(c.consumers[i])
		c.consumers[i] = k
	} else {
		c.consumers = append(c.consumers, k)
		c.cnt.joined++
	}
	return &proto.ConsumerRegAck{ReplyHeader: proto.Success(r.CorrelationID, "Consumer registered successfully"), ChannelName: r.ChannelName}
}

func (s *Service) handleConsumerDeregReq(r *proto.ConsumerDeregReq) proto.Message {
	if c, ok := s.channels[proto.LogicalName(r.ChannelName)]; ok {
		for i, k := range c.consumers {
			if k.pid == r.ConsumerPID && (r.ConsumerID == "" || k.id == r.ConsumerID) {
				if seededDeregBug {
					i, k = 0, c.consumers[0]
				}
				s.unwatchLocked(k)
				c.consumers = append(c.consumers[:i], c.consumers[i+1:]...)
				c.cnt.left++
				return &proto.ConsumerDeregAck{ReplyHeader: proto.Success(r.CorrelationID, "Consumer deregistered successfully")}
			}
		}
	}
	s.log.warn("consumer deregister: not registered", "channel", r.ChannelName, "pid", r.ConsumerPID)
	return proto.NewError(proto.CodeNotRegistered, r.CorrelationID,
		fmt.Sprintf("Consumer pid %d is not registered on channel '%s'", r.ConsumerPID, r.ChannelName))
}

func (s *Service) handleChecksumErrorReport(r *proto.ChecksumErrorReport) {
	s.log.warn("Cat2 checksum error reported", "channel", r.ChannelName, "slot_index", r.SlotIndex,
		"error", quote(r.Error), "reporter_pid", r.ReporterPID)
	c, ok := s.channels[proto.LogicalName(r.ChannelName)]
	if !ok {
		return
	}
	c.cnt.checksum++
	switch s.cfg.Checksum {
	case ChecksumNotifyOnly:
		s.notifyParties(c, &proto.ChannelEventNotify{ChannelName: r.ChannelName, SlotIndex: r.SlotIndex, Error: r.Error,
			ReporterPID: r.ReporterPID, BrokerAction: proto.ActionNotifyOnly})
	case ChecksumRepair:
		s.queueRepair(c, r)
	}
}

// notifyParties sends n to every consumer of c, then its producer.
func (s *Service) notifyParties(c *channel, n proto.Message) {
	for _, k := range c.consumers {
		s.notify(c, k.identity, n)
	}
	s.notify(c, c.producer, n)
}

func (s *Service) handleConsumerHeartbeatReq(r *proto.ConsumerHeartbeatReq) {
	c, ok := s.channels[proto.LogicalName(r.ChannelName)]
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
	c, ok := s.channels[proto.LogicalName(r.ChannelName)]
	if !ok {
		return proto.NewError(proto.CodeChannelNotFound, r.CorrelationID, fmt.Sprintf("Channel '%s' not found", r.ChannelName))
	}
	s.closeChannelLocked(c, proto.ReasonExplicitClose)
	s.cnt.inc(&s.cnt.closed)
	return &proto.ChannelCloseAck{ReplyHeader: proto.Success(r.CorrelationID, "Channel closed"), ChannelName: r.ChannelName}
}

// handleChannelListReq answers one page of the channel list, in name order.
// It copies the names after the cursor under s.mu, sorts them without the lock,
// and takes the lock again only to read the page's entries, so listing 100,000
// channels never holds the request path for a sort.
func (s *Service) handleChannelListReq(r *proto.ChannelListReq) proto.Message {
	limit := s.cfg.Limits.ListPage
	if r.Limit > 0 && int(r.Limit) < limit {
		limit = int(r.Limit)
	}
	names := s.sortedChannelNames()
	cursor := proto.LogicalName(r.Cursor) // next_cursor is a display name
	from, _ := slices.BinarySearch(names, cursor)
	for from < len(names) && names[from] <= cursor {
		from++
	}

	ack := &proto.ChannelListAck{ReplyHeader: proto.Success(r.CorrelationID, ""), Channels: []proto.ChannelInfo{}}
	size := 0
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names[from:] {
		c, ok := s.channels[n]
		if !ok {
			continue // gone since the names were taken
		}
		info := c.info()
		size += listEntryBytes(info)
		if len(ack.Channels) == limit || (size > s.cfg.Limits.ListPageBytes && len(ack.Channels) > 0) {
			ack.NextCursor = ack.Channels[len(ack.Channels)-1].Name
			break
		}
		ack.Channels = append(ack.Channels, info)
	}
	return ack
}

// sortedNames is the registry's channel names in order, as of one generation
// of the registry (Service.chanGen).
type sortedNames struct {
	gen   uint64
	names []string
}

// sortedChannelNames returns every channel name in order. The sorted list is
// kept until a channel is added or removed, so paging through a large
// registry sorts it once, not once per page; the sort runs outside the lock.
// The returned slice is never modified.
func (s *Service) sortedChannelNames() []string {
	s.mu.Lock()
	if s.listed.names != nil && s.listed.gen == s.chanGen {
		names := s.listed.names
		s.mu.Unlock()
		return names
	}
	gen := s.chanGen
	names := make([]string, 0, len(s.channels))
	for n := range s.channels {
		names = append(names, n)
	}
	s.mu.Unlock()
	slices.Sort(names)
	s.mu.Lock()
	if s.chanGen == gen {
		s.listed = sortedNames{gen: gen, names: names}
	}
	s.mu.Unlock()
	return names
}

// listEntryBytes bounds the JSON size of one CHANNEL_LIST_ACK entry from above
// (names and hashes as written, plus the fixed keys and numbers).
func listEntryBytes(c proto.ChannelInfo) int { return 2*(len(c.Name)+len(c.SchemaHash)) + 192 }
