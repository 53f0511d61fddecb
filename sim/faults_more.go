package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/pylabhub/plh/chaos"
	"github.com/pylabhub/plh/sim/scenario"
)

// deathWait bounds how long a fault waits for a signalled process to die
// (segment_check, producer_restart).
const deathWait = 10 * time.Second

// injectConsumerChurn spawns a consumer of the fault's channel that
// registers and deregisters f.Count times, one cycle every f.Every, before
// it connects for good (plh-node --churn): a churning client of one live pid.
// It takes the channel's settings from the target node.
func injectConsumerChurn(_ context.Context, r *run, f scenario.FaultSpec) (string, error) {
	n := scenario.PlanNode{Role: "consumer", NodeSpec: scenario.NodeSpec{Channel: f.Channel}}
	if owner, ok := r.plan.Node(f.Target); ok {
		n.NodeSpec = owner.NodeSpec
	}
	n.Name, n.Exit, n.Start, n.Messages, n.Rate, n.DelayPerRead, n.LinkProxy = f.NodeName(), scenario.ExitAny, 0, 0, 0, 0, false
	// The owner's own extra flags (e.g. --send-rate) are not copied.
	n.Args = []string{"--churn", fmt.Sprint(f.Count), "--churn-every", f.Every.D().String()}
	c, err := r.startNode(n)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("spawned %s (pid %d) on channel %s: %d register/deregister cycles every %v, then stays",
		n.Name, c.pid, f.Channel, f.Count, f.Every.D()), nil
}

// injectProducerRestart kills the producer (f.Signal), waits for its death,
// checks its segment (segment_check) and starts a successor of the same node:
// same flags, schema and geometry, a new pid (a new producer incarnation).
func injectProducerRestart(_ context.Context, r *run, f scenario.FaultSpec) (string, error) {
	n, ok := r.plan.Node(f.Target)
	if !ok {
		return "", fmt.Errorf("%s is not a node of the plan", f.Target)
	}
	sig, err := chaos.ParseSignal(string(f.Signal))
	if err != nil {
		return "", err
	}
	c := r.sup.current(f.Target)
	if err := r.signal(f.Target, sig); err != nil {
		return "", err
	}
	select {
	case <-c.done:
	case <-time.After(deathWait):
		return "", fmt.Errorf("%s (pid %d) did not die within %v of %s", f.Target, c.pid, deathWait, unixSignalName(sig))
	}
	r.checkSegmentAfter(f, c)
	succ, err := r.startNode(*n)
	if err != nil {
		return "", fmt.Errorf("%s killed, successor not started: %w", f.Target, err)
	}
	return fmt.Sprintf("%s pid %d; successor pid %d", unixSignalName(sig), c.pid, succ.pid), nil
}

// injectCorruptControl scribbles one control-zone word of the channel's
// segment (chaos.CorruptControl).
func injectCorruptControl(_ context.Context, r *run, f scenario.FaultSpec) (string, error) {
	return chaos.CorruptControl(r.channels[f.Channel], f.Control)
}

// checkSegmentAfter runs chaos.CheckSegment on the segment of producer c once
// c has died by a signal, and records the report as a segment_check event.
// It does nothing for a consumer, a producer without shared memory, or one
// that ended by itself (it removed its segment).
func (r *run) checkSegmentAfter(f scenario.FaultSpec, c *child) {
	if c == nil || c.role != "producer" {
		return
	}
	n, ok := r.plan.Node(c.name)
	if !ok || n.Shm == nil || !*n.Shm {
		return
	}
	select {
	case <-c.done:
	case <-time.After(deathWait):
		return
	}
	c.mu.Lock()
	signaled := c.status.Signaled()
	c.mu.Unlock()
	if !signaled {
		return
	}
	segment := r.channels[n.Channel]
	fields := map[string]any{"id": f.ID, "target": c.name, "channel": segment}
	rep, err := chaos.CheckSegment(segment)
	if err != nil {
		fields["error"] = err.Error()
	} else {
		bad := make([]any, len(rep.BadSlots))
		for i, s := range rep.BadSlots {
			bad[i] = s
		}
		fields["ok"], fields["problems"], fields["slots_verified"], fields["bad_slots"], fields["detail"] =
			rep.OK(), toAny(rep.Problems), rep.SlotsVerified, bad, rep.String()
	}
	r.col.engine(scenario.KindSegmentCheck, fields)
}
