package hubrole

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"runtime"
	"time"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/internal/event"
)

// This file is plh-hub's control input (--control) and its stats events: the
// scenario engine writes {"cmd":"snapshot"} to read the broker's registry
// without the admin shell, and {"cmd":"stats"} to sample goroutines on demand.

// hubCommand is one control line.
type hubCommand struct {
	Cmd string `json:"cmd"`
}

// readControl answers control lines from r until r ends or ctx is done.
// Unknown commands and bad lines are an "error" event with op "control".
func readControl(ctx context.Context, r io.Reader, svc *broker.Service, events *event.Writer, log *slog.Logger) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64*1024)
	for sc.Scan() && ctx.Err() == nil {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var cmd hubCommand
		if err := json.Unmarshal(line, &cmd); err != nil {
			emit(events, log, "error", map[string]any{"op": "control", "error": "bad control line: " + err.Error()})
			continue
		}
		switch cmd.Cmd {
		case "snapshot":
			emit(events, log, "registry", registryFields(svc))
		case "stats":
			emit(events, log, "stats", statsFields(svc))
		default:
			emit(events, log, "error", map[string]any{"op": "control", "error": "unknown control command " + cmd.Cmd})
		}
	}
}

// registryFields lists every channel of the broker's registry with its
// producer and consumers (pid, hostname).
func registryFields(svc *broker.Service) map[string]any {
	var chans []any
	for _, ci := range svc.Channels() {
		ch := map[string]any{"name": ci.Name, "producer_pid": ci.ProducerPID, "status": ci.Status, "pattern": ci.Pattern}
		cons := []any{}
		if d, err := svc.ChannelDetail(ci.Name); err == nil {
			for _, k := range d.Consumers {
				cons = append(cons, map[string]any{"pid": k.PID, "hostname": k.Hostname})
			}
		}
		ch["consumers"] = cons
		chans = append(chans, ch)
	}
	if chans == nil {
		chans = []any{}
	}
	return map[string]any{"channels": chans}
}

// statsFields is the hub's stats event: its goroutines and registry size.
func statsFields(svc *broker.Service) map[string]any {
	st := svc.Stats()
	return map[string]any{"goroutines": runtime.NumGoroutine(), "channels": st.Channels, "consumers": st.Consumers}
}

// statsLoop emits a stats event every interval until ctx is done.
func statsLoop(ctx context.Context, every time.Duration, svc *broker.Service, events *event.Writer, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			emit(events, log, "stats", statsFields(svc))
		}
	}
}

func emit(events *event.Writer, log *slog.Logger, kind string, f map[string]any) {
	if err := events.Emit(kind, f); err != nil {
		log.Debug("event not written", "kind", kind, "err", err)
	}
}
