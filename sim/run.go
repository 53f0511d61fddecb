package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pylabhub/plh/chaos"
	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/sim/report"
	"github.com/pylabhub/plh/sim/scenario"
	"github.com/pylabhub/plh/sim/verdict"
)

// Config tells the engine how to reach the role processes and where to write.
type Config struct {
	// HubCmd and NodeCmd are the argv prefixes of the hub and node roles, e.g.
	// {"/path/plh-sim", "hub"}; the engine appends the role's flags.
	HubCmd  []string
	NodeCmd []string
	// JanitorCmd starts the janitor (see RunJanitor); nil runs without one.
	JanitorCmd []string
	// OutDir is the parent of run folders ("runs" when empty).
	OutDir string
	// Progress receives live progress (nil: none); Terminal selects the
	// rewritten status line instead of one plain line per notable event.
	Progress io.Writer
	Terminal bool
	// Logger receives the engine's own diagnostics (nil: discard).
	Logger *slog.Logger
}

// run is the state of one scenario run.
type run struct {
	cfg      Config
	plan     *scenario.Plan
	dir      string
	tag      string
	channels map[string]string // logical → actual channel name
	col      *collector
	sup      *supervisor
	log      *slog.Logger
	prog     *progress

	mu       sync.Mutex
	endpoint string                  // the broker's bound endpoint
	key      string                  // the broker's CURVE public key ("" = NULL)
	proxies  map[string]*chaos.Proxy // per node with link_proxy
	net      *chaos.Net              // the hosts (nil: none; hosts.go)
	t0       int64
	actions  sync.WaitGroup
}

var runSeq atomic.Int64

// Run executes the plan with real processes, writes its run folder and returns
// the report. ctx ends the run early (SIGINT of plh-sim): processes are stopped,
// the folder is still written and the verdict is inconclusive. An error is
// returned only when the harness itself failed before a report could be made.
func Run(ctx context.Context, cfg Config, p *scenario.Plan) (*verdict.Report, error) {
	if len(cfg.HubCmd) == 0 || len(cfg.NodeCmd) == 0 {
		return nil, fmt.Errorf("%w: hub and node commands are required", ErrHarness)
	}
	if cfg.OutDir == "" {
		cfg.OutDir = "runs"
	}
	if abs, err := filepath.Abs(cfg.OutDir); err == nil {
		cfg.OutDir = abs
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	r := &run{cfg: cfg, plan: p, log: lg, channels: map[string]string{}, proxies: map[string]*chaos.Proxy{}}
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	r.tag = fmt.Sprintf("%d_%d_%s", os.Getpid(), runSeq.Add(1), hex.EncodeToString(rnd[:]))
	for _, ch := range p.Channels() {
		r.channels[ch] = "plh_" + ch + "_" + r.tag
	}
	r.dir = filepath.Join(cfg.OutDir, fmt.Sprintf("%s-%s-s%d-%s", dirName(p.Name),
		time.Now().Format("20060102-150405"), p.Seed, r.tag))
	if err := os.MkdirAll(filepath.Join(r.dir, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("%w: run folder: %v", ErrHarness, err)
	}
	if err := report.WriteStatic(r.dir, p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHarness, err)
	}
	r.prog = newProgress(cfg.Progress, cfg.Terminal, p)
	r.col = newCollector(r.prog.event)
	jan, err := startJanitor(cfg.JanitorCmd)
	if err != nil {
		return nil, err
	}
	for _, actual := range r.channels {
		jan.add("shm", actual)
	}
	r.sup = &supervisor{logDir: filepath.Join(r.dir, "logs"), col: r.col, janitor: jan,
		statusDir: filepath.Join(r.dir, "status"), channelOf: func(n string) string { return r.channels[r.channelOf(n)] }}
	r.sup.beforeHub = r.quiesceHub
	if err := os.MkdirAll(r.sup.statusDir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: run folder: %v", ErrHarness, err)
	}

	herr := r.execute(ctx)
	r.prog.finish()
	// Whatever happened, nothing stays running and no segment stays behind.
	r.sup.killAll()
	r.closeProxies()
	r.closeHosts()
	jan.finish()
	return r.report(herr)
}

// execute runs the phases; an error is a harness error (or the system did not
// come up), reported in results.json.
func (r *run) execute(ctx context.Context) error {
	p := r.plan
	if err := r.startHosts(); err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, p.StartupTimeout.D())
	defer cancel()
	if err := r.startHubIfAny(startCtx); err != nil {
		r.stopEverything()
		return err
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() { defer close(watched); r.watchResources(watchCtx) }()
	defer func() { stopWatch(); <-watched }()
	for _, role := range []string{"producer", "consumer"} {
		var started []*child
		from := r.col.len()
		for _, n := range p.Nodes {
			if n.Role == role && n.Start == 0 {
				c, err := r.startNode(n)
				if err != nil {
					r.stopEverything()
					return err
				}
				started = append(started, c)
			}
		}
		for _, c := range started {
			if _, err := r.sup.waitReady(startCtx, c, from); err != nil {
				r.stopEverything()
				return fmt.Errorf("%w: startup: %v (see logs/%s.log)", ErrHarness, err, c.name)
			}
		}
	}
	t0 := proc.Now()
	r.mu.Lock()
	r.t0 = t0
	r.mu.Unlock()
	r.prog.start(t0)
	r.col.add(event.Event{T: t0, Node: scenario.EngineName, Kind: "run_start",
		Fields: map[string]any{"duration_ns": int64(p.Duration), "seed": p.Seed}})
	r.sampleHub(ctx, "t0")

	runCtx, stopActions := context.WithCancel(ctx)
	for _, n := range p.Nodes {
		if n.Start > 0 {
			r.at(runCtx, n.Start, func() {
				if _, err := r.startNode(n); err != nil {
					r.col.engine("error", map[string]any{"op": "spawn " + n.Name, "error": err.Error()})
				}
			})
		}
	}
	for _, f := range p.Faults {
		r.at(runCtx, f.At, func() { r.fire(runCtx, f) })
	}
	t := time.NewTimer(time.Until(r.wall(p.Duration)))
	select {
	case <-t.C:
	case <-ctx.Done():
		r.col.engine("interrupted", map[string]any{"reason": "signal"})
	}
	t.Stop()
	stopActions()
	r.actions.Wait()
	r.col.engine("run_end", nil)
	if ctx.Err() == nil {
		r.sampleHub(ctx, "run_end")
		r.snapshotRegistry(ctx)
	}
	r.stopEverything()
	return nil
}

// wall converts an offset from t0 into a wall-clock deadline.
func (r *run) wall(off scenario.Duration) time.Time {
	r.mu.Lock()
	t0 := r.t0
	r.mu.Unlock()
	return time.Now().Add(time.Duration(t0 + int64(off) - proc.Now()))
}

// at runs fn in its own goroutine at t0+off, unless ctx ends first.
func (r *run) at(ctx context.Context, off scenario.Duration, fn func()) {
	r.actions.Add(1)
	go func() {
		defer r.actions.Done()
		t := time.NewTimer(time.Until(r.wall(off)))
		defer t.Stop()
		select {
		case <-t.C:
			fn()
		case <-ctx.Done():
		}
	}()
}

// stopEverything stops every process gracefully (tiered), then sweeps.
func (r *run) stopEverything() {
	r.sup.stopAll(r.plan.StopGrace.D())
	r.sup.wg.Wait()
	leaked := r.sup.leaked()
	var leftover []string
	for logical, actual := range r.channels {
		// The channel's segment, and those of later layout generations
		// (NAME.remap-N: a structure remap, docs/protocol.md).
		paths, _ := filepath.Glob(chaos.SegmentPath(actual) + ".remap-*")
		for _, path := range append(paths, chaos.SegmentPath(actual)) {
			if _, err := os.Stat(path); err == nil {
				leftover = append(leftover, logical)
				if err := os.Remove(path); err != nil {
					r.log.Warn("sweep segment", "path", path, "err", err)
				}
			}
		}
	}
	sort.Strings(leftover)
	leftover = slices.Compact(leftover)
	r.col.engine("end_state", map[string]any{"leaked": toAny(leaked), "leftover_segments": toAny(leftover)})
}

func (r *run) startHub(ctx context.Context, endpoint string) error {
	h := r.plan.Hub
	if endpoint == "" {
		endpoint = r.bindOn(h.Host)
	}
	// The key pair lives in the run folder, so a restarted hub (broker_restart)
	// keeps the public key the nodes were given.
	argv := append(append([]string(nil), r.cfg.HubCmd...), "--endpoint", endpoint, "--keys-dir", filepath.Join(r.dir, "keys"), "--control")
	if h.ChannelTimeout > 0 {
		argv = append(argv, "--channel-timeout", h.ChannelTimeout.D().String())
	}
	if h.ConsumerTimeout > 0 {
		argv = append(argv, "--consumer-timeout", h.ConsumerTimeout.D().String())
	}
	argv = r.onHost(h.Host, append(argv, h.Args...))
	from := r.col.len()
	c, err := r.sup.start(scenario.HubName, scenario.HubName, h.Exit, argv)
	if err != nil {
		return err
	}
	ev, err := r.sup.waitReady(ctx, c, from)
	if err != nil {
		return fmt.Errorf("%w: hub: %v (see logs/hub.log)", ErrHarness, err)
	}
	ep := ev.Str("endpoint")
	if ep == "" {
		return fmt.Errorf("%w: hub's ready event carries no endpoint", ErrHarness)
	}
	key := ev.Str("pubkey")
	r.mu.Lock()
	if r.endpoint != "" && key != r.key {
		r.mu.Unlock()
		return fmt.Errorf("%w: restarted hub has public key %q, nodes were given %q", ErrHarness, key, r.key)
	}
	r.endpoint, r.key = ep, key
	r.mu.Unlock()
	r.sampleHub(ctx, "baseline")
	return nil
}

// brokerFor returns the endpoint node n uses for the broker: the broker's own,
// or a chaos proxy in front of it when the node's link may be damaged.
func (r *run) brokerFor(n scenario.PlanNode) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !n.LinkProxy {
		return r.endpoint, nil
	}
	if px, ok := r.proxies[n.Name]; ok {
		return "tcp://" + px.Addr(), nil
	}
	addr := strings.TrimPrefix(r.endpoint, "tcp://")
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", fmt.Errorf("%w: link proxy needs a tcp broker endpoint, got %q", ErrHarness, r.endpoint)
	}
	px, err := r.newProxy(n, addr)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrHarness, err)
	}
	r.proxies[n.Name] = px
	return "tcp://" + px.Addr(), nil
}

func (r *run) closeProxies() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, px := range r.proxies {
		_ = px.Close()
	}
}

// nodeArgs builds the plh-node command line of n.
func (r *run) nodeArgs(n scenario.PlanNode, broker string) []string {
	a := append(append([]string(nil), r.cfg.NodeCmd...), r.nodeFlags(n, broker)...)
	return append(a, n.Args...)
}

// nodeFlags builds the plh-node flags of n (a user's program gets them as
// PLH_* environment variables: programEnv).
func (r *run) nodeFlags(n scenario.PlanNode, broker string) []string {
	var a []string
	a = append(a, "--name", n.Name, "--role", n.Role, "--broker", broker, "--channel", r.channels[n.Channel],
		"--status-file", statusPath(r.dir, n.Name))
	if r.plan.Hub.Off() {
		a = append(a, "--discovery-dir", discoveryDir(r.dir))
	}
	r.mu.Lock()
	key := r.key
	r.mu.Unlock()
	if key != "" {
		a = append(a, "--broker-key", key)
	}
	add := func(flag, val string) { a = append(a, flag, val) }
	if n.Pattern != "" {
		add("--pattern", string(n.Pattern))
	}
	if n.Shm != nil {
		a = append(a, fmt.Sprintf("--shm=%t", *n.Shm))
	}
	if n.Policy != "" {
		add("--policy", nodePolicy[n.Policy])
	}
	if n.Heartbeat > 0 {
		add("--heartbeat", n.Heartbeat.D().String())
	}
	if n.SlotSize > 0 {
		add("--slot-size", fmt.Sprint(n.SlotSize))
	}
	if n.Slots > 0 {
		add("--slots", fmt.Sprint(n.Slots))
	}
	if n.Rate > 0 {
		add("--rate", fmt.Sprint(n.Rate))
	}
	if n.Messages > 0 {
		add("--count", fmt.Sprint(n.Messages))
	}
	if n.DelayPerRead > 0 {
		add("--delay-per-read", n.DelayPerRead.D().String())
	}
	if n.Secret != 0 {
		add("--secret", fmt.Sprint(n.Secret))
	}
	if n.Schema != "" {
		add("--schema", n.Schema)
	}
	if n.Group != "" {
		add("--group", n.Group)
	}
	if n.Role == "producer" && n.Host != "" {
		add("--endpoint", r.bindOn(n.Host))
	}
	return a
}

func (r *run) startNode(n scenario.PlanNode) (*child, error) {
	broker, err := r.brokerFor(n)
	if err != nil {
		return nil, err
	}
	if n.IsProgram() {
		return r.startProgram(n, broker)
	}
	return r.sup.start(n.Name, n.Role, n.Exit, r.onHost(n.Host, r.nodeArgs(n, broker)))
}

// nodePolicy maps the schema's policy names to plh-node's --policy values.
var nodePolicy = map[scenario.Policy]string{"Latest_only": "latest", "Single_reader": "single", "Sync_reader": "sync"}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func dirName(name string) string {
	s := strings.Trim(unsafeName.ReplaceAllString(name, "_"), "_")
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// report evaluates the timeline and writes the run folder's reports.
func (r *run) report(herr error) (*verdict.Report, error) {
	evs := r.col.Timeline()
	rep := verdict.Evaluate(r.plan, evs, r.channels)
	rep.Dir = r.dir
	if herr != nil {
		rep.SetError(herr)
	}
	if err := report.WriteEvents(filepath.Join(r.dir, report.EventsFile), evs); err != nil {
		return rep, fmt.Errorf("%w: %w", ErrHarness, err)
	}
	if err := report.WriteReports(r.dir, r.plan, rep, evs); err != nil {
		return rep, fmt.Errorf("%w: %w", ErrHarness, err)
	}
	return rep, nil
}
