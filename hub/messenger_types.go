package hub

import (
	"encoding/hex"
	"encoding/json"

	"github.com/pylabhub/plh/broker/proto"
)

// Pattern is a channel's data pattern (protocol.md §11.1).
type Pattern string

// Channel patterns, as spelled on the wire.
const (
	PatternPubSub   Pattern = proto.PatternPubSub
	PatternPipeline Pattern = proto.PatternPipeline
	PatternBidir    Pattern = proto.PatternBidir
)

// ProducerInfo is what a producer registers for its channel (REG_REQ, protocol.md
// §5.2). The Messenger keeps it to register the channel again after a broker
// restart.
type ProducerInfo struct {
	ShmName         string         // segment name ("" without shared memory)
	SchemaHash      []byte         // raw bytes; sent as lowercase hex (nil = none)
	SchemaVersion   uint32         //
	HasSharedMemory bool           //
	Pattern         Pattern        // "" = PubSub
	CtrlEndpoint    string         // producer's ROUTER endpoint as bound
	DataEndpoint    string         // PUB/PUSH endpoint ("" for Bidir)
	PubKey          string         // producer's P2C CURVE key, Z85 ("" = none)
	Metadata        map[string]any // stored by the broker verbatim (optional)
}

// ChannelInfo is what Discover returns (DISC_ACK, protocol.md §5.4).
type ChannelInfo struct {
	Name            string
	ShmName         string
	SchemaHash      []byte // raw bytes decoded from SchemaHashHex (nil when that is not hex)
	SchemaHashHex   string // as registered
	SchemaVersion   uint32
	HasSharedMemory bool
	Pattern         Pattern
	CtrlEndpoint    string
	DataEndpoint    string
	PubKey          string
	ConsumerCount   uint64
	ProducerPid     uint64 // 0 when the broker does not say
	Metadata        map[string]any
}

// ChannelSummary is one entry of ListChannels (CHANNEL_LIST_ACK).
type ChannelSummary struct {
	Name            string
	SchemaHashHex   string
	ConsumerCount   uint64
	ProducerPid     uint64
	Status          string // "PendingReady", "Ready" or "Closing"
	Pattern         Pattern
	HasSharedMemory bool
}

// ChannelNotice is a CHANNEL_ERROR_NOTIFY or CHANNEL_EVENT_NOTIFY delivered to
// OnChannelError / OnChannelEvent callbacks, and the "reregister_failed" event the
// Messenger itself raises when a channel cannot be registered again after a broker
// restart.
type ChannelNotice struct {
	Channel string
	Type    string // wire type, e.g. "CHANNEL_ERROR_NOTIFY"
	// Event is the body's "event" ("schema_mismatch_attempt", ...), or the wire
	// type when the body has none (protocol.md §7.4).
	Event string
	// CHANNEL_ERROR_NOTIFY fields.
	ExistingSchemaHash, AttemptedSchemaHash string
	AttemptedPid                            uint64
	// CHANNEL_EVENT_NOTIFY fields (checksum error reports).
	SlotIndex    int32
	Error        string
	ReporterPid  uint64
	BrokerAction string
	// Body is the notification's JSON body as received.
	Body json.RawMessage
}

// EventReregisterFailed is the ChannelNotice.Event raised when, after a broker
// restart, the broker refused to register one of our channels again (e.g. another
// producer took the name with another schema). The channel is then forgotten.
const EventReregisterFailed = "reregister_failed"

func decodeHash(s string) []byte {
	if s == "" {
		return nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil
	}
	return b
}

func patternOf(s string) Pattern { return Pattern(proto.NormalizePattern(s)) }

func (info ProducerInfo) regReq(channel string, id procID) *proto.RegReq {
	return &proto.RegReq{
		ChannelName:       channel,
		ShmName:           info.ShmName,
		SchemaHash:        hex.EncodeToString(info.SchemaHash),
		SchemaVersion:     info.SchemaVersion,
		ProducerPID:       id.pid,
		HasSharedMemory:   info.HasSharedMemory,
		ChannelPattern:    string(patternOf(string(info.Pattern))),
		ZmqCtrlEndpoint:   info.CtrlEndpoint,
		ZmqDataEndpoint:   info.DataEndpoint,
		ZmqPubkey:         info.PubKey,
		Metadata:          info.Metadata,
		ProducerStartTime: id.start,
	}
}

// procID is the identity sent on the wire.
type procID struct{ pid, start uint64 }

func channelInfo(name string, a *proto.DiscAck) ChannelInfo {
	return ChannelInfo{
		Name:            name,
		ShmName:         a.ShmName,
		SchemaHash:      decodeHash(a.SchemaHash),
		SchemaHashHex:   a.SchemaHash,
		SchemaVersion:   a.SchemaVersion,
		HasSharedMemory: a.HasSharedMemory,
		Pattern:         patternOf(a.ChannelPattern),
		CtrlEndpoint:    a.ZmqCtrlEndpoint,
		DataEndpoint:    a.ZmqDataEndpoint,
		PubKey:          a.ZmqPubkey,
		ConsumerCount:   a.ConsumerCount,
		ProducerPid:     a.ProducerPID,
		Metadata:        a.Metadata,
	}
}
