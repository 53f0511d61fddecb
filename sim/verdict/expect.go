package verdict

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/sim/scenario"
)

// Status of an expectation or a run.
const (
	StatusPass         = "pass"
	StatusFail         = "fail"
	StatusInconclusive = "inconclusive"
	StatusError        = "error"
)

// Exit codes of plh-sim.
const (
	ExitPass         = 0
	ExitFail         = 1
	ExitInconclusive = 2
	ExitError        = 3
)

// maxEvidence bounds the events attached to one verdict.
const maxEvidence = 8

// Report is the outcome of one run (results.json).
type Report struct {
	Name         string            `json:"name"`
	Source       string            `json:"source"`
	Seed         uint64            `json:"seed"`
	Vars         []scenario.Var    `json:"vars,omitempty"`
	Status       string            `json:"status"`
	ExitCode     int               `json:"exit_code"`
	Error        string            `json:"error,omitempty"`
	Dir          string            `json:"run_dir"`
	T0           int64             `json:"t0"`
	End          int64             `json:"end"`
	Channels     map[string]string `json:"channels"`
	Faults       []FaultResult     `json:"faults"`
	Expectations []Verdict         `json:"expectations"`
}

// FaultResult says whether and when a scheduled fault fired.
type FaultResult struct {
	ID       string  `json:"id"`
	Kind     string  `json:"kind"`
	Target   string  `json:"target"`
	At       string  `json:"at"`
	Fired    bool    `json:"fired"`
	FiredAtS float64 `json:"fired_at_s,omitempty"` // seconds after run start
	Detail   string  `json:"detail,omitempty"`
	Error    string  `json:"error,omitempty"`
}

// Verdict is the outcome of one expectation, with the events that prove it.
type Verdict struct {
	Name     string        `json:"name"`
	Type     string        `json:"type"`
	Status   string        `json:"status"`
	Message  string        `json:"message"`
	Evidence []event.Event `json:"evidence,omitempty"`
}

// SetError marks the report as a harness error (exit 3) with err's message.
func (r *Report) SetError(err error) {
	r.Status, r.ExitCode, r.Error = StatusError, ExitError, err.Error()
}

// window is a closed interval of t.
type window struct{ from, to int64 }

func (w window) has(t int64) bool { return t >= w.from && t <= w.to }

// evaluator holds what the expectations are checked against.
type evaluator struct {
	plan     *scenario.Plan
	evs      []event.Event // sorted by t
	channels map[string]string
	t0, end  int64            // run_start, run_end
	stopEnd  int64            // end of the stop phase: end_state, else the last event
	faultT   map[string]int64 // fault id → t it fired
}

// Evaluate checks every expectation of the plan, plus the implicit end-state
// checks, against a run's merged timeline (sorted by t). channels maps logical
// channel names to the names used in the run (match values naming a logical
// channel are compared with the actual name). It is a pure function.
func Evaluate(p *scenario.Plan, evs []event.Event, channels map[string]string) *Report {
	e := &evaluator{plan: p, evs: evs, channels: channels, faultT: map[string]int64{}}
	rep := &Report{Name: p.Name, Source: p.Source, Seed: p.Seed, Vars: p.Vars, Channels: channels}
	started := false
	for _, ev := range evs {
		if ev.Node != scenario.EngineName {
			continue
		}
		switch ev.Kind {
		case "run_start":
			e.t0, started = ev.T, true
		case "run_end":
			e.end = ev.T
		case "fault":
			if id := ev.Str("id"); id != "" {
				if _, seen := e.faultT[id]; !seen {
					e.faultT[id] = ev.T
				}
			}
		}
	}
	if len(evs) > 0 {
		e.stopEnd = evs[len(evs)-1].T
		if e.end == 0 {
			e.end = e.stopEnd
		}
	}
	if st, ok := e.first(func(ev event.Event) bool { return ev.Node == scenario.EngineName && ev.Kind == "end_state" }); ok {
		e.stopEnd = st.T
	}
	rep.T0, rep.End = e.t0, e.end
	unfired := false
	for _, f := range p.Faults {
		fr := FaultResult{ID: f.ID, Kind: string(f.Kind), Target: f.Target, At: f.At.D().String()}
		if t, ok := e.faultT[f.ID]; ok {
			fr.Fired, fr.FiredAtS = true, float64(t-e.t0)/1e9
			if ev, ok := e.first(func(ev event.Event) bool { return ev.Kind == "fault" && ev.Str("id") == f.ID }); ok {
				fr.Detail = ev.Str("detail")
			}
		}
		if ev, ok := e.first(func(ev event.Event) bool { return ev.Kind == "fault_failed" && ev.Str("id") == f.ID }); ok {
			fr.Error = ev.Str("error")
		}
		if !fr.Fired || fr.Error != "" {
			unfired = true
		}
		rep.Faults = append(rep.Faults, fr)
	}
	if !started {
		rep.Expectations = append(rep.Expectations, Verdict{Name: "system started", Type: "run",
			Status: StatusInconclusive, Message: "the run never started (see the error and logs/)"})
	} else {
		for _, x := range p.Expect {
			rep.Expectations = append(rep.Expectations, e.check(x))
		}
		rep.Expectations = append(rep.Expectations, e.endState()...)
		rep.Expectations = append(rep.Expectations, e.invariants()...)
	}
	if ev, ok := e.first(func(ev event.Event) bool { return ev.Node == scenario.EngineName && ev.Kind == "interrupted" }); ok {
		rep.Expectations = append(rep.Expectations, Verdict{Name: "run completed", Type: "run",
			Status: StatusInconclusive, Message: "interrupted by a signal before the scenario's end", Evidence: []event.Event{ev}})
	}
	rep.Status, rep.ExitCode = StatusPass, ExitPass
	for _, v := range rep.Expectations {
		switch {
		case v.Status == StatusFail:
			rep.Status, rep.ExitCode = StatusFail, ExitFail
		case v.Status == StatusInconclusive && rep.Status == StatusPass:
			rep.Status, rep.ExitCode = StatusInconclusive, ExitInconclusive
		}
	}
	if unfired && rep.Status == StatusPass {
		rep.Status, rep.ExitCode = StatusInconclusive, ExitInconclusive
	}
	return rep
}

func (e *evaluator) first(match func(event.Event) bool) (event.Event, bool) {
	for _, ev := range e.evs {
		if match(ev) {
			return ev, true
		}
	}
	return event.Event{}, false
}

// anchor returns the t an expectation counts from, and the event that marks
// it: run start, run_end (stop), a fault, a fault's end, or a node's first
// ready event.
func (e *evaluator) anchor(x scenario.ExpectSpec) (int64, *event.Event, error) {
	engine := func(kind, id string) func(event.Event) bool {
		return func(ev event.Event) bool {
			return ev.Node == scenario.EngineName && ev.Kind == kind && ev.Str("id") == id
		}
	}
	var match func(event.Event) bool
	var missing string
	switch a := x.After; {
	case a == "" || a == scenario.AfterStart:
		return e.t0, nil, nil
	case a == scenario.AfterStop:
		match, missing = func(ev event.Event) bool { return ev.Node == scenario.EngineName && ev.Kind == "run_end" }, "the run never reached run_end"
	case strings.HasSuffix(a, scenario.EndSuffix):
		id := strings.TrimSuffix(a, scenario.EndSuffix)
		match, missing = engine("fault_end", id), fmt.Sprintf("fault %q never ended", id)
		if _, fired := e.faultT[id]; !fired {
			missing = fmt.Sprintf("fault %q never fired", id)
		}
	case strings.HasSuffix(a, scenario.ReadySuffix):
		node := strings.TrimSuffix(a, scenario.ReadySuffix)
		match, missing = func(ev event.Event) bool { return ev.Node == node && ev.Kind == "ready" }, node+" was never ready"
	default:
		if _, ok := e.faultT[a]; !ok {
			return 0, nil, fmt.Errorf("fault %q never fired", a)
		}
		match = engine("fault", a)
	}
	ev, ok := e.first(match)
	if !ok {
		return 0, nil, errors.New(missing)
	}
	if x.After == scenario.AfterStop {
		return ev.T, &ev, nil
	}
	if t, ok := e.faultT[x.After]; ok {
		return t, &ev, nil // the first fault event of a fault that records two (broker_restart)
	}
	return ev.T, &ev, nil
}

// matches reports whether ev is of the expectation's kind, at its node, with
// every match field equal.
func (e *evaluator) matches(x scenario.ExpectSpec, ev event.Event) bool {
	if x.Kind != "" && ev.Kind != x.Kind {
		return false
	}
	if x.Node != "" {
		if ok, _ := path.Match(x.Node, ev.Node); !ok {
			return false
		}
	}
	for k, want := range x.Match {
		got, present := ev.Fields[k]
		if !present {
			return false
		}
		if s, ok := want.(string); ok && (k == "channel" || k == "channel_name") {
			if actual, ok := e.channels[s]; ok {
				want = actual
			}
		}
		if !equalField(got, want) {
			return false
		}
	}
	return true
}

// equalField compares an event field with a match value: numbers numerically,
// strings exactly or as a glob when the match value has '*'.
func equalField(got, want any) bool {
	switch w := want.(type) {
	case string:
		g, ok := got.(string)
		if !ok {
			return false
		}
		if strings.ContainsAny(w, "*?") {
			m, _ := path.Match(w, g)
			return m
		}
		return g == w
	case bool:
		g, ok := got.(bool)
		return ok && g == w
	}
	wf, ok1 := toFloat(want)
	gf, ok2 := toFloat(got)
	return ok1 && ok2 && wf == gf
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	case uint64:
		return float64(n), true
	}
	return 0, false
}

// inWindow returns the matching events in w.
func (e *evaluator) inWindow(x scenario.ExpectSpec, w window) []event.Event {
	var out []event.Event
	for _, ev := range e.evs {
		if w.has(ev.T) && e.matches(x, ev) {
			out = append(out, ev)
		}
	}
	return out
}

func (e *evaluator) check(x scenario.ExpectSpec) Verdict {
	v := Verdict{Name: x.Name, Type: string(x.Type)}
	if x.Type == scenario.ExpectExit {
		return e.checkExit(x, v)
	}
	if x.Type == scenario.ExpectDelivery {
		return e.checkDelivery(x, v)
	}
	if x.PerFault {
		return e.checkPerFault(x, v)
	}
	if x.Each {
		return e.checkEach(x, v)
	}
	at, faultEv, err := e.anchor(x)
	if err != nil {
		v.Status, v.Message = StatusInconclusive, err.Error()
		return v
	}
	w := window{from: at + int64(x.From), to: e.end}
	if x.Until == scenario.UntilStop || (x.After == scenario.AfterStop && x.Until == "") {
		w.to = e.stopEnd // through the stop phase
	}
	if (x.After == "" || x.After == "start") && x.From == 0 {
		w.from = 0 // no anchor, no offset: the whole run, startup included
	}
	if (x.Type == scenario.ExpectMetric || x.Type == scenario.ExpectResource) && x.To > 0 {
		w.to = at + int64(x.To)
	} else if x.Within > 0 {
		w.to = at + int64(x.Within)
	}
	var lead []event.Event
	if faultEv != nil {
		lead = []event.Event{*faultEv}
	}
	rel := func(t int64) string {
		if t == 0 {
			return "startup"
		}
		return fmtDur(t - at)
	}
	switch x.Type {
	case scenario.ExpectEvent:
		got := e.inWindow(x, w)
		if len(got) > 0 {
			v.Status = StatusPass
			v.Message = fmt.Sprintf("seen %s after %s", rel(got[0].T), anchorName(x))
			v.Evidence = append(lead, got[0])
			return v
		}
		v.Status = StatusFail
		v.Message = fmt.Sprintf("no %s%s within %s after %s", x.Kind, matchText(x), fmtDur(w.to-at), anchorName(x))
		if w.to > e.stopEnd {
			v.Message += fmt.Sprintf(" (the run ended %s after it)", fmtDur(e.stopEnd-at))
		}
		v.Evidence = append(lead, e.nearMisses(x, w)...)
	case scenario.ExpectNever:
		got := e.inWindow(x, w)
		if len(got) == 0 {
			v.Status, v.Message = StatusPass, fmt.Sprintf("no %s%s from %s to %s after %s", x.Kind, matchText(x), rel(w.from), rel(w.to), anchorName(x))
			return v
		}
		v.Status = StatusFail
		v.Message = fmt.Sprintf("%d %s event(s)%s, first %s after %s", len(got), x.Kind, matchText(x), rel(got[0].T), anchorName(x))
		v.Evidence = append(lead, capEvents(got)...)
	case scenario.ExpectCount:
		got := e.inWindow(x, w)
		v.Status, v.Message = bounds(float64(len(got)), x, fmt.Sprintf("%d %s event(s)%s", len(got), x.Kind, matchText(x)))
		v.Evidence = append(lead, capEvents(got)...)
	case scenario.ExpectMetric:
		val, evs := e.metric(x, w)
		v.Status, v.Message = bounds(val, x, fmt.Sprintf("%s = %v (from %s to %s after %s)", x.Metric, val, rel(w.from), rel(w.to), anchorName(x)))
		v.Evidence = append(lead, capEvents(evs)...)
	case scenario.ExpectResource:
		return e.checkResource(x, v, w)
	}
	return v
}

// checkEach checks x for every node matching x.Node on its own: it holds when
// it holds for each of them.
func (e *evaluator) checkEach(x scenario.ExpectSpec, v Verdict) Verdict {
	v.Status = StatusPass
	var fails, passes []string
	n := 0
	for _, name := range e.nodeNames() {
		if ok, _ := path.Match(x.Node, name); !ok {
			continue
		}
		n++
		one := x
		one.Node, one.Each = name, false
		r := e.check(one)
		if r.Status == StatusPass {
			passes = append(passes, name+": "+r.Message)
			continue
		}
		if r.Status == StatusFail || v.Status == StatusPass {
			v.Status = r.Status
		}
		fails = append(fails, name+": "+r.Message)
		v.Evidence = append(v.Evidence, r.Evidence...)
	}
	switch {
	case n == 0:
		v.Status, v.Message = StatusFail, "no node matches "+x.Node
	case len(fails) > 0:
		v.Message = fmt.Sprintf("%d of %d nodes: %s", len(fails), n, strings.Join(fails, "; "))
	default:
		v.Message = fmt.Sprintf("each of %d nodes: %s", n, strings.Join(passes, "; "))
	}
	v.Evidence = capEvents(v.Evidence)
	return v
}

func anchorName(x scenario.ExpectSpec) string {
	switch a := x.After; {
	case a == "" || a == scenario.AfterStart:
		return "run start"
	case a == scenario.AfterStop:
		return "run end (stop phase)"
	case strings.HasSuffix(a, scenario.EndSuffix):
		return "the end of fault " + strings.TrimSuffix(a, scenario.EndSuffix)
	case strings.HasSuffix(a, scenario.ReadySuffix):
		return strings.TrimSuffix(a, scenario.ReadySuffix) + " ready"
	}
	return "fault " + x.After
}

func matchText(x scenario.ExpectSpec) string {
	if len(x.Match) == 0 && x.Node == "" {
		return ""
	}
	keys := make([]string, 0, len(x.Match))
	for k := range x.Match {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, x.Match[k]))
	}
	s := ""
	if len(parts) > 0 {
		s = " {" + strings.Join(parts, " ") + "}"
	}
	if x.Node != "" {
		s += " at " + x.Node
	}
	return s
}

// bounds compares val with min/max.
func bounds(val float64, x scenario.ExpectSpec, what string) (string, string) {
	if x.Min != nil && val < float64(*x.Min) {
		return StatusFail, fmt.Sprintf("%s, want ≥ %v", what, float64(*x.Min))
	}
	if x.Max != nil && val > float64(*x.Max) {
		return StatusFail, fmt.Sprintf("%s, want ≤ %v", what, float64(*x.Max))
	}
	return StatusPass, what
}

// nearMisses are events of the same kind at the same node in the window (the
// match fields did not fit), or failing that the node's last events: what the
// reader needs to see why nothing matched.
func (e *evaluator) nearMisses(x scenario.ExpectSpec, w window) []event.Event {
	loose := scenario.ExpectSpec{Kind: x.Kind, Node: x.Node}
	if got := e.inWindow(loose, w); len(got) > 0 {
		return capEvents(got)
	}
	if x.Node == "" {
		return nil
	}
	var out []event.Event
	for _, ev := range e.evs {
		if ok, _ := path.Match(x.Node, ev.Node); ok && w.has(ev.T) {
			out = append(out, ev)
		}
	}
	if len(out) > maxEvidence {
		out = out[len(out)-maxEvidence:]
	}
	return out
}

func capEvents(evs []event.Event) []event.Event {
	if len(evs) > maxEvidence {
		return evs[:maxEvidence]
	}
	return evs
}

// metric computes x.Metric over the matching events of w; an "exit.FIELD"
// metric sums that total of the nodes' own exit events, whatever the window.
func (e *evaluator) metric(x scenario.ExpectSpec, w window) (float64, []event.Event) {
	if field, ok := strings.CutPrefix(string(x.Metric), "exit."); ok {
		var val float64
		var used []event.Event
		for _, ev := range e.evs {
			if ev.Kind == "exit" && ev.Str("recorded_by") == "" && e.matches(scenario.ExpectSpec{Node: x.Node, Match: x.Match}, ev) {
				n, _ := ev.Num(field)
				val += n
				used = append(used, ev)
			}
		}
		return val, used
	}
	kind, field, agg := scenario.MetricSource(x.Metric)
	q := x
	q.Kind = kind
	var val float64
	var used []event.Event
	for _, ev := range e.inWindow(q, w) {
		used = append(used, ev)
		n, _ := ev.Num(field)
		switch agg {
		case "count":
			val++
		case "sum":
			val += n
		case "max":
			val = max(val, n)
		}
	}
	return val, used
}

func fmtDur(ns int64) string {
	return time.Duration(ns).Round(time.Millisecond).String()
}
