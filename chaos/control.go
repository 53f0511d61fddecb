package chaos

import (
	"encoding/json"
	"time"
)

// Command is one control line the engine writes on a node's stdin (one JSON
// object per line). docs/scenarios.md ("Node control on stdin") is the contract.
type Command struct {
	Cmd          string `json:"cmd"`                      // "set" or "hold_lock"
	DelayPerRead string `json:"delay_per_read,omitempty"` // set: new delay per read ("20ms")
}

// Control commands.
const (
	CmdSet      = "set"
	CmdHoldLock = "hold_lock"
)

// LockHeldKind is the event kind a producer emits once it holds a write slot
// after a hold_lock command (fields: channel, slot_index, seq).
const LockHeldKind = "lock_held"

// SetDelay returns the line that changes a consumer's delay per read.
func SetDelay(d time.Duration) []byte {
	b, _ := json.Marshal(Command{Cmd: CmdSet, DelayPerRead: d.String()})
	return append(b, '\n')
}

// HoldLock returns the line that makes a producer acquire a write slot and keep
// it (without committing) until it dies.
func HoldLock() []byte {
	b, _ := json.Marshal(Command{Cmd: CmdHoldLock})
	return append(b, '\n')
}
