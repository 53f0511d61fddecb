package proto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// MaxBody is the largest JSON body Decode accepts.
const MaxBody = 256 << 10

// New returns an empty message of type t, or nil for an unknown type.
func New(t Type) Message {
	switch t {
	case TypeRegReq:
		return &RegReq{}
	case TypeHeartbeatReq:
		return &HeartbeatReq{}
	case TypeDiscReq:
		return &DiscReq{}
	case TypeDeregReq:
		return &DeregReq{}
	case TypeConsumerRegReq:
		return &ConsumerRegReq{}
	case TypeConsumerDeregReq:
		return &ConsumerDeregReq{}
	case TypeChecksumErrorReport:
		return &ChecksumErrorReport{}
	case TypeConsumerHeartbeatReq:
		return &ConsumerHeartbeatReq{}
	case TypePingReq:
		return &PingReq{}
	case TypeChannelListReq:
		return &ChannelListReq{}
	case TypeChannelCloseReq:
		return &ChannelCloseReq{}
	case TypeRemapReq:
		return &RemapReq{}
	case TypeRemapAck:
		return &RemapAck{}
	case TypeRegAck, "REG_RESP":
		return &RegAck{}
	case TypeDiscAck, "DISC_RESP":
		return &DiscAck{}
	case TypeDeregAck:
		return &DeregAck{}
	case TypeConsumerRegAck:
		return &ConsumerRegAck{}
	case TypeConsumerDeregAck:
		return &ConsumerDeregAck{}
	case TypePingAck:
		return &PingAck{}
	case TypeChannelListAck:
		return &ChannelListAck{}
	case TypeChannelCloseAck:
		return &ChannelCloseAck{}
	case TypeError:
		return &ErrorReply{}
	case TypeChannelClosingNotify:
		return &ChannelClosingNotify{}
	case TypeChannelErrorNotify:
		return &ChannelErrorNotify{}
	case TypeConsumerDiedNotify:
		return &ConsumerDiedNotify{}
	case TypeChannelEventNotify:
		return &ChannelEventNotify{}
	}
	return nil
}

// Decode parses the body of a message of type t. See the package doc for what is
// strict and what is tolerated. A request with a reply and an empty channel_name
// is ErrInvalid; so is any request with a protocol_version that does not parse.
// On ErrInvalid/ErrVersion the returned message is still non-nil when the body
// parsed far enough, so the caller can use its correlation id (or PeekCorrelation).
func Decode(t Type, body []byte) (Message, error) {
	m := New(t)
	if m == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownType, truncate(string(t)))
	}
	if len(body) > MaxBody {
		return nil, fmt.Errorf("%w: %s body of %d bytes", ErrTooLarge, t, len(body))
	}
	trim := bytes.TrimSpace(body)
	if tooDeep(trim, MaxDepth) {
		return nil, fmt.Errorf("%w: %s body nests deeper than %d", ErrInvalid, t, MaxDepth)
	}
	if len(trim) == 0 || trim[0] != '{' || !json.Valid(trim) {
		return nil, fmt.Errorf("%w: %s body is not a JSON object", ErrMalformed, t)
	}
	if err := json.Unmarshal(trim, m); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return m, fmt.Errorf("%w: %s field %q: JSON %s where %s expected", ErrInvalid, t, te.Field, te.Value, te.Type)
		}
		return m, fmt.Errorf("%w: %s: %v", ErrInvalid, t, err)
	}
	if r, ok := m.(Request); ok {
		if err := CheckVersion(r.header().ProtocolVersion); err != nil {
			return m, fmt.Errorf("%s: %w", t, err)
		}
		if needsChannel(t) && ChannelOf(m) == "" {
			return m, fmt.Errorf("%w: %s: missing or empty channel_name", ErrInvalid, t)
		}
		if err := validate(m); err != nil {
			return m, fmt.Errorf("%s: %w", t, err)
		}
	}
	return m, nil
}

func needsChannel(t Type) bool {
	switch t {
	case TypePingReq, TypeChannelListReq:
		return false
	}
	return true
}

// CheckVersion accepts "" (original clients) and any "1.x"; another major
// version, or text that is not MAJOR[.MINOR], is ErrVersion.
func CheckVersion(v string) error {
	if v == "" {
		return nil
	}
	major, _, _ := strings.Cut(v, ".")
	ours, _, _ := strings.Cut(ProtocolVersion, ".")
	if major != ours {
		return fmt.Errorf("%w: client speaks %q, broker speaks %q", ErrVersion, truncate(v), ProtocolVersion)
	}
	return nil
}

// DecodeFrames parses a full message ['C'][TYPE][json] (without ROUTER identity).
func DecodeFrames(frames [][]byte) (Message, error) {
	f, err := Parse(frames)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if f.Kind != KindControl {
		return nil, fmt.Errorf("%w: data frame where a control message was expected", ErrMalformed)
	}
	return Decode(Type(f.Type), f.Body)
}

// Encode returns the frames ['C'][TYPE][json] of m.
func Encode(m Message) ([][]byte, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("proto: encode %s: %w", m.MsgType(), err)
	}
	return ControlFrames(string(m.MsgType()), body), nil
}

// ChannelOf returns the channel_name of a message ("" when it has none).
func ChannelOf(m Message) string {
	switch v := m.(type) {
	case *RegReq:
		return v.ChannelName
	case *HeartbeatReq:
		return v.ChannelName
	case *DiscReq:
		return v.ChannelName
	case *DeregReq:
		return v.ChannelName
	case *ConsumerRegReq:
		return v.ChannelName
	case *ConsumerDeregReq:
		return v.ChannelName
	case *ChecksumErrorReport:
		return v.ChannelName
	case *ConsumerHeartbeatReq:
		return v.ChannelName
	case *ChannelCloseReq:
		return v.ChannelName
	case *RemapReq:
		return v.ChannelName
	case *RemapAck:
		return v.ChannelName
	case *ConsumerRegAck:
		return v.ChannelName
	case *ChannelCloseAck:
		return v.ChannelName
	case *ChannelClosingNotify:
		return v.ChannelName
	case *ChannelErrorNotify:
		return v.ChannelName
	case *ConsumerDiedNotify:
		return v.ChannelName
	case *ChannelEventNotify:
		return v.ChannelName
	}
	return ""
}

// CorrelationOf returns the correlation id of a request or reply ("" otherwise).
func CorrelationOf(m Message) string {
	switch v := m.(type) {
	case Request:
		return v.header().CorrelationID
	case Reply:
		return v.reply().CorrelationID
	}
	return ""
}

// PeekCorrelation extracts a string correlation_id from a body that may not
// decode as its type (so an ERROR reply can still carry it): too large, nested
// too deep, or broken after the correlation_id. It reads the top-level keys in
// order and stops at the first error. "" when absent.
func PeekCorrelation(body []byte) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return ""
		}
		if k == "correlation_id" {
			v, _ := dec.Token()
			s, _ := v.(string)
			return s
		}
		if skipValue(dec) != nil {
			return ""
		}
	}
	return ""
}

// skipValue reads one JSON value of any depth from dec, without recursion.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// IsNotify reports whether t is a notification type (ends in _NOTIFY).
func IsNotify(t Type) bool { return strings.HasSuffix(string(t), "_NOTIFY") }

// HasReply reports whether requests of type t get a reply.
func HasReply(t Type) bool {
	switch t {
	case TypeHeartbeatReq, TypeChecksumErrorReport, TypeConsumerHeartbeatReq:
		return false
	}
	return true
}

// NewError builds an ERROR reply.
func NewError(code Code, corr, msg string) *ErrorReply {
	return &ErrorReply{ReplyHeader: ReplyHeader{Status: StatusError, CorrelationID: corr, BrokerVersion: BrokerVersion, Message: msg}, ErrorCode: code}
}

// Success returns a success ReplyHeader for a reply to corr.
func Success(corr, msg string) ReplyHeader {
	return ReplyHeader{Status: StatusSuccess, CorrelationID: corr, BrokerVersion: BrokerVersion, Message: msg}
}

// Stamp sets correlation_id (if empty) and protocol_version on a request before
// it is sent: what every plh client does.
func Stamp(r Request, corr string) {
	h := r.header()
	if h.CorrelationID == "" {
		h.CorrelationID = corr
	}
	h.ProtocolVersion = ProtocolVersion
}

// AsRequest returns m as a Request when it is one.
func AsRequest(m Message) (Request, bool) { r, ok := m.(Request); return r, ok }

// AsReply returns m as a Reply when it is one.
func AsReply(m Message) (Reply, bool) { r, ok := m.(Reply); return r, ok }

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
