package verdict

import (
	"fmt"
	"path"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/sim/scenario"
)

// resourceField maps a resource metric to the event field that carries it.
var resourceField = map[scenario.Metric]string{"fds": "fds", "threads": "threads", "rss": "rss_kb", "goroutines": "goroutines"}

// checkResource evaluates a resource expectation: the last sample of the
// node's metric in the window minus the first is at most max_growth.
func (e *evaluator) checkResource(x scenario.ExpectSpec, v Verdict, w window) Verdict {
	field := resourceField[x.Metric]
	var samples []event.Event
	for _, ev := range e.evs {
		if ev.Node != x.Node || !w.has(ev.T) || (ev.Kind != "resource" && ev.Kind != "stats") {
			continue
		}
		if _, ok := ev.Num(field); ok {
			samples = append(samples, ev)
		}
	}
	if len(samples) < 2 {
		v.Status, v.Message = StatusInconclusive, fmt.Sprintf("%d sample(s) of %s at %s in the window", len(samples), x.Metric, x.Node)
		return v
	}
	a, b := samples[0], samples[len(samples)-1]
	va, _ := a.Num(field)
	vb, _ := b.Num(field)
	peak := va
	for _, s := range samples {
		n, _ := s.Num(field)
		peak = max(peak, n)
	}
	growth := vb - va
	v.Message = fmt.Sprintf("%s of %s grew by %v (%v → %v, peak %v, %d samples), want ≤ %v",
		x.Metric, x.Node, growth, va, vb, peak, len(samples), float64(*x.MaxGrowth))
	v.Status = StatusPass
	if growth > float64(*x.MaxGrowth) {
		v.Status = StatusFail
	}
	v.Evidence = []event.Event{a, b}
	return v
}

// checkPerFault evaluates a count or metric expectation whose bounds are per
// fault: min and max multiplied by the number of faults (ids matching
// x.Faults, default all) that fired.
func (e *evaluator) checkPerFault(x scenario.ExpectSpec, v Verdict) Verdict {
	pat := x.Faults
	if pat == "" {
		pat = "*"
	}
	n := 0
	for id := range e.faultT {
		if ok, _ := path.Match(pat, id); ok {
			n++
		}
	}
	one := x
	one.PerFault = false
	scale := func(b *scenario.Bound) *scenario.Bound {
		if b == nil {
			return nil
		}
		s := *b * scenario.Bound(n)
		return &s
	}
	one.Min, one.Max = scale(x.Min), scale(x.Max)
	r := e.check(one)
	r.Message += fmt.Sprintf(" (bounds per fault: %d fault(s) matching %q fired)", n, pat)
	return r
}
