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

// faultKind is one row of faultTable: how the engine injects a fault of one
// kind and, for a fault with a duration, how it ends it.
type faultKind struct {
	kind scenario.FaultKind
	// inject performs the fault and describes what it did (the detail of the
	// fault event). A kind whose firing moment lies inside a longer action
	// records its own events and returns errAlreadyRecorded.
	inject func(ctx context.Context, r *run, f scenario.FaultSpec) (string, error)
	// undo ends a fault with a duration at fault_end; nil: the kind has no end
	// the engine must act on.
	undo func(r *run, f scenario.FaultSpec) (string, error)
}

// faultTable has one row per fault kind of scenario.FaultKinds (a test keeps
// them equal); scenario validates what each kind needs before a run.
var faultTable = []faultKind{
	{kind: scenario.FaultKill, inject: injectKill},
	{kind: scenario.FaultPause, inject: injectSignal(syscall.SIGSTOP, "SIGSTOP"), undo: undoSignal(syscall.SIGCONT, "SIGCONT")},
	{kind: scenario.FaultResume, inject: injectSignal(syscall.SIGCONT, "SIGCONT")},
	{kind: scenario.FaultBrokerRestart, inject: injectBrokerRestart},
	{kind: scenario.FaultSchemaConflict, inject: injectSchemaConflict},
	{kind: scenario.FaultSlowConsumer, inject: injectSlowConsumer},
	{kind: scenario.FaultKillHoldingLock, inject: injectKillHoldingLock},
	{kind: scenario.FaultCorruptSlot, inject: injectCorruptSlot},
	{kind: scenario.FaultLinkDelay, inject: injectLinkDelay, undo: undoLinkDelay},
	{kind: scenario.FaultLinkReset, inject: injectLinkReset, undo: undoLinkReset},
	{kind: scenario.FaultPartition, inject: injectPartition, undo: undoPartition},
	{kind: scenario.FaultHeal, inject: injectHeal},
	{kind: scenario.FaultHostKill, inject: injectHostKill},
	{kind: scenario.FaultConsumerChurn, inject: injectConsumerChurn},
	{kind: scenario.FaultProducerRestart, inject: injectProducerRestart},
	{kind: scenario.FaultHubPause, inject: injectSignal(syscall.SIGSTOP, "SIGSTOP"), undo: undoSignal(syscall.SIGCONT, "SIGCONT")},
	{kind: scenario.FaultCorruptControl, inject: injectCorruptControl},
}

// faultKindOf returns the row of kind k.
func faultKindOf(k scenario.FaultKind) (faultKind, bool) {
	for _, fk := range faultTable {
		if fk.kind == k {
			return fk, true
		}
	}
	return faultKind{}, false
}

// fire injects one fault and records it: a `fault` event when it really fired,
// a `fault_failed` event when it could not (the run is then inconclusive for
// whatever depends on it), and `fault_end` when a fault with a duration ends.
func (r *run) fire(ctx context.Context, f scenario.FaultSpec) {
	fk, ok := faultKindOf(f.Kind)
	// Stamped with the moment just before the injection: the target may react
	// (and write its own events) before the injecting call returns.
	at := proc.Now()
	var detail string
	err := fmt.Errorf("unknown fault kind %q", f.Kind)
	if ok {
		detail, err = fk.inject(ctx, r, f)
	}
	if errors.Is(err, errAlreadyRecorded) {
		return
	}
	if err != nil {
		r.col.engine("fault_failed", map[string]any{"id": f.ID, "fault": string(f.Kind), "target": f.Target, "error": err.Error()})
		return
	}
	r.col.add(event.Event{T: at, Node: scenario.EngineName, Kind: "fault", Fields: map[string]any{"id": f.ID,
		"fault": string(f.Kind), "target": f.Target, "detail": detail, "duration_ns": int64(f.Duration)}})
	if f.Duration > 0 && fk.undo != nil {
		r.undoAfter(ctx, f, fk.undo)
	}
}

// undoAfter waits for the fault's duration (or the end of the run: undo
// anyway so nothing stays paused or delayed), undoes it and records fault_end.
func (r *run) undoAfter(ctx context.Context, f scenario.FaultSpec, undo func(*run, scenario.FaultSpec) (string, error)) {
	t := time.NewTimer(f.Duration.D())
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	d, err := undo(r, f)
	if err != nil {
		d = err.Error()
	}
	r.col.engine("fault_end", map[string]any{"id": f.ID, "fault": string(f.Kind), "target": f.Target, "detail": d})
}

func injectKill(_ context.Context, r *run, f scenario.FaultSpec) (string, error) {
	sig, err := chaos.ParseSignal(string(f.Signal))
	if err != nil {
		return "", err
	}
	c := r.sup.current(f.Target)
	if err := r.signal(f.Target, sig); err != nil {
		return "", err
	}
	r.checkSegmentAfter(f, c)
	return unixSignalName(sig), nil
}

// injectSignal sends a fixed signal (pause: SIGSTOP, resume: SIGCONT).
func injectSignal(sig syscall.Signal, name string) func(context.Context, *run, scenario.FaultSpec) (string, error) {
	return func(_ context.Context, r *run, f scenario.FaultSpec) (string, error) {
		return name, r.signal(f.Target, sig)
	}
}

// undoSignal ends a pause with SIGCONT.
func undoSignal(sig syscall.Signal, name string) func(*run, scenario.FaultSpec) (string, error) {
	return func(r *run, f scenario.FaultSpec) (string, error) {
		return name, r.signal(f.Target, sig)
	}
}

func injectBrokerRestart(ctx context.Context, r *run, f scenario.FaultSpec) (string, error) {
	return r.restartBroker(ctx, f)
}

func injectKillHoldingLock(ctx context.Context, r *run, f scenario.FaultSpec) (string, error) {
	return r.killHoldingLock(ctx, f)
}

func injectSchemaConflict(_ context.Context, r *run, f scenario.FaultSpec) (string, error) {
	n := scenario.PlanNode{Role: "producer", NodeSpec: scenario.NodeSpec{Name: f.Name, Channel: f.Channel, Schema: f.Schema, Exit: scenario.ExitAny}}
	if owner, ok := r.plan.Node(f.Target); ok {
		n.Pattern, n.Shm, n.Policy, n.SlotSize, n.Slots, n.Secret = owner.Pattern, owner.Shm, owner.Policy, owner.SlotSize, owner.Slots, owner.Secret
	}
	c, err := r.startNode(n)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("spawned %s (pid %d) on channel %s with schema %q", n.Name, c.pid, f.Channel, f.Schema), nil
}

func injectSlowConsumer(_ context.Context, r *run, f scenario.FaultSpec) (string, error) {
	c := r.sup.current(f.Target)
	if c == nil {
		return "", fmt.Errorf("%s was never started", f.Target)
	}
	if err := c.send(chaos.SetDelay(f.Delay.D())); err != nil {
		return "", err
	}
	return "delay_per_read " + f.Delay.D().String(), nil
}

func injectCorruptSlot(_ context.Context, r *run, f scenario.FaultSpec) (string, error) {
	return chaos.CorruptSlot(chaos.SegmentPath(r.channels[f.Channel]), string(f.Slot))
}

func injectLinkDelay(_ context.Context, r *run, f scenario.FaultSpec) (string, error) {
	px := r.proxy(f.Target)
	if px == nil {
		return "", fmt.Errorf("%s has no link proxy", f.Target)
	}
	px.SetDelay(f.Delay.D())
	return "added latency " + f.Delay.D().String(), nil
}

func undoLinkDelay(r *run, f scenario.FaultSpec) (string, error) {
	r.proxy(f.Target).SetDelay(0)
	return "delay removed", nil
}

func injectLinkReset(_ context.Context, r *run, f scenario.FaultSpec) (string, error) {
	px := r.proxy(f.Target)
	if px == nil {
		return "", fmt.Errorf("%s has no link proxy", f.Target)
	}
	n, err := px.Reset(f.Duration.D())
	return fmt.Sprintf("%d connection(s) reset, new ones refused for %v", n, f.Duration.D()), err
}

func undoLinkReset(*run, scenario.FaultSpec) (string, error) {
	return "connections accepted again", nil
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
func (r *run) killHoldingLock(ctx context.Context, f scenario.FaultSpec) (string, error) {
	c := r.sup.current(f.Target)
	if c == nil || !c.running() {
		return "", fmt.Errorf("%s is not running", f.Target)
	}
	sig, err := chaos.ParseSignal(string(f.Signal))
	if err != nil {
		return "", err
	}
	from := r.col.len()
	if err := c.send(chaos.HoldLock()); err != nil {
		return "", err
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lockHeldTimeout)
	defer cancel()
	held, err := r.col.wait(wctx, from, func(ev event.Event) bool {
		return ev.Node == f.Target && ev.Kind == chaos.LockHeldKind
	}, c.done)
	if err != nil {
		return "", fmt.Errorf("no %s event from %s: %v", chaos.LockHeldKind, f.Target, err)
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
		return "", err
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
		return "", fmt.Errorf("%s; cannot watch segment %s to observe the reclaim: %w", detail, segment, werr)
	}
	r.col.add(event.Event{T: at, Node: scenario.EngineName, Kind: "fault", Fields: map[string]any{"id": f.ID,
		"fault": string(f.Kind), "target": f.Target, "detail": detail, "duration_ns": int64(f.Duration)}})
	r.reclaimLock(ctx, f, lw, segment, dead)
	r.checkSegmentAfter(f, c)
	return "", errAlreadyRecorded
}
