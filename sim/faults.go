package sim

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/pylabhub/plh/chaos"
	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/sim/scenario"
)

// lockHeldTimeout bounds the wait for a producer's lock_held event.
const lockHeldTimeout = 10 * time.Second

// fire injects one fault and records it: a `fault` event when it really fired,
// a `fault_failed` event when it could not (the run is then inconclusive for
// whatever depends on it), and `fault_end` when a fault with a duration ends.
func (r *run) fire(ctx context.Context, f scenario.FaultSpec) {
	detail, at, err := r.inject(ctx, f)
	if errors.Is(err, errAlreadyRecorded) {
		return
	}
	if err != nil {
		r.col.engine("fault_failed", map[string]any{"id": f.ID, "fault": string(f.Kind), "target": f.Target, "error": err.Error()})
		return
	}
	// Stamped with the moment just before the injection: the target may react
	// (and write its own events) before the injecting call returns.
	r.col.add(event.Event{T: at, Node: scenario.EngineName, Kind: "fault", Fields: map[string]any{"id": f.ID,
		"fault": string(f.Kind), "target": f.Target, "detail": detail, "duration_ns": int64(f.Duration)}})
	if f.Duration <= 0 {
		return
	}
	var undo func() (string, error)
	switch f.Kind {
	case scenario.FaultPause:
		undo = func() (string, error) { return "SIGCONT", r.signal(f.Target, syscall.SIGCONT) }
	case scenario.FaultLinkDelay:
		undo = func() (string, error) { r.proxy(f.Target).SetDelay(0); return "delay removed", nil }
	case scenario.FaultLinkReset:
		undo = func() (string, error) { return "connections accepted again", nil }
	case scenario.FaultBrokerRestart:
		return // inject already waited for the broker to come back
	default:
		return
	}
	t := time.NewTimer(f.Duration.D())
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		// End of run: undo anyway so nothing stays paused or delayed.
	}
	d, err := undo()
	if err != nil {
		d = err.Error()
	}
	r.col.engine("fault_end", map[string]any{"id": f.ID, "fault": string(f.Kind), "target": f.Target, "detail": d})
}

// inject performs the fault, describes what it did and returns the
// CLOCK_MONOTONIC time taken just before the injecting action.
func (r *run) inject(ctx context.Context, f scenario.FaultSpec) (string, int64, error) {
	at := proc.Now()
	switch f.Kind {
	case scenario.FaultKill:
		sig, err := chaos.ParseSignal(string(f.Signal))
		if err != nil {
			return "", at, err
		}
		return unixSignalName(sig), at, r.signal(f.Target, sig)
	case scenario.FaultPause:
		return "SIGSTOP", at, r.signal(f.Target, syscall.SIGSTOP)
	case scenario.FaultResume:
		return "SIGCONT", at, r.signal(f.Target, syscall.SIGCONT)
	case scenario.FaultBrokerRestart:
		return withAt(at)(r.restartBroker(ctx, f))
	case scenario.FaultSchemaConflict:
		n := scenario.PlanNode{Role: "producer", NodeSpec: scenario.NodeSpec{Name: f.Name, Channel: f.Channel, Schema: f.Schema, Exit: scenario.ExitAny}}
		if owner, ok := r.plan.Node(f.Target); ok {
			n.Pattern, n.Shm, n.Policy, n.SlotSize, n.Slots, n.Secret = owner.Pattern, owner.Shm, owner.Policy, owner.SlotSize, owner.Slots, owner.Secret
		}
		c, err := r.startNode(n)
		if err != nil {
			return "", at, err
		}
		return fmt.Sprintf("spawned %s (pid %d) on channel %s with schema %q", n.Name, c.pid, f.Channel, f.Schema), at, nil
	case scenario.FaultSlowConsumer:
		c := r.sup.current(f.Target)
		if c == nil {
			return "", at, fmt.Errorf("%s was never started", f.Target)
		}
		if err := c.send(chaos.SetDelay(f.Delay.D())); err != nil {
			return "", at, err
		}
		return "delay_per_read " + f.Delay.D().String(), at, nil
	case scenario.FaultKillHoldingLock:
		return r.killHoldingLock(ctx, f)
	case scenario.FaultCorruptSlot:
		return withAt(at)(chaos.CorruptSlot(chaos.SegmentPath(r.channels[f.Channel]), string(f.Slot)))
	case scenario.FaultLinkDelay:
		px := r.proxy(f.Target)
		if px == nil {
			return "", at, fmt.Errorf("%s has no link proxy", f.Target)
		}
		px.SetDelay(f.Delay.D())
		return "added latency " + f.Delay.D().String(), at, nil
	case scenario.FaultLinkReset:
		px := r.proxy(f.Target)
		if px == nil {
			return "", at, fmt.Errorf("%s has no link proxy", f.Target)
		}
		n, err := px.Reset(f.Duration.D())
		return fmt.Sprintf("%d connection(s) reset, new ones refused for %v", n, f.Duration.D()), at, err
	}
	return "", at, fmt.Errorf("unknown fault kind %q", f.Kind)
}

func (r *run) proxy(name string) *chaos.Proxy {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proxies[name]
}

// signal sends sig to the running process group of node name.
func (r *run) signal(name string, sig syscall.Signal) error {
	c := r.sup.current(name)
	if c == nil {
		return fmt.Errorf("%s was never started", name)
	}
	if !c.running() {
		return fmt.Errorf("%s is not running", name)
	}
	c.mu.Lock()
	switch sig {
	case syscall.SIGSTOP:
		c.paused = true
	case syscall.SIGCONT:
		c.paused = false
	}
	c.mu.Unlock()
	return chaos.SignalGroup(c.pid, sig)
}

// restartBroker kills the hub, keeps it down for the fault's duration, and
// starts it again on the same endpoint. The fault event is recorded by fire
// after the broker is back; the down time is in its detail and the hub's own
// events (process_end, spawned, ready) mark the gap on the timeline.
func (r *run) restartBroker(ctx context.Context, f scenario.FaultSpec) (string, error) {
	sig, err := chaos.ParseSignal(string(f.Signal))
	if err != nil {
		return "", err
	}
	c := r.sup.current(scenario.HubName)
	if c == nil || !c.running() {
		return "", fmt.Errorf("the hub is not running")
	}
	r.mu.Lock()
	ep := r.endpoint
	r.mu.Unlock()
	at := proc.Now()
	if err := chaos.SignalGroup(c.pid, sig); err != nil {
		return "", err
	}
	r.col.add(event.Event{T: at, Node: scenario.EngineName, Kind: "fault", Fields: map[string]any{"id": f.ID,
		"fault": string(f.Kind), "target": scenario.HubName, "detail": "broker down (" + unixSignalName(sig) + ")",
		"duration_ns": int64(f.Duration)}})
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		return "", fmt.Errorf("hub did not exit after %v", sig)
	}
	t := time.NewTimer(f.Duration.D())
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	}
	startCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.plan.StartupTimeout.D())
	defer cancel()
	if err := r.startHub(startCtx, ep); err != nil {
		return "", fmt.Errorf("restart on %s: %w", ep, err)
	}
	r.col.engine("fault_end", map[string]any{"id": f.ID, "fault": string(f.Kind), "target": scenario.HubName,
		"detail": "broker back on " + ep})
	return "", errAlreadyRecorded
}

// errAlreadyRecorded tells fire that inject recorded its own events.
var errAlreadyRecorded = errors.New("already recorded")

// killHoldingLock asks the producer to take a write slot and keep it, waits
// until it reports lock_held, attaches to the segment (recording the holder),
// kills the producer, inspects the segment, records the fault, and then acts
// as the next writer to observe the reclaim of the dead writer's lock
// (reclaimLock). If the segment cannot be attached the producer is killed
// anyway and the fault is reported as not fired: nothing can be observed.
func (r *run) killHoldingLock(ctx context.Context, f scenario.FaultSpec) (string, int64, error) {
	c := r.sup.current(f.Target)
	if c == nil || !c.running() {
		return "", 0, fmt.Errorf("%s is not running", f.Target)
	}
	sig, err := chaos.ParseSignal(string(f.Signal))
	if err != nil {
		return "", 0, err
	}
	from := r.col.len()
	if err := c.send(chaos.HoldLock()); err != nil {
		return "", 0, err
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lockHeldTimeout)
	defer cancel()
	held, err := r.col.wait(wctx, from, func(ev event.Event) bool {
		return ev.Node == f.Target && ev.Kind == chaos.LockHeldKind
	}, c.done)
	if err != nil {
		return "", 0, fmt.Errorf("no %s event from %s: %v", chaos.LockHeldKind, f.Target, err)
	}
	n, _ := r.plan.Node(f.Target)
	segment := r.channels[n.Channel]
	slot, slotOK := intField(held.Fields["slot_index"])
	var lw *chaos.LockWatch
	var werr error
	if !slotOK {
		werr = fmt.Errorf("%s event without a slot_index", chaos.LockHeldKind)
	} else {
		lw, werr = chaos.WatchLock(segment, n.Secret, slot)
	}
	defer lw.Close()
	at := proc.Now()
	if err := chaos.SignalGroup(c.pid, sig); err != nil {
		return "", 0, err
	}
	<-c.done
	dead := proc.Now()
	detail := fmt.Sprintf("%s while holding slot %v", unixSignalName(sig), held.Fields["slot_index"])
	locks, err := chaos.HeldLocks(chaos.SegmentPath(segment))
	switch {
	case err != nil:
		detail += "; segment: " + err.Error()
	default:
		for _, l := range locks {
			detail += fmt.Sprintf("; slot %d write_lock pid %d alive=%t", l.Slot, l.Pid, l.Alive)
		}
	}
	if werr != nil {
		return "", 0, fmt.Errorf("%s; cannot watch segment %s to observe the reclaim: %w", detail, segment, werr)
	}
	r.col.add(event.Event{T: at, Node: scenario.EngineName, Kind: "fault", Fields: map[string]any{"id": f.ID,
		"fault": string(f.Kind), "target": f.Target, "detail": detail, "duration_ns": int64(f.Duration)}})
	r.reclaimLock(ctx, f, lw, segment, dead)
	return "", 0, errAlreadyRecorded
}

// withAt threads a firing time through a (detail, error) result.
func withAt(at int64) func(string, error) (string, int64, error) {
	return func(d string, err error) (string, int64, error) { return d, at, err }
}
