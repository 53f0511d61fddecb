package proto

import "fmt"

// Frame-type bytes: the first frame of every plh ZeroMQ message (spec/protocol.md §2).
const (
	KindControl byte = 'C' // control: then a message-type frame and a body frame
	KindData    byte = 'A' // raw data: then one payload frame
	KindMsgPack byte = 'M' // reserved, never produced
)

// Frame is one parsed plh message (without the ROUTER identity).
type Frame struct {
	Kind byte   // KindControl or KindData
	Type string // message type for control frames ("" for data)
	Body []byte // JSON body (control) or payload (data)
}

// ControlFrames returns the frames of a control message ['C'][typ][body].
func ControlFrames(typ string, body []byte) [][]byte {
	return [][]byte{{KindControl}, []byte(typ), body}
}

// DataFrames returns the frames of a data message ['A'][payload].
func DataFrames(payload []byte) [][]byte {
	return [][]byte{{KindData}, payload}
}

// MaxTypeLen bounds the message-type frame of a control message.
const MaxTypeLen = 64

// Parse checks the frame layout of spec/protocol.md §2 and returns the message.
// Extra trailing frames are ignored (as the original does). It never panics.
func Parse(frames [][]byte) (Frame, error) {
	if len(frames) < 2 {
		return Frame{}, fmt.Errorf("%w: %d frames, need at least 2", ErrBadFrames, len(frames))
	}
	if len(frames[0]) != 1 {
		return Frame{}, fmt.Errorf("%w: frame-type frame of %d bytes, want 1", ErrBadFrames, len(frames[0]))
	}
	switch frames[0][0] {
	case KindData:
		return Frame{Kind: KindData, Body: frames[1]}, nil
	case KindControl:
		if len(frames) < 3 {
			return Frame{}, fmt.Errorf("%w: control message with %d frames, need 3", ErrBadFrames, len(frames))
		}
		t := frames[1]
		if len(t) == 0 || len(t) > MaxTypeLen {
			return Frame{}, fmt.Errorf("%w: message type of %d bytes", ErrBadFrames, len(t))
		}
		for _, c := range t {
			if c < 0x21 || c > 0x7e {
				return Frame{}, fmt.Errorf("%w: non-printable message type", ErrBadFrames)
			}
		}
		return Frame{Kind: KindControl, Type: string(t), Body: frames[2]}, nil
	default:
		return Frame{}, fmt.Errorf("%w: unknown frame type 0x%02x", ErrBadFrames, frames[0][0])
	}
}
