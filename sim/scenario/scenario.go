package scenario

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	toml "github.com/pelletier/go-toml/v2"
)

// Scenario is one scenario file as written (before includes, matrix and seed are
// resolved). docs/scenarios.md documents every key.
type Scenario struct {
	Name           string                   `toml:"name"`
	Description    string                   `toml:"description,omitempty"`
	Seed           *uint64                  `toml:"seed,omitempty"`
	Duration       Duration                 `toml:"duration,omitempty"`
	StartupTimeout Duration                 `toml:"startup_timeout,omitempty"`
	StopGrace      Duration                 `toml:"stop_grace,omitempty"`
	Include        []string                 `toml:"include,omitempty"`
	Hosts          []HostSpec               `toml:"hosts,omitempty"`
	Hub            *HubSpec                 `toml:"hub,omitempty"`
	Producers      []NodeSpec               `toml:"producers,omitempty"`
	Consumers      []NodeSpec               `toml:"consumers,omitempty"`
	Faults         []FaultSpec              `toml:"faults,omitempty"`
	RandomFaults   []RandomSpec             `toml:"random_faults,omitempty"`
	Expect         []ExpectSpec             `toml:"expect,omitempty"`
	Matrix         map[string][]any         `toml:"matrix,omitempty"`
	Invariants     map[string]InvariantSpec `toml:"invariants,omitempty"`
	// Explore is what `plh-sim explore` may draw (explore.go); run ignores it.
	Explore *ExploreSpec `toml:"explore,omitempty"`
}

// HubSpec configures the hub (broker) process.
type HubSpec struct {
	// Enabled = false runs the scenario without a hub (nohub.go); omitted: a hub runs.
	Enabled         *bool    `toml:"enabled,omitempty"`
	ChannelTimeout  Duration `toml:"channel_timeout,omitempty"`
	ConsumerTimeout Duration `toml:"consumer_timeout,omitempty"`
	Args            []string `toml:"args,omitempty"`
	Exit            ExitMode `toml:"exit,omitempty"`
	Host            string   `toml:"host,omitempty"`
}

// NodeSpec is one [[producers]] or [[consumers]] entry.
type NodeSpec struct {
	Name         string   `toml:"name"`
	Instances    int      `toml:"instances,omitempty"`
	Channel      string   `toml:"channel"`
	Pattern      Pattern  `toml:"pattern,omitempty"`
	Shm          *bool    `toml:"shm,omitempty"`
	Policy       Policy   `toml:"policy,omitempty"`
	SlotSize     int      `toml:"slot_size,omitempty"`
	Slots        int      `toml:"slots,omitempty"`
	Rate         float64  `toml:"rate,omitempty"`
	Messages     int      `toml:"messages,omitempty"`
	DelayPerRead Duration `toml:"delay_per_read,omitempty"`
	Secret       uint64   `toml:"secret,omitempty"`
	Schema       string   `toml:"schema,omitempty"`
	// Group: a consumer's consumer group (B-7; plh-node --group).
	Group     string   `toml:"group,omitempty"`
	Heartbeat Duration `toml:"heartbeat,omitempty"`
	Start     Duration `toml:"start,omitempty"`
	LinkProxy bool     `toml:"link_proxy,omitempty"`
	Exit      ExitMode `toml:"exit,omitempty"`
	Args      []string `toml:"args,omitempty"`
	Host      string   `toml:"host,omitempty"`
	// Command, Env, Dir and Events run a user's own program instead of
	// plh-node (program.go, docs/events.md "Your own program as a node").
	Command []string          `toml:"command,omitempty"`
	Env     map[string]string `toml:"env,omitempty"`
	Dir     string            `toml:"dir,omitempty"`
	Events  string            `toml:"events,omitempty"`
}

// FaultSpec is one [[faults]] entry: a fault at a fixed time.
type FaultSpec struct {
	ID       string    `toml:"id,omitempty"`
	At       Duration  `toml:"at"`
	Kind     FaultKind `toml:"kind"`
	Target   string    `toml:"target,omitempty"`
	Signal   Signal    `toml:"signal,omitempty"`
	Duration Duration  `toml:"duration,omitempty"`
	Delay    Duration  `toml:"delay,omitempty"`
	Channel  string    `toml:"channel"`
	Schema   string    `toml:"schema,omitempty"`
	Name     string    `toml:"name"`
	Slot     SlotPick  `toml:"slot,omitempty"`
	Hosts    []string  `toml:"hosts,omitempty"`
	Peers    []string  `toml:"peers,omitempty"`
	OneWay   bool      `toml:"one_way,omitempty"`
	// Count and Every: consumer_churn's cycles and their period.
	Count int      `toml:"count,omitempty"`
	Every Duration `toml:"every,omitempty"`
	// Control is corrupt_control's target word (chaos.ControlTargets).
	Control string `toml:"control,omitempty"`
}

// RandomSpec draws faults from the seed: Count faults of the given kinds at
// random targets, spaced by a random interval, inside a window.
type RandomSpec struct {
	Kinds    []FaultKind `toml:"kinds,omitempty"`
	Targets  []string    `toml:"targets,omitempty"`
	Count    int         `toml:"count,omitempty"`
	Interval []Duration  `toml:"interval,omitempty"`
	Window   []Duration  `toml:"window,omitempty"`
	Duration []Duration  `toml:"duration,omitempty"`
	Signal   Signal      `toml:"signal,omitempty"`
	Delay    []Duration  `toml:"delay,omitempty"`
	// Distinct draws (kind, target) pairs without replacement.
	Distinct bool `toml:"distinct,omitempty"`
}

// ExpectSpec is one [[expect]] entry.
type ExpectSpec struct {
	Name   string         `toml:"name"`
	Type   ExpectType     `toml:"type"`
	Kind   string         `toml:"kind"`
	Node   string         `toml:"node,omitempty"`
	Match  map[string]any `toml:"match,omitempty"`
	After  string         `toml:"after,omitempty"`
	Within Duration       `toml:"within,omitempty"`
	Until  string         `toml:"until,omitempty"`
	Each   bool           `toml:"each,omitempty"`
	From   Duration       `toml:"from,omitempty"`
	To     Duration       `toml:"to,omitempty"`
	Metric Metric         `toml:"metric,omitempty"`
	Min    *Bound         `toml:"min,omitempty"`
	Max    *Bound         `toml:"max,omitempty"`
	Code   *int           `toml:"code,omitempty"`
	Reason string         `toml:"reason,omitempty"`
	// PerFault multiplies min and max by the number of faults that fired
	// (those whose id matches Faults, a glob; default every fault).
	PerFault bool   `toml:"per_fault,omitempty"`
	Faults   string `toml:"faults,omitempty"`
	// MaxGrowth bounds a resource expectation: last sample minus first.
	MaxGrowth *Bound `toml:"max_growth,omitempty"`
	// Delivery and Channel: a delivery expectation (exactly_once, each).
	Delivery string `toml:"delivery,omitempty"`
	Channel  string `toml:"channel,omitempty"`
}

// Duration is a time.Duration written as a string ("1.5s") in TOML.
type Duration time.Duration

// UnmarshalText parses a Go duration string; negative durations are rejected.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("bad duration %q (want e.g. \"1.5s\", \"200ms\")", b)
	}
	if v < 0 {
		return fmt.Errorf("negative duration %q", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the canonical Go form.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Bound is a numeric bound of a count or metric: a number, or a duration string
// (taken as nanoseconds, for latency metrics).
type Bound float64

// UnmarshalText accepts a duration string.
func (b *Bound) UnmarshalText(t []byte) error {
	if v, err := strconv.ParseFloat(string(t), 64); err == nil {
		*b = Bound(v)
		return nil
	}
	v, err := time.ParseDuration(string(t))
	if err != nil {
		return fmt.Errorf("bad bound %q (want a number or a duration)", t)
	}
	*b = Bound(v)
	return nil
}

// Allowed values of the string enums of the schema. go-toml assigns string
// kinds directly (no UnmarshalText), so validate checks and normalises them.
var (
	patterns    = []string{"PubSub", "Pipeline", "Bidir"}
	policies    = []string{"Latest_only", "Single_reader", "Sync_reader"}
	exitModes   = []string{"clean", "error", "killed", "any"}
	expectTypes = []string{"event", "never", "count", "metric", "exit", "resource", "delivery"}
	slotPicks   = []string{"next", "latest", "all"}
	untils      = []string{UntilRunEnd, UntilStop}
)

// FaultKind names a fault injector.
type FaultKind string

// Fault kinds.
const (
	FaultKill            FaultKind = "kill"
	FaultPause           FaultKind = "pause"
	FaultResume          FaultKind = "resume"
	FaultBrokerRestart   FaultKind = "broker_restart"
	FaultSchemaConflict  FaultKind = "schema_conflict"
	FaultSlowConsumer    FaultKind = "slow_consumer"
	FaultKillHoldingLock FaultKind = "kill_holding_lock"
	FaultCorruptSlot     FaultKind = "corrupt_slot"
	FaultLinkDelay       FaultKind = "link_delay"
	FaultLinkReset       FaultKind = "link_reset"
	FaultPartition       FaultKind = "partition"
	FaultHeal            FaultKind = "heal"
	FaultHostKill        FaultKind = "host_kill"
	// FaultConsumerChurn spawns a consumer that registers and deregisters
	// Count times, one cycle every Every, then stays.
	FaultConsumerChurn FaultKind = "consumer_churn"
	// FaultProducerRestart kills a producer and starts a successor of the
	// same node (same schema and geometry).
	FaultProducerRestart FaultKind = "producer_restart"
	// FaultHubPause stops the hub (SIGSTOP) for Duration.
	FaultHubPause FaultKind = "hub_pause"
	// FaultCorruptControl scribbles one control-zone word of a segment.
	FaultCorruptControl FaultKind = "corrupt_control"
)

// FaultKinds lists every fault kind a scenario may name; the engine has one
// row per kind in its fault table.
var FaultKinds = []string{"kill", "pause", "resume", "broker_restart", "schema_conflict",
	"slow_consumer", "kill_holding_lock", "corrupt_slot", "link_delay", "link_reset",
	"partition", "heal", "host_kill", "consumer_churn", "producer_restart", "hub_pause", "corrupt_control"}

// NodeName is the name of the node a consumer_churn fault spawns: its name,
// else its id.
func (f FaultSpec) NodeName() string {
	if f.Name != "" {
		return f.Name
	}
	return f.ID
}

// Pattern is a channel pattern.
type Pattern string

// Policy is a consumer sync policy.
type Policy string

// ExitMode is how a node is expected to end.
type ExitMode string

// Exit modes.
const (
	ExitClean  ExitMode = "clean"  // exit status 0 (stopped by the engine or done)
	ExitFailed ExitMode = "error"  // a non-zero exit status
	ExitKilled ExitMode = "killed" // died by a signal (a fault)
	ExitAny    ExitMode = "any"
)

// ExpectType is the kind of an expectation.
type ExpectType string

// Expectation types.
const (
	ExpectEvent  ExpectType = "event"
	ExpectNever  ExpectType = "never"
	ExpectCount  ExpectType = "count"
	ExpectMetric ExpectType = "metric"
	ExpectExit   ExpectType = "exit"
	// ExpectResource bounds the growth of a process's sampled resource.
	ExpectResource ExpectType = "resource"
	// ExpectDelivery compares what a channel's consumers read with what
	// each producer incarnation wrote.
	ExpectDelivery ExpectType = "delivery"
)

// Window ends (ExpectSpec.Until) and anchors (ExpectSpec.After) beyond
// faults.
const (
	// UntilRunEnd ends a window at run_end (t0 + duration): the default.
	UntilRunEnd = "run_end"
	// UntilStop ends a window once the stop phase is over (every process
	// ended, end_state recorded): consumer_left, exits and deaths of the stop
	// phase count.
	UntilStop = "stop"
	// AfterStart anchors a window at t0 (as no after at all, but from counts
	// from t0 too).
	AfterStart = "start"
	// AfterStop anchors a window at run_end: the stop phase.
	AfterStop = "stop"
	// EndSuffix after a fault id anchors at that fault's fault_end.
	EndSuffix = ":end"
	// ReadySuffix after a node name anchors at that node's first ready event.
	ReadySuffix = ":ready"
)

// Ends reports whether the engine records a fault_end for f: a
// broker_restart (the broker is back), and a pause, link_delay, link_reset or
// partition with a duration.
func (f FaultSpec) Ends() bool {
	switch f.Kind {
	case FaultBrokerRestart:
		return true
	case FaultPause, FaultLinkDelay, FaultLinkReset, FaultPartition, FaultHubPause:
		return f.Duration > 0
	}
	return false
}

// Metric names a metric computed over a window of events.
type Metric string

var metrics = []string{"stalls", "stall_ns", "lost", "gaps", "reorders", "checksum_errors",
	"written", "read", "latency_max_ns", "latency_p50_ns", "broker_lost", "broker_reconnected", "stuck_duration_ms"}

// Signal is a signal name ("KILL", "SIGTERM", "9").
type Signal string

// SlotPick chooses which committed slot corrupt_slot damages.
type SlotPick string

// errUnquotedDuration is the error of a duration written as a bare number.
var errUnquotedDuration = errors.New("a duration is a string such as \"1s\" or \"200ms\" (an unquoted number has no unit)")

// durationError is an invalid duration value as written (raw), which
// decodeStrict locates in the source to name its line and key.
type durationError struct {
	raw string
	err error
}

func (e *durationError) Error() string { return e.err.Error() }
func (e *durationError) Unwrap() error { return e.err }

// UnmarshalTOML accepts only a TOML string: go-toml would otherwise store an
// unquoted integer (`at = 1`) as that many nanoseconds.
func (d *Duration) UnmarshalTOML(raw []byte) error {
	s := strings.TrimSpace(string(raw))
	if len(s) < 2 || (s[0] != '"' && s[0] != '\'') {
		return &durationError{raw: s, err: fmt.Errorf("%w, got %s", errUnquotedDuration, s)}
	}
	var str string
	if err := toml.Unmarshal([]byte("v = "+s), &struct {
		V *string `toml:"v"`
	}{&str}); err != nil {
		return &durationError{raw: s, err: fmt.Errorf("bad duration %s", s)}
	}
	if err := d.UnmarshalText([]byte(str)); err != nil {
		return &durationError{raw: s, err: err}
	}
	return nil
}
