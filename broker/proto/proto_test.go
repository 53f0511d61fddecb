package proto

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRoundTripEveryType(t *testing.T) {
	msgs := []Message{
		&RegReq{ChannelName: "c", SchemaHash: "ab", SchemaVersion: 7, ProducerPID: 42, ChannelPattern: PatternBidir, Metadata: map[string]any{"k": "v"}},
		&HeartbeatReq{ChannelName: "c", ProducerPID: 1}, &DiscReq{ChannelName: "c"},
		&DeregReq{ChannelName: "c", ProducerPID: 1}, &ConsumerRegReq{ChannelName: "c", ConsumerPID: 2, ConsumerStartTime: 9},
		&ConsumerDeregReq{ChannelName: "c", ConsumerPID: 2}, &ChecksumErrorReport{ChannelName: "c", SlotIndex: -1, Error: "x"},
		&ConsumerHeartbeatReq{ChannelName: "c", ConsumerPID: 2}, &PingReq{}, &ChannelListReq{}, &ChannelCloseReq{ChannelName: "c"},
		&RegAck{ReplyHeader: Success("1", "ok"), ChannelID: "c"},
		&DiscAck{ReplyHeader: Success("1", ""), ShmName: "s", ConsumerCount: 3, ChannelPattern: PatternPubSub},
		&DeregAck{ReplyHeader: Success("1", "")}, &ConsumerRegAck{ReplyHeader: Success("1", ""), ChannelName: "c"},
		&ConsumerDeregAck{ReplyHeader: Success("1", "")}, &PingAck{ReplyHeader: Success("1", "")},
		&ChannelListAck{ReplyHeader: Success("1", ""), Channels: []ChannelInfo{{Name: "c", Status: StatusReady}}},
		&ChannelCloseAck{ReplyHeader: Success("1", ""), ChannelName: "c"},
		NewError(CodeSchemaMismatch, "1", "differs"),
		&ChannelClosingNotify{ChannelName: "c", Reason: ReasonHeartbeatTimeout},
		&ChannelErrorNotify{ChannelName: "c", Event: EventSchemaMismatch, AttemptedPID: 3},
		&ConsumerDiedNotify{ChannelName: "c", ConsumerPID: 4, Reason: ReasonProcessDead},
		&ChannelEventNotify{ChannelName: "c", SlotIndex: 2, BrokerAction: ActionNotifyOnly},
	}
	for _, m := range msgs {
		if r, ok := AsRequest(m); ok {
			Stamp(r, "corr-1")
		}
		frames, err := Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeFrames(frames)
		if err != nil {
			t.Fatalf("%s: %v", m.MsgType(), err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%s: got %+v want %+v", m.MsgType(), got, m)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		typ  Type
		body string
		want error
		code Code
	}{
		{"NOPE", `{}`, ErrUnknownType, CodeUnknownMsgType},
		{TypeRegReq, `not json`, ErrMalformed, CodeInvalidRequest},
		{TypeRegReq, `[1,2]`, ErrMalformed, CodeInvalidRequest},
		{TypeRegReq, `null`, ErrMalformed, CodeInvalidRequest},
		{TypeRegReq, `{"channel_name":"c"`, ErrMalformed, CodeInvalidRequest},
		{TypeRegReq, `{"channel_name":"c","producer_pid":1,"metadata":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}`, ErrInvalid, CodeInvalidRequest},
		{TypeRegReq, `{"channel_name":"c","metadata":{"k":"` + strings.Repeat("x", MaxBody) + `"}}`, ErrTooLarge, CodeLimitExceeded},
		{TypeRegReq, `{"channel_name":"c"}`, ErrInvalid, CodeInvalidRequest},
		{TypeRegReq, `{"channel_name":"c","producer_pid":0}`, ErrInvalid, CodeInvalidRequest},
		{TypeConsumerRegReq, `{"channel_name":"c","consumer_pid":4194305}`, ErrInvalid, CodeInvalidRequest},
		{TypeConsumerRegReq, `{"channel_name":"c","consumer_pid":0}`, ErrInvalid, CodeInvalidRequest},
		{TypeConsumerRegReq, `{"channel_name":"c","consumer_pid":18446744073709551615}`, ErrInvalid, CodeInvalidRequest},
		{TypeDiscReq, "{\"channel_name\":\"c\xff\"}", ErrInvalid, CodeInvalidRequest},
		{TypeDiscReq, `{"channel_name":"c\ud800"}`, ErrInvalid, CodeInvalidRequest},
		{TypeDiscReq, `{"channel_name":"c\u0007"}`, ErrInvalid, CodeInvalidRequest},
		{TypeRegReq, `{}`, ErrInvalid, CodeInvalidRequest},
		{TypeRegReq, `{"channel_name":""}`, ErrInvalid, CodeInvalidRequest},
		{TypeRegReq, `{"channel_name":5}`, ErrInvalid, CodeInvalidRequest},
		{TypeRegReq, `{"channel_name":"c","producer_pid":-1}`, ErrInvalid, CodeInvalidRequest},
		{TypeRegReq, `{"channel_name":"c","producer_pid":1.5}`, ErrInvalid, CodeInvalidRequest},
		{TypeRegReq, `{"channel_name":"c","has_shared_memory":"yes"}`, ErrInvalid, CodeInvalidRequest},
		{TypeRegReq, `{"channel_name":"c","metadata":[1]}`, ErrInvalid, CodeInvalidRequest},
		{TypeDiscReq, `{"channel_name":"c","protocol_version":"2.0"}`, ErrVersion, CodeVersionMismatch},
		{TypeDiscReq, `{"channel_name":"c","protocol_version":"x"}`, ErrVersion, CodeVersionMismatch},
		{TypePingReq, `{"protocol_version":"9"}`, ErrVersion, CodeVersionMismatch},
		{TypeChecksumErrorReport, `{"channel_name":"c","slot_index":99999999999}`, ErrInvalid, CodeInvalidRequest},
	}
	for _, c := range cases {
		_, err := Decode(c.typ, []byte(c.body))
		if !errors.Is(err, c.want) {
			t.Errorf("%s %s: %v, want %v", c.typ, c.body, err, c.want)
			continue
		}
		code, reply := CodeOf(err)
		if code != c.code || reply != (c.code != "") {
			t.Errorf("%s %s: code %q/%v", c.typ, c.body, code, reply)
		}
	}
}

func TestTolerated(t *testing.T) {
	m, err := Decode(TypeDiscReq, []byte(` {"channel_name":"c","msg_type":"DISC_REQ","extra":{"a":[1]},"protocol_version":"1.7"}`))
	if err != nil || m.(*DiscReq).ChannelName != "c" {
		t.Fatal(m, err)
	}
	if _, err := Decode(TypeDiscReq, []byte(`{"channel_name":"données β-1 (ok)","metadata":`+strings.Repeat("[", MaxDepth-1)+strings.Repeat("]", MaxDepth-1)+`}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(TypePingReq, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if NormalizePattern("weird") != PatternPubSub || NormalizePattern(PatternPipeline) != PatternPipeline {
		t.Fatal("pattern")
	}
}

func TestPeekAndRemoteError(t *testing.T) {
	if PeekCorrelation([]byte(`{"correlation_id":"x","channel_name":5}`)) != "x" || PeekCorrelation([]byte(`{"correlation_id":5}`)) != "" {
		t.Fatal("peek")
	}
	deep := `{"a":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `,"correlation_id":"d","b":`
	if got := PeekCorrelation([]byte(deep)); got != "d" {
		t.Fatalf("peek after deep nesting, before a broken tail: %q", got)
	}
	err := Err(NewError(CodeChannelNotFound, "1", "no"))
	if !errors.Is(err, ErrChannelNotFound) || errors.Is(err, ErrNotRegistered) {
		t.Fatal(err)
	}
	if Err(&PingAck{ReplyHeader: Success("", "")}) != nil {
		t.Fatal("success is error")
	}
	if !HasReply(TypeRegReq) || HasReply(TypeHeartbeatReq) || !IsNotify(TypeConsumerDiedNotify) {
		t.Fatal("classify")
	}
}

func TestMalformedFrames(t *testing.T) {
	for _, f := range [][][]byte{nil, {{'C'}}, {{'A'}, []byte("x")}, {{'C'}, {}, []byte("{}")}} {
		if _, err := DecodeFrames(f); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v", f, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("REG_REQ", []byte(`{"channel_name":"c","schema_hash":"00","producer_pid":1}`))
	f.Add("DISC_REQ", []byte(`{"channel_name":"c","protocol_version":"1.0","correlation_id":"x"}`))
	f.Add("ERROR", []byte(`{"status":"error","error_code":"X"}`))
	f.Add("CHANNEL_LIST_ACK", []byte(`{"status":"success","channels":[{"name":"a"}]}`))
	f.Fuzz(func(t *testing.T, typ string, body []byte) {
		m, err := Decode(Type(typ), body)
		if err != nil {
			if _, ok := CodeOf(err); !ok && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		frames, err := Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeFrames(frames); err != nil && !errors.Is(err, ErrMalformed) {
			// re-encoding a decoded message must decode again (ErrMalformed only for odd types)
			t.Fatalf("re-decode: %v", err)
		}
	})
}
