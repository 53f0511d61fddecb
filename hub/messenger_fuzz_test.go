package hub

import (
	"bytes"
	"testing"

	"github.com/pylabhub/plh/broker/proto"
)

// FuzzIncoming feeds arbitrary broker messages to the Messenger's receive path:
// reply matching, notification decoding and dispatch, and reply decoding. It must
// never panic; a malformed reply becomes ErrBadReply for its caller.
func FuzzIncoming(f *testing.F) {
	f.Add("DISC_ACK", []byte(`{"status":"success","correlation_id":"ID","shm_name":"s","schema_hash":"aa","schema_version":1}`))
	f.Add("ERROR", []byte(`{"status":"error","correlation_id":"ID","error_code":"SCHEMA_MISMATCH","message":"x"}`))
	f.Add("CHANNEL_CLOSING_NOTIFY", []byte(`{"channel_name":"c","reason":"heartbeat_timeout"}`))
	f.Add("CONSUMER_DIED_NOTIFY", []byte(`{"channel_name":"c","consumer_pid":5,"reason":"process_dead"}`))
	f.Add("CHANNEL_ERROR_NOTIFY", []byte(`{"channel_name":"c","event":"schema_mismatch_attempt","attempted_pid":-1}`))
	f.Add("CHANNEL_EVENT_NOTIFY", []byte(`{"channel_name":"c","slot_index":"x"}`))
	f.Add("REG_RESP", []byte(`{"status":"success","correlation_id":"ID"}`))
	f.Add("CHANNEL_LIST_ACK", []byte(`{"status":"success","correlation_id":"ID","channels":[{"name":1}]}`))
	f.Add("X_NOTIFY", []byte(`[]`))

	m, err := NewMessenger(MessengerConfig{MaxQueuedCallbacks: 64})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = m.Close() })
	m.OnChannelClosing("c", func(string) {})
	m.OnAnyChannelClosing(func(string, string) {})
	m.OnConsumerDied("c", func(uint64, string) {})
	m.OnChannelError("c", func(ChannelNotice) {})
	m.OnChannelEvent("c", func(ChannelNotice) {})
	s := &session{m: m} // not the current session: state checks see it as idle

	f.Fuzz(func(t *testing.T, typ string, body []byte) {
		id, ch := m.pend.add()
		defer m.pend.remove(id)
		withID := []byte(string(body))
		if i := bytes.Index(withID, []byte("ID")); i >= 0 {
			withID = append(append(append([]byte{}, withID[:i]...), id...), withID[i+2:]...)
		}
		m.handleIncoming(s, proto.ControlFrames(typ, withID))
		m.handleIncoming(s, [][]byte{{'C'}, []byte(typ)}) // too few frames
		select {
		case r := <-ch:
			_, _ = decodeReply("FUZZ", "c", r) // must not panic
		default:
		}
	})
}
