package hubrole

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/hubd"
	"github.com/pylabhub/plh/internal/event"
)

// options are the command-line flags of plh-hub.
type options struct {
	config, endpoint, name, logLevel string
	checksumPolicy                   string
	channelTimeout, consumerTimeout  time.Duration
	livenessInterval                 time.Duration
	curve, noCurve                   bool
	keysDir                          string
	shutdownDelay                    time.Duration
	control                          bool
	statsInterval                    time.Duration
	set                              map[string]bool
}

// Main runs plh-hub with args (without the program name) until ctx is cancelled.
// It returns the exit status: 0 after a graceful stop, 1 on a start-up error, 2
// on bad usage. With --control it answers control lines read from os.Stdin.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return MainIO(ctx, args, os.Stdin, stdout, stderr)
}

// MainIO is Main with the control input given (nil: no control lines).
func MainIO(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plh-hub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.config, "config", "", "JSON config file used instead of config_dir's hub.default.json/hub.user.json")
	fs.StringVar(&o.endpoint, "endpoint", "", "broker endpoint to bind (overrides hub.broker_endpoint)")
	fs.StringVar(&o.name, "name", "hub", "node name stamped on events")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug|info|warn|error")
	fs.DurationVar(&o.channelTimeout, "channel-timeout", 0, "close channels without heartbeat for this long (overrides broker.channel_timeout_s; negative disables)")
	fs.DurationVar(&o.consumerTimeout, "consumer-timeout", 0, "remove heartbeating consumers silent for this long (overrides broker.consumer_timeout_s; negative disables)")
	fs.DurationVar(&o.livenessInterval, "liveness-interval", 0, "/proc liveness sweep of unwatched consumers (overrides broker.consumer_liveness_check_s; negative disables)")
	fs.StringVar(&o.checksumPolicy, "checksum-repair-policy", "", "None|NotifyOnly|Repair: what the broker does with CHECKSUM_ERROR_REPORT (overrides broker.checksum_repair_policy; Repair rewrites slot hashes, see docs/operations.md)")
	fs.BoolVar(&o.curve, "curve", false, "serve the broker with CURVE (overrides broker.use_curve)")
	fs.BoolVar(&o.noCurve, "no-curve", false, "serve the broker without CURVE, NULL security (overrides broker.use_curve)")
	fs.StringVar(&o.keysDir, "keys-dir", "", "keep the CURVE server key pair in this directory (overrides security.curve_keys_dir)")
	fs.DurationVar(&o.shutdownDelay, "shutdown-delay", 0, "after the first SIGINT/SIGTERM keep serving this long before stopping (a second signal exits 1 at once)")
	fs.BoolVar(&o.control, "control", false, "answer JSON control lines on stdin: {\"cmd\":\"snapshot\"} (registry event), {\"cmd\":\"stats\"} (stats event)")
	fs.DurationVar(&o.statsInterval, "stats-interval", time.Second, "emit a stats event (goroutines, registry size) this often (0 = never)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	o.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	if o.curve && o.noCurve {
		fmt.Fprintln(stderr, "plh-hub: --curve and --no-curve are mutually exclusive")
		return 2
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintf(stderr, "plh-hub: --log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	events := event.NewWriter(stdout, o.name)
	code := run(ctx, o, stdin, log, events)
	reason := "signal"
	if code != 0 {
		reason = "error"
	}
	_ = events.Emit("exit", map[string]any{"code": code, "reason": reason})
	return code
}

func run(ctx context.Context, o options, stdin io.Reader, log *slog.Logger, events *event.Writer) int {
	cfg, err := hubd.LoadConfig(hubd.Sources{ExplicitFile: o.config, Logger: log})
	if err != nil {
		log.Error("plh-hub: configuration", "err", err)
		_ = events.Emit("error", map[string]any{"op": "config", "error": err.Error()})
		return 1
	}
	bc := cfg.BrokerConfig(log)
	if o.set["endpoint"] {
		bc.Endpoint = o.endpoint
	}
	if o.set["channel-timeout"] {
		bc.ChannelTimeout = orDisabled(o.channelTimeout)
	}
	if o.set["consumer-timeout"] {
		bc.ConsumerTimeout = orDisabled(o.consumerTimeout)
	}
	if o.set["liveness-interval"] {
		bc.LivenessInterval = orDisabled(o.livenessInterval)
	}
	if o.set["checksum-repair-policy"] {
		if err := checksumFlag(o.checksumPolicy, &bc); err != nil {
			log.Error("plh-hub: configuration", "err", err)
			_ = events.Emit("error", map[string]any{"op": "config", "error": err.Error()})
			return 1
		}
	}
	if err := configureCurve(cfg, o, &bc); err != nil {
		log.Error("plh-hub: configuration", "err", err)
		_ = events.Emit("error", map[string]any{"op": "config", "error": err.Error()})
		return 1
	}
	log.Info("plh-hub starting", "name", cfg.Hub.Name, "uid", cfg.Hub.UID, "broker_endpoint", bc.Endpoint,
		"admin_endpoint", cfg.Hub.AdminEndpoint, "config_dir", cfg.ConfigDir, "sources", cfg.Sources)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h, err := hubd.Start(ctx, hubd.Params{Config: cfg, Broker: bc, Logger: log, Shutdown: cancel})
	if err != nil {
		op := "start"
		var se *hubd.StartError
		if errors.As(err, &se) {
			op = se.Op
		}
		log.Error("plh-hub: "+op, "err", err)
		_ = events.Emit("error", map[string]any{"op": op, "error": err.Error()})
		return 1
	}
	defer h.Close()
	svc := h.Broker()
	fields := h.ReadyFields()
	fields["endpoint"], fields["pubkey"], fields["pid"] = svc.Endpoint(), svc.PublicKey(), os.Getpid()
	log.Info(fmt.Sprintf("broker ready at %s (pubkey=%s)", svc.Endpoint(), svc.PublicKey()))
	if err := events.Emit("ready", fields); err != nil {
		log.Warn("plh-hub: cannot write ready event", "err", err)
	}
	log.Info("running")
	if o.control && stdin != nil {
		// Ends with stdin (a blocked read cannot be interrupted) or the process.
		go readControl(ctx, stdin, svc, events, log)
	}
	var wg sync.WaitGroup
	if o.statsInterval > 0 {
		wg.Go(func() { statsLoop(ctx, o.statsInterval, svc, events, log) })
	}
	<-ctx.Done()
	wg.Wait()
	log.Info("plh-hub shutting down", "delay", o.shutdownDelay)
	if o.shutdownDelay > 0 {
		// Keep serving (clients can deregister); a second signal exits 1 now.
		t := time.NewTimer(o.shutdownDelay)
		<-t.C
	}
	return 0
}

func orDisabled(d time.Duration) time.Duration {
	if d < 0 {
		return -1
	}
	return d
}

// checksumFlag applies --checksum-repair-policy to bc.
func checksumFlag(name string, bc *broker.Config) error {
	switch name {
	case "None", "NotifyOnly", "Repair":
		bc.Checksum, bc.RepairSlot = hubd.ChecksumPolicy(name)
		return nil
	}
	return fmt.Errorf("%w: --checksum-repair-policy %q: want None, NotifyOnly or Repair", hubd.ErrConfig, name)
}
