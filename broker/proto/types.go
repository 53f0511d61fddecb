package proto

// Versions carried on the wire.
const (
	// ProtocolVersion is sent by plh clients in every request ("protocol_version").
	// 1.1 added the schema descriptor (B-9: REG_REQ and DISC_ACK schema_name,
	// schema_blds), a compatible addition; 1.2 structure remapping (B-19:
	// REMAP_REQ/REMAP_ACK, layout_generation, the "remap" CHANNEL_EVENT_NOTIFY).
	ProtocolVersion = "1.2"
	// BrokerVersion is sent by the broker in every reply ("broker_version").
	BrokerVersion = "1.2"
)

// Type is a message-type string (the second frame).
type Type string

// Requests (client → broker).
const (
	TypeRegReq               Type = "REG_REQ"
	TypeHeartbeatReq         Type = "HEARTBEAT_REQ"
	TypeDiscReq              Type = "DISC_REQ"
	TypeDeregReq             Type = "DEREG_REQ"
	TypeConsumerRegReq       Type = "CONSUMER_REG_REQ"
	TypeConsumerDeregReq     Type = "CONSUMER_DEREG_REQ"
	TypeChecksumErrorReport  Type = "CHECKSUM_ERROR_REPORT"
	TypeConsumerHeartbeatReq Type = "CONSUMER_HEARTBEAT_REQ"
	TypePingReq              Type = "PING_REQ"
	TypeChannelListReq       Type = "CHANNEL_LIST_REQ"
	TypeChannelCloseReq      Type = "CHANNEL_CLOSE_REQ"
	TypeRemapReq             Type = "REMAP_REQ"
)

// Replies (broker → requester).
const (
	TypeRegAck           Type = "REG_ACK"
	TypeDiscAck          Type = "DISC_ACK"
	TypeDeregAck         Type = "DEREG_ACK"
	TypeConsumerRegAck   Type = "CONSUMER_REG_ACK"
	TypeConsumerDeregAck Type = "CONSUMER_DEREG_ACK"
	TypePingAck          Type = "PING_ACK"
	TypeChannelListAck   Type = "CHANNEL_LIST_ACK"
	TypeChannelCloseAck  Type = "CHANNEL_CLOSE_ACK"
	TypeRemapAck         Type = "REMAP_ACK"
	TypeError            Type = "ERROR"
)

// Notifications (broker → client, unsolicited).
const (
	TypeChannelClosingNotify Type = "CHANNEL_CLOSING_NOTIFY"
	TypeChannelErrorNotify   Type = "CHANNEL_ERROR_NOTIFY"
	TypeConsumerDiedNotify   Type = "CONSUMER_DIED_NOTIFY"
	TypeChannelEventNotify   Type = "CHANNEL_EVENT_NOTIFY"
)

// Code is an error code of an ERROR reply (spec/protocol.md §5.1 + VERSION_MISMATCH).
type Code string

// Error codes.
const (
	CodeInvalidRequest  Code = "INVALID_REQUEST"
	CodeSchemaMismatch  Code = "SCHEMA_MISMATCH"
	CodeChannelNotFound Code = "CHANNEL_NOT_FOUND"
	CodeChannelNotReady Code = "CHANNEL_NOT_READY"
	CodeNotRegistered   Code = "NOT_REGISTERED"
	CodeUnknownMsgType  Code = "UNKNOWN_MSG_TYPE"
	CodeVersionMismatch Code = "VERSION_MISMATCH"
	// CodeLimitExceeded: the request would break one of the broker's limits
	// (channels, consumers per channel, name, metadata or field length, body size).
	CodeLimitExceeded Code = "LIMIT_EXCEEDED"
)

// Codes lists every error code (for counters and docs).
var Codes = []Code{CodeInvalidRequest, CodeSchemaMismatch, CodeChannelNotFound, CodeChannelNotReady,
	CodeNotRegistered, CodeUnknownMsgType, CodeVersionMismatch, CodeLimitExceeded}

// Status values of a reply body.
const (
	StatusSuccess = "success"
	StatusError   = "error"
)

// Channel patterns.
const (
	PatternPubSub   = "PubSub"
	PatternPipeline = "Pipeline"
	PatternBidir    = "Bidir"
)

// NormalizePattern maps unknown pattern strings to PubSub (spec/protocol.md §11.1).
func NormalizePattern(p string) string {
	switch p {
	case PatternPipeline, PatternBidir:
		return p
	}
	return PatternPubSub
}

// Channel status strings (admin listing, CHANNEL_LIST_ACK).
const (
	StatusPendingReady = "PendingReady"
	StatusReady        = "Ready"
	StatusClosing      = "Closing"
)

// Reasons carried by notifications.
const (
	ReasonHeartbeatTimeout = "heartbeat_timeout"
	ReasonProcessDead      = "process_dead"
	ReasonExplicitClose    = "explicit_close"
	EventSchemaMismatch    = "schema_mismatch_attempt"
	ActionNotifyOnly       = "notify_only"
	// Repair policy (B-16): the hub recomputed the slot's hash, found nothing to
	// repair (broker_detail says why), or could not (broker_detail: the error).
	ActionRepaired     = "repaired"
	ActionNotRepaired  = "not_repaired"
	ActionRepairFailed = "repair_failed"
	// EventRemap is the CHANNEL_EVENT_NOTIFY event of a structure remap (B-19,
	// protocol 1.2); its broker_action is ActionRemap.
	EventRemap  = "remap"
	ActionRemap = "remap"
)

// Message is any control message.
type Message interface {
	// MsgType returns the type string sent in the second frame.
	MsgType() Type
}

// Request is a client → broker message.
type Request interface {
	Message
	header() *ReqHeader
}

// Reply is a broker → client reply (success ACK or ERROR).
type Reply interface {
	Message
	reply() *ReplyHeader
}

// ReqHeader is embedded in every request.
type ReqHeader struct {
	CorrelationID   string `json:"correlation_id,omitempty"`
	ProtocolVersion string `json:"protocol_version,omitempty"`
}

func (h *ReqHeader) header() *ReqHeader { return h }

// Correlation returns the request's correlation id.
func (h *ReqHeader) Correlation() string { return h.CorrelationID }

// ReplyHeader is embedded in every reply.
type ReplyHeader struct {
	Status        string `json:"status"`
	CorrelationID string `json:"correlation_id,omitempty"`
	BrokerVersion string `json:"broker_version,omitempty"`
	Message       string `json:"message,omitempty"`
}

func (h *ReplyHeader) reply() *ReplyHeader { return h }

// Correlation returns the reply's correlation id.
func (h *ReplyHeader) Correlation() string { return h.CorrelationID }

// OK reports whether Status is "success" (clients decide on the body, not the type).
func (h *ReplyHeader) OK() bool { return h.Status == StatusSuccess }

// RegReq registers (or re-registers) a producer's channel (§5.2).
type RegReq struct {
	ReqHeader
	ChannelName      string         `json:"channel_name"`
	ShmName          string         `json:"shm_name,omitempty"`
	SchemaHash       string         `json:"schema_hash,omitempty"`
	SchemaVersion    uint32         `json:"schema_version,omitempty"`
	ProducerPID      uint64         `json:"producer_pid,omitempty"`
	ProducerHostname string         `json:"producer_hostname,omitempty"`
	HasSharedMemory  bool           `json:"has_shared_memory,omitempty"`
	ChannelPattern   string         `json:"channel_pattern,omitempty"`
	ZmqCtrlEndpoint  string         `json:"zmq_ctrl_endpoint,omitempty"`
	ZmqDataEndpoint  string         `json:"zmq_data_endpoint,omitempty"`
	ZmqPubkey        string         `json:"zmq_pubkey,omitempty"`
	Metadata         map[string]any `json:"metadata,omitempty"`
	// ProducerStartTime is the producer's /proc start time (plh addition, optional).
	ProducerStartTime uint64 `json:"producer_start_time,omitempty"`
	// SchemaName and SchemaBLDS, with SchemaVersion, are the schema descriptor
	// (B-9, protocol 1.1; optional): see Schema and CheckSchema.
	SchemaName string `json:"schema_name,omitempty"`
	SchemaBLDS string `json:"schema_blds,omitempty"`
	// LayoutGeneration (B-19, protocol 1.2; optional) is the producer's
	// layout generation: 0 for the layout it was created with, +1 per
	// structure remap. A producer registering again (broker restart) repeats it.
	LayoutGeneration uint64 `json:"layout_generation,omitempty"`
}

// Schema returns the registration's schema descriptor.
func (r *RegReq) Schema() Schema {
	return Schema{Name: r.SchemaName, Version: r.SchemaVersion, BLDS: r.SchemaBLDS}
}

// HeartbeatReq keeps a channel alive (fire-and-forget, §5.3).
type HeartbeatReq struct {
	ReqHeader
	ChannelName string `json:"channel_name"`
	ProducerPID uint64 `json:"producer_pid,omitempty"`
}

// DiscReq asks for a channel's connection details (§5.4).
type DiscReq struct {
	ReqHeader
	ChannelName string `json:"channel_name"`
}

// DeregReq removes a producer's channel (§5.5).
type DeregReq struct {
	ReqHeader
	ChannelName string `json:"channel_name"`
	ProducerPID uint64 `json:"producer_pid"`
}

// ConsumerRegReq registers a consumer of a channel (§5.6). ConsumerStartTime
// (plh addition) lets the broker watch the exact process with a pidfd.
// ConsumerID (plh addition) tells apart several consumers of one channel that a
// process registers over one socket; a registration repeating an existing
// entry's process, socket and ConsumerID replaces that entry.
type ConsumerRegReq struct {
	ReqHeader
	ChannelName       string `json:"channel_name"`
	ConsumerPID       uint64 `json:"consumer_pid"`
	ConsumerHostname  string `json:"consumer_hostname,omitempty"`
	ConsumerStartTime uint64 `json:"consumer_start_time,omitempty"`
	ConsumerID        string `json:"consumer_id,omitempty"`
}

// ConsumerDeregReq removes the first consumer entry with the pid (§5.7), and
// with the ConsumerID when one is given.
type ConsumerDeregReq struct {
	ReqHeader
	ChannelName string `json:"channel_name"`
	ConsumerPID uint64 `json:"consumer_pid"`
	ConsumerID  string `json:"consumer_id,omitempty"`
}

// ChecksumErrorReport reports a slot checksum failure (fire-and-forget, §5.8).
type ChecksumErrorReport struct {
	ReqHeader
	ChannelName string `json:"channel_name"`
	SlotIndex   int32  `json:"slot_index"`
	Error       string `json:"error,omitempty"`
	ReporterPID uint64 `json:"reporter_pid,omitempty"`
}

// ConsumerHeartbeatReq keeps a consumer alive (fire-and-forget, B-3).
type ConsumerHeartbeatReq struct {
	ReqHeader
	ChannelName string `json:"channel_name"`
	ConsumerPID uint64 `json:"consumer_pid"`
}

// PingReq is the client's liveness probe of the broker (B-2).
type PingReq struct{ ReqHeader }

// ChannelListReq asks for one page of the channel list (B-10), in name order:
// the channels named after Cursor ("" = from the start), at most Limit of them
// (0 = the broker's default page; larger values are capped by the broker).
type ChannelListReq struct {
	ReqHeader
	Cursor string `json:"cursor,omitempty"`
	Limit  uint32 `json:"limit,omitempty"`
}

// ChannelCloseReq closes a channel, notifying all parties with "explicit_close" (B-10).
type ChannelCloseReq struct {
	ReqHeader
	ChannelName string `json:"channel_name"`
}

// RemapReq (B-19, protocol 1.2) tells the broker that the channel's producer
// moved its data to a new segment with a new layout: ShmName, the schema
// fields and LayoutGeneration replace the registered ones, and every party
// gets a CHANNEL_EVENT_NOTIFY with event "remap". FinalSeq is the number of
// slots the old ring committed (1 + the id of the last one; 0 = none): the
// old ring gets no more commits, so an ordered reader drains it to FinalSeq
// before it moves on. Only the registered producer (same producer_pid, same
// broker connection) may send it; LayoutGeneration must be higher than the
// registered one.
type RemapReq struct {
	ReqHeader
	ChannelName      string `json:"channel_name"`
	ProducerPID      uint64 `json:"producer_pid"`
	ShmName          string `json:"shm_name"`
	SchemaHash       string `json:"schema_hash,omitempty"`
	SchemaVersion    uint32 `json:"schema_version,omitempty"`
	SchemaName       string `json:"schema_name,omitempty"`
	SchemaBLDS       string `json:"schema_blds,omitempty"`
	LayoutGeneration uint64 `json:"layout_generation"`
	FinalSeq         uint64 `json:"final_seq"`
}

// Schema returns the remap's schema descriptor.
func (r *RemapReq) Schema() Schema {
	return Schema{Name: r.SchemaName, Version: r.SchemaVersion, BLDS: r.SchemaBLDS}
}

// RemapAck answers RemapReq.
type RemapAck struct {
	ReplyHeader
	ChannelName      string `json:"channel_name"`
	LayoutGeneration uint64 `json:"layout_generation"`
}

// RegAck answers RegReq.
type RegAck struct {
	ReplyHeader
	ChannelID string `json:"channel_id"`
}

// DiscAck answers DiscReq with the channel's details (§5.4).
type DiscAck struct {
	ReplyHeader
	ShmName         string         `json:"shm_name"`
	SchemaHash      string         `json:"schema_hash"`
	SchemaVersion   uint32         `json:"schema_version"`
	Metadata        map[string]any `json:"metadata"`
	ConsumerCount   uint64         `json:"consumer_count"`
	HasSharedMemory bool           `json:"has_shared_memory"`
	ChannelPattern  string         `json:"channel_pattern"`
	ZmqCtrlEndpoint string         `json:"zmq_ctrl_endpoint"`
	ZmqDataEndpoint string         `json:"zmq_data_endpoint"`
	ZmqPubkey       string         `json:"zmq_pubkey"`
	ProducerPID     uint64         `json:"producer_pid"`
	// SchemaName and SchemaBLDS (protocol 1.1) are the schema descriptor as
	// registered, "" when the producer gave none.
	SchemaName string `json:"schema_name"`
	SchemaBLDS string `json:"schema_blds"`
	// LayoutGeneration (protocol 1.2) is the registered layout generation
	// (0 until the producer remaps; B-19).
	LayoutGeneration uint64 `json:"layout_generation"`
}

// Schema returns the channel's schema descriptor as registered.
func (a *DiscAck) Schema() Schema {
	return Schema{Name: a.SchemaName, Version: a.SchemaVersion, BLDS: a.SchemaBLDS}
}

// DeregAck answers DeregReq.
type DeregAck struct{ ReplyHeader }

// ConsumerRegAck answers ConsumerRegReq.
type ConsumerRegAck struct {
	ReplyHeader
	ChannelName string `json:"channel_name"`
}

// ConsumerDeregAck answers ConsumerDeregReq.
type ConsumerDeregAck struct{ ReplyHeader }

// PingAck answers PingReq.
type PingAck struct{ ReplyHeader }

// ChannelInfo is one entry of a channel listing (admin snapshot fields + extras).
type ChannelInfo struct {
	Name            string `json:"name"`
	SchemaHash      string `json:"schema_hash"`
	ConsumerCount   uint64 `json:"consumer_count"`
	ProducerPID     uint64 `json:"producer_pid"`
	Status          string `json:"status"`
	Pattern         string `json:"pattern"`
	HasSharedMemory bool   `json:"has_shared_memory"`
	// LayoutGeneration (protocol 1.2, B-19): as DiscAck's.
	LayoutGeneration uint64 `json:"layout_generation"`
}

// ChannelListAck answers ChannelListReq with one page. NextCursor is the Cursor
// of the next page; "" on the last page.
type ChannelListAck struct {
	ReplyHeader
	Channels   []ChannelInfo `json:"channels"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

// ChannelCloseAck answers ChannelCloseReq.
type ChannelCloseAck struct {
	ReplyHeader
	ChannelName string `json:"channel_name"`
}

// ErrorReply is the ERROR reply: status "error", an error code and a message.
type ErrorReply struct {
	ReplyHeader
	ErrorCode Code `json:"error_code"`
}

// ChannelClosingNotify tells parties a channel is gone (§7.1; reasons
// heartbeat_timeout, explicit_close).
type ChannelClosingNotify struct {
	ChannelName string `json:"channel_name"`
	Reason      string `json:"reason"`
}

// ChannelErrorNotify tells the owner of a channel that another producer tried to
// register it with a different schema (§7.2).
type ChannelErrorNotify struct {
	ChannelName         string `json:"channel_name"`
	Event               string `json:"event"`
	ExistingSchemaHash  string `json:"existing_schema_hash"`
	AttemptedSchemaHash string `json:"attempted_schema_hash"`
	AttemptedPID        uint64 `json:"attempted_pid"`
}

// ConsumerDiedNotify tells the producer one of its consumers is dead (§7.3;
// reasons process_dead, heartbeat_timeout).
type ConsumerDiedNotify struct {
	ChannelName      string `json:"channel_name"`
	ConsumerPID      uint64 `json:"consumer_pid"`
	ConsumerHostname string `json:"consumer_hostname"`
	Reason           string `json:"reason"`
}

// ChannelEventNotify forwards a checksum error report under NotifyOnly (§5.8),
// or tells the outcome of a repair under Repair (B-16; BrokerDetail says why a
// repair did nothing or failed).
type ChannelEventNotify struct {
	ChannelName  string `json:"channel_name"`
	Event        string `json:"event,omitempty"`
	SlotIndex    int32  `json:"slot_index"`
	Error        string `json:"error,omitempty"`
	ReporterPID  uint64 `json:"reporter_pid,omitempty"`
	BrokerAction string `json:"broker_action"`
	BrokerDetail string `json:"broker_detail,omitempty"`
	// Structure remap (event "remap", protocol 1.2, B-19): the new segment,
	// schema hash and layout generation, and the old ring's final sequence
	// (RemapReq.FinalSeq).
	ShmName          string `json:"shm_name,omitempty"`
	SchemaHash       string `json:"schema_hash,omitempty"`
	LayoutGeneration uint64 `json:"layout_generation,omitempty"`
	FinalSeq         uint64 `json:"final_seq,omitempty"`
}

func (*RegReq) MsgType() Type               { return TypeRegReq }
func (*HeartbeatReq) MsgType() Type         { return TypeHeartbeatReq }
func (*DiscReq) MsgType() Type              { return TypeDiscReq }
func (*DeregReq) MsgType() Type             { return TypeDeregReq }
func (*ConsumerRegReq) MsgType() Type       { return TypeConsumerRegReq }
func (*ConsumerDeregReq) MsgType() Type     { return TypeConsumerDeregReq }
func (*ChecksumErrorReport) MsgType() Type  { return TypeChecksumErrorReport }
func (*ConsumerHeartbeatReq) MsgType() Type { return TypeConsumerHeartbeatReq }
func (*PingReq) MsgType() Type              { return TypePingReq }
func (*ChannelListReq) MsgType() Type       { return TypeChannelListReq }
func (*ChannelCloseReq) MsgType() Type      { return TypeChannelCloseReq }
func (*RemapReq) MsgType() Type             { return TypeRemapReq }
func (*RemapAck) MsgType() Type             { return TypeRemapAck }
func (*RegAck) MsgType() Type               { return TypeRegAck }
func (*DiscAck) MsgType() Type              { return TypeDiscAck }
func (*DeregAck) MsgType() Type             { return TypeDeregAck }
func (*ConsumerRegAck) MsgType() Type       { return TypeConsumerRegAck }
func (*ConsumerDeregAck) MsgType() Type     { return TypeConsumerDeregAck }
func (*PingAck) MsgType() Type              { return TypePingAck }
func (*ChannelListAck) MsgType() Type       { return TypeChannelListAck }
func (*ChannelCloseAck) MsgType() Type      { return TypeChannelCloseAck }
func (*ErrorReply) MsgType() Type           { return TypeError }
func (*ChannelClosingNotify) MsgType() Type { return TypeChannelClosingNotify }
func (*ChannelErrorNotify) MsgType() Type   { return TypeChannelErrorNotify }
func (*ConsumerDiedNotify) MsgType() Type   { return TypeConsumerDiedNotify }
func (*ChannelEventNotify) MsgType() Type   { return TypeChannelEventNotify }
