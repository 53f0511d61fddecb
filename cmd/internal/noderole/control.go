package noderole

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"sync/atomic"
	"time"
)

// command is one control line (docs/scenarios.md, chaos.Command).
type command struct {
	Cmd          string `json:"cmd"`
	DelayPerRead string `json:"delay_per_read,omitempty"`
}

// control holds what control lines change.
type control struct {
	delay atomic.Int64  // consumer delay per read, ns
	hold  chan struct{} // closed by hold_lock
	held  atomic.Bool
	stats chan struct{} // a stats event is wanted now
}

func newControl(delay time.Duration) *control {
	c := &control{hold: make(chan struct{}), stats: make(chan struct{}, 1)}
	c.delay.Store(int64(delay))
	return c
}

func (c *control) delayPerRead() time.Duration { return time.Duration(c.delay.Load()) }

// read applies control lines until r ends. Bad lines are logged and ignored.
func (c *control) read(r io.Reader, log *slog.Logger) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64*1024)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var cmd command
		if err := json.Unmarshal(line, &cmd); err != nil {
			log.Warn("bad control line", "line", string(line), "err", err)
			continue
		}
		switch cmd.Cmd {
		case "set":
			if cmd.DelayPerRead != "" {
				d, err := time.ParseDuration(cmd.DelayPerRead)
				if err != nil || d < 0 {
					log.Warn("bad delay_per_read", "value", cmd.DelayPerRead, "err", err)
					continue
				}
				c.delay.Store(int64(d))
				log.Info("delay per read set", "delay", d)
			}
		case "stats":
			select {
			case c.stats <- struct{}{}:
			default: // one is pending already
			}
		case "hold_lock":
			if c.held.CompareAndSwap(false, true) {
				close(c.hold)
			}
		default:
			log.Warn("unknown control command", "cmd", cmd.Cmd)
		}
	}
}
