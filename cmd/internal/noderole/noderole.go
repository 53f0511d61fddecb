package noderole

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/blake2b"

	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/shm"
)

// options are plh-node's flags.
type options struct {
	name, role, broker, brokerKey, channel, pattern string
	discoveryDir                                    string
	endpoint                                        string
	useSHM                                          bool
	policy, checksum, schema, logLevel, uid, group  string
	schemaVersion, schemaBLDS                       string
	descriptor                                      *hub.Schema // from the --schema* flags (schema.go)
	slots, slotSize, window, waitConsumers          int
	rate, sendRate                                  float64
	statsInterval                                   time.Duration
	statusFile                                      string
	churn                                           int
	churnEvery                                      time.Duration
	count                                           uint64
	delayPerRead, duration, linger                  time.Duration
	holdPerRead                                     time.Duration
	heartbeat, peerHeartbeat, peerTimeout           time.Duration
	connectTimeout, stallAfter, stallEvery          time.Duration
	secret                                          uint64
	control                                         bool
	slowConsumer                                    hub.SlowConsumerPolicy
	remapAfter                                      uint64 // producer: remap the segment after this many writes (0 = never; remap.go)
	remapSlots                                      int    // the remapped ring's capacity (0 = twice --slots)
}

// Main runs plh-node with args (without the program name) until it is done, ctx
// is cancelled (first signal) or it fails. Control lines are read from os.Stdin.
// It returns the exit status: 0 done, 1 error, 2 bad usage.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return MainIO(ctx, args, os.Stdin, stdout, stderr)
}

// MainIO is Main with the control input given (nil: no control lines).
func MainIO(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "plh-node:", err)
		return 2
	}
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(o.logLevel))
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl})).With("node", o.name)
	ev := event.NewWriter(stdout, o.name)
	n := &node{o: o, log: log, ev: ev, ctl: newControl(o.delayPerRead)}
	if stdin != nil && o.control {
		go n.ctl.read(stdin, log)
	}
	code, reason := n.run(ctx)
	n.emitExit(code, reason)
	return code
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("plh-node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var secret string
	fs.StringVar(&o.name, "name", "node", "node name stamped on events")
	fs.StringVar(&o.role, "role", "", "producer|consumer (required)")
	fs.StringVar(&o.broker, "broker", "", "broker endpoint, e.g. tcp://127.0.0.1:5570 (\"\" = no broker: discovery records only, --discovery-dir)")
	fs.StringVar(&o.discoveryDir, "discovery-dir", "", "directory of discovery records (brokerless discovery; default without --broker: $XDG_RUNTIME_DIR/plh/channels; with --broker: none)")
	fs.StringVar(&o.brokerKey, "broker-key", os.Getenv("PLH_BROKER_KEY"), "broker CURVE public key, Z85, from plh-hub's ready event pubkey (default $PLH_BROKER_KEY; \"\" = NULL security)")
	fs.StringVar(&o.channel, "channel", "", "channel name (required)")
	fs.StringVar(&o.endpoint, "endpoint", "", "producer: peer endpoint to bind, e.g. tcp://198.18.0.2:0 (default tcp://127.0.0.1:0)")
	fs.StringVar(&o.pattern, "pattern", "PubSub", "PubSub|Pipeline|Bidir (producer)")
	fs.BoolVar(&o.useSHM, "shm", false, "producer: create a DataBlock and write into it; consumer: read it when attached")
	fs.StringVar(&o.policy, "policy", "latest", "latest|single|sync (producer with --shm)")
	fs.IntVar(&o.slots, "slots", 8, "ring capacity (producer with --shm)")
	fs.Uint64Var(&o.remapAfter, "remap-after", 0, "producer with --shm: after this many writes, move the channel to a new segment with --remap-slots slots (structure remap, B-19; 0 = never)")
	fs.IntVar(&o.remapSlots, "remap-slots", 0, "producer: the remapped ring's capacity (0 = twice --slots)")
	fs.IntVar(&o.slotSize, "slot-size", 4096, "payload bytes (≥ 24; SHM slots are rounded up to 4096)")
	fs.Float64Var(&o.rate, "rate", 0, "producer messages per second (0 = as fast as possible)")
	fs.Float64Var(&o.sendRate, "send-rate", 0, "Bidir consumer: messages per second sent to the producer (0 = none)")
	fs.DurationVar(&o.statsInterval, "stats-interval", time.Second, "emit a stats event (goroutines) this often (0 = never)")
	fs.StringVar(&o.statusFile, "status-file", "", "keep running totals in this file (mapped; read by the engine after a SIGKILL)")
	fs.IntVar(&o.churn, "churn", 0, "consumer: before connecting, register and deregister a consumer of the channel this many times")
	fs.DurationVar(&o.churnEvery, "churn-every", 20*time.Millisecond, "consumer: one --churn cycle this often")
	fs.Uint64Var(&o.count, "count", 0, "producer: messages to write; consumer: messages to read (0 = until stopped)")
	fs.DurationVar(&o.delayPerRead, "delay-per-read", 0, "consumer: sleep after each read")
	fs.DurationVar(&o.holdPerRead, "hold-per-read", 0, "consumer on the ring: hold each slot this long before releasing it (a \"holding\" event names it)")
	fs.StringVar(&secret, "secret", "0", "DataBlock shared secret (decimal or 0x hex; consumer: 0 = do not attach)")
	fs.StringVar(&o.schema, "schema", "", "schema name; its BLAKE2b-256 is the channel's schema_hash (\"\" = none)")
	fs.StringVar(&o.schemaVersion, "schema-version", "1.0.0", "with --schema-blds: the schema's version, major.minor.patch")
	fs.StringVar(&o.schemaBLDS, "schema-blds", "", "schema descriptor fields (BLDS, e.g. t:u64;x:f32): registered (producer) or expected (consumer) with --schema as its name")
	fs.StringVar(&o.checksum, "checksum", "enforced", "none|manual|enforced (producer with --shm)")
	fs.DurationVar(&o.duration, "duration", 0, "stop (done) after this long (0 = no limit)")
	fs.DurationVar(&o.linger, "linger", 0, "producer: after --count, keep the channel open this long")
	fs.DurationVar(&o.heartbeat, "heartbeat", 0, "broker heartbeat and ping period (0 = 2 s)")
	fs.DurationVar(&o.peerHeartbeat, "peer-heartbeat", 0, "consumer: peer heartbeat period (0 = 1 s, negative = none)")
	fs.DurationVar(&o.peerTimeout, "peer-timeout", 0, "producer: drop consumers silent this long (0 = 5 s, negative = never)")
	fs.DurationVar(&o.connectTimeout, "connect-timeout", 10*time.Second, "how long to wait for the broker and the channel")
	fs.DurationVar(&o.stallAfter, "stall-after", defaultStallAfter, "producer: report a write still waiting after this long (backpressure_stall_start)")
	fs.DurationVar(&o.stallEvery, "stall-every", defaultStallEvery, "producer: while a write waits, report it again this often (backpressure_stall_ongoing)")
	slow := fs.String("slow-consumer", "drop", "producer, PubSub: drop|block|disconnect, what to do with a consumer that returns no credit (hub.SlowConsumerPolicy)")
	fs.IntVar(&o.window, "window", 0, "consumer: flow-control window in messages (0 = 256)")
	fs.IntVar(&o.waitConsumers, "wait-consumers", 0, "producer: write nothing until this many consumers joined the peer link")
	fs.StringVar(&o.group, "group", "", "consumer: join this consumer group (its members split the channel's items, on the peer link and on a Sync_reader ring; B-7)")
	fs.StringVar(&o.uid, "uid", "", "consumer uid / producer uid stored in the segment")
	fs.StringVar(&o.logLevel, "log-level", "warn", "debug|info|warn|error")
	fs.BoolVar(&o.control, "control", true, "read control lines on stdin")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.secret, err = strconv.ParseUint(secret, 0, 64); err != nil {
		return o, fmt.Errorf("--secret %q: %v", secret, err)
	}
	switch {
	case o.role != "producer" && o.role != "consumer":
		return o, fmt.Errorf("--role must be producer or consumer, not %q", o.role)
	case o.channel == "":
		return o, errors.New("--channel is required")
	case o.slotSize < minPayload:
		return o, fmt.Errorf("--slot-size %d below %d", o.slotSize, minPayload)
	case o.slots < 1:
		return o, fmt.Errorf("--slots %d below 1", o.slots)
	case o.remapSlots < 0:
		return o, fmt.Errorf("--remap-slots %d is negative", o.remapSlots)
	case o.rate < 0:
		return o, fmt.Errorf("--rate %v is negative", o.rate)
	case o.churn < 0 || o.churnEvery <= 0:
		return o, fmt.Errorf("--churn %d / --churn-every %v: want churn ≥ 0 and a positive period", o.churn, o.churnEvery)
	case o.sendRate < 0:
		return o, fmt.Errorf("--send-rate %v is negative", o.sendRate)
	}
	if o.broker == "" && o.discoveryDir == "" {
		if o.discoveryDir, err = hub.DefaultDiscoveryDir(); err != nil {
			return o, fmt.Errorf("no --broker and no --discovery-dir: %w", err)
		}
	}
	if _, err := syncPolicy(o.policy); err != nil {
		return o, err
	}
	if o.slowConsumer, err = hub.ParseSlowConsumerPolicy(*slow); err != nil {
		return o, fmt.Errorf("--slow-consumer: %w", err)
	}
	if err := o.parseSchema(); err != nil {
		return o, err
	}
	if _, err := checksumPolicy(o.checksum); err != nil {
		return o, err
	}
	switch o.pattern {
	case "PubSub", "Pipeline", "Bidir":
	default:
		return o, fmt.Errorf("--pattern must be PubSub, Pipeline or Bidir, not %q", o.pattern)
	}
	return o, nil
}

func syncPolicy(s string) (shm.SyncPolicy, error) {
	switch strings.ToLower(s) {
	case "latest":
		return shm.LatestOnly, nil
	case "single":
		return shm.SingleReader, nil
	case "sync":
		return shm.SyncReader, nil
	}
	return 0, fmt.Errorf("--policy must be latest, single or sync, not %q", s)
}

func checksumPolicy(s string) (shm.ChecksumPolicy, error) {
	switch strings.ToLower(s) {
	case "none":
		return shm.ChecksumNone, nil
	case "manual":
		return shm.ChecksumManual, nil
	case "enforced":
		return shm.ChecksumEnforced, nil
	}
	return 0, fmt.Errorf("--checksum must be none, manual or enforced, not %q", s)
}

func schemaHash(s string) []byte {
	if s == "" {
		return nil
	}
	h := blake2b.Sum256([]byte(s))
	return h[:]
}

// node is one run.
type node struct {
	o   options
	log *slog.Logger
	ev  *event.Writer
	ctl *control
	agg *aggregator
	up  *aggregator // Bidir's consumer-to-producer direction (nil: none)
	m   *hub.Messenger
}

func (n *node) emit(kind string, f map[string]any) {
	if err := n.ev.Emit(kind, f); err != nil {
		n.log.Debug("event not written", "kind", kind, "err", err)
	}
}

func (n *node) fail(op string, err error) (int, string) {
	n.emit("error", map[string]any{"op": op, "error": err.Error()})
	n.log.Error("failed", "op", op, "err", err)
	return 1, "error"
}

func (n *node) emitExit(code int, reason string) {
	f := map[string]any{"code": code, "reason": reason}
	for _, a := range []*aggregator{n.agg, n.up} {
		if a == nil {
			continue
		}
		for k, v := range a.totals() {
			f[k] = v
		}
	}
	n.emit("exit", f)
}

// run connects the Messenger and runs the role.
func (n *node) run(ctx context.Context) (int, string) {
	if n.o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.o.duration)
		defer cancel()
	}
	m, err := hub.NewMessenger(hub.MessengerConfig{Logger: n.log, HeartbeatInterval: n.o.heartbeat, DiscoveryDir: n.o.discoveryDir})
	if err != nil {
		return n.fail("messenger", err)
	}
	defer m.Close()
	n.m = m
	if n.o.broker != "" {
		cctx, cancel := context.WithTimeout(ctx, n.o.connectTimeout)
		err = m.Connect(cctx, n.o.broker, n.o.brokerKey)
		cancel()
	}
	if err != nil {
		if ctx.Err() != nil {
			return n.stopped(ctx)
		}
		return n.fail("connect", err)
	}
	m.OnBrokerLost(func(error) { n.emit("broker_lost", map[string]any{"endpoint": n.o.broker}) })
	m.OnBrokerReconnected(func(k int) {
		n.emit("broker_reconnected", map[string]any{"endpoint": n.o.broker, "channels": k})
	})
	st, err := openStatus(n.o.statusFile)
	if err != nil {
		return n.fail("status_file", err)
	}
	n.agg = newAggregator(n, n.o.role == "producer", false, st)
	defer st.close()
	defer n.agg.stop()
	if n.o.pattern == string(hub.PatternBidir) || n.o.sendRate > 0 {
		n.up = newAggregator(n, n.o.role != "producer", true, nil)
		defer n.up.stop()
	}
	if n.o.statsInterval > 0 {
		sctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); n.statsLoop(sctx) }()
		defer func() { stop(); <-done }()
	}
	if n.o.role == "producer" {
		return n.runProducer(ctx)
	}
	return n.runConsumer(ctx)
}

// stopped maps the end of ctx to an exit: a deadline (--duration) is done, a
// cancellation (signal) is "signal"; both exit 0.
func (n *node) stopped(ctx context.Context) (int, string) {
	if errors.Is(context.Cause(ctx), context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return 0, "done"
	}
	return 0, "signal"
}

// Payload layout.
const (
	minPayload = 32
	offSeq     = 0
	offTime    = 8
	offFrom    = 16 // the writer's pid: its incarnation
	offPattern = 24
)

func patternByte(seq uint64, i int) byte { return byte(seq*131) ^ byte(i*7+1) }

func now() int64 { return proc.Now() }
