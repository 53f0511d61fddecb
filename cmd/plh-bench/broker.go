package main

// plh-bench broker: the broker and the Messenger, in-process, over loopback TCP.
//
//   - regdisc: request/reply round trips per second through hub.Messenger and
//     broker.Service (alternating REG_REQ and DISC_REQ, each one round trip),
//     against a bare zmq4 ROUTER/DEALER echo of messages of the same size and
//     frame layout. Both sides run with the same number of concurrent callers
//     (1, and --callers).
//   - died: SIGKILL of a consumer process (this binary re-executed with
//     --consumer-child) → CONSUMER_DIED_NOTIFY at the producer's Messenger.
//   - silent: a broker that stops answering (a scripted ROUTER that keeps the
//     connection open, like a paused process) → OnBrokerLost, measured from its
//     last reply.
//   - reregister: a Messenger owning 100 channels; the broker is closed and
//     started again on the same port; time from the new broker being up to
//     OnBrokerReconnected (all 100 channels registered again).
//   - scale: registry size, CHANNEL_LIST, liveness sweep and half-open
//     connections against a hub process (broker_scale.go).

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/internal/wire"
)

func init() { register("broker", runBroker) }

func runBroker(args []string) int {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "short run (≤ 60 s)")
	callers := fs.Int("callers", 8, "concurrent callers of the second throughput run")
	child := fs.Bool("consumer-child", false, "internal: run as the consumer process (ENDPOINT CHANNEL)")
	hubChildFlag := fs.Bool("hub-child", false, "internal: run as the hub process of the scale row (plh-hub's arguments)")
	scaleOnly := fs.Bool("scale-only", false, "run only the scale row (its RESULT line has only its fields)")
	prof := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	fs.BoolVar(&benchNull, "null", false, "NULL security instead of CURVE (the default configuration)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *hubChildFlag {
		return hubChild(fs.Args())
	}
	if *child {
		if err := consumerChild(fs.Args()); err != nil {
			fmt.Fprintln(os.Stderr, "broker consumer child:", err)
			return 1
		}
		return 0
	}
	stop, err := startCPUProfile(*prof)
	if err != nil {
		fmt.Fprintln(os.Stderr, "broker:", err)
		return 1
	}
	defer stop()
	bench := brokerBench
	if *scaleOnly {
		bench = func(quick bool, _ int) error {
			res, err := scaleBench(quick)
			if err == nil {
				fmt.Printf("\nRESULT %s\n", res.fields())
			}
			return err
		}
	}
	if err := bench(*quick, *callers); err != nil {
		fmt.Fprintln(os.Stderr, "broker:", err)
		return 1
	}
	return 0
}

func brokerBench(quick bool, callers int) error {
	dur, kills, restarts := 5*time.Second, 50, 10
	if quick {
		dur, kills, restarts = 2*time.Second, 20, 5
	}
	fmt.Printf("plh-bench broker (quick=%v): loopback TCP, broker in-process, %s security\n\n", quick, securityName())

	size := requestSize()
	fmt.Printf("%-40s %10s %10s %10s %7s\n", "round trips/s (payload ≈ "+fmt.Sprint(size)+" B)", "plh", "wire echo", "bare zmq4", "ratio")
	var regdisc1, zmq1 float64
	for _, n := range []int{1, callers} {
		rd, err := regDiscRate(dur, n)
		if err != nil {
			return fmt.Errorf("regdisc: %w", err)
		}
		zr, err := zmqEchoRate(dur, n, size)
		if err != nil {
			return fmt.Errorf("zmq echo: %w", err)
		}
		wr, err := wireEchoRate(dur, n, size)
		if err != nil {
			return fmt.Errorf("wire echo: %w", err)
		}
		if n == 1 {
			regdisc1, zmq1 = rd, zr
		}
		fmt.Printf("%-40s %10.0f %10.0f %10.0f %6.2fx\n", fmt.Sprintf("REG+DISC via Messenger, %d caller(s)", n), rd, wr, zr, rd/zr)
	}
	if !benchNull {
		benchNull = true
		rd, err := regDiscRate(dur, 1)
		benchNull = false
		if err != nil {
			return fmt.Errorf("regdisc over NULL: %w", err)
		}
		fmt.Printf("%-40s %10.0f (for comparison; CURVE/NULL %.2fx)\n", "REG+DISC via Messenger, 1 caller, NULL", rd, regdisc1/rd)
	}

	died, err := consumerDeaths(kills)
	if err != nil {
		return fmt.Errorf("died: %w", err)
	}
	fmt.Printf("\nSIGKILL consumer → CONSUMER_DIED_NOTIFY (%d kills): p50 %.2f ms  p99 %.2f ms  max %.2f ms\n",
		len(died), pct(died, 50), pct(died, 99), pct(died, 100))

	rr, err := reregister(restarts, 100)
	if err != nil {
		return fmt.Errorf("reregister: %w", err)
	}
	fmt.Printf("broker restart → 100 channels registered again (%d restarts): p50 %.1f ms  max %.1f ms\n",
		len(rr), pct(rr, 50), pct(rr, 100))

	silent, err := silentBroker(5, 200*time.Millisecond)
	if err != nil {
		return fmt.Errorf("silent broker: %w", err)
	}
	fmt.Printf("broker falls silent → OnBrokerLost, heartbeat period 200 ms, LostAfter 2 periods (%d runs): p50 %.0f ms  max %.0f ms (B-2: ≈ 2 periods)\n",
		len(silent), pct(silent, 50), pct(silent, 100))

	scale, err := scaleBench(quick)
	if err != nil {
		return fmt.Errorf("scale: %w", err)
	}
	fmt.Printf("\nRESULT regdisc_per_s=%.0f zmq_rr_per_s=%.0f died_p99_ms=%.2f reregister_ms=%.1f %s\n",
		regdisc1, zmq1, pct(died, 99), pct(rr, 100), scale.fields())
	return nil
}

// pct returns the p-th percentile (nearest rank) of ms values; 100 = max.
func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func startBenchBroker(endpoint string) (*broker.Service, error) {
	cc, err := benchCurve()
	if err != nil {
		return nil, err
	}
	b, err := broker.Start(context.Background(), broker.Config{
		Endpoint: endpoint, ChannelTimeout: time.Minute, Logger: quietLogger(), Curve: cc,
	})
	if err != nil {
		return nil, err
	}
	benchBrokerKeys.Store(b.Endpoint(), b.PublicKey())
	return b, nil
}

func connectMessenger(endpoint string, cfg hub.MessengerConfig) (*hub.Messenger, error) {
	cfg.Logger = quietLogger()
	m, err := hub.NewMessenger(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Connect(ctx, endpoint, benchKeyOf(endpoint)); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// benchInfo is the registration used by the throughput run: realistic field sizes.
func benchInfo(ch string) hub.ProducerInfo {
	return hub.ProducerInfo{
		ShmName: ch, SchemaHash: make([]byte, 32), SchemaVersion: 1, HasSharedMemory: true,
		Pattern: hub.PatternPubSub, CtrlEndpoint: "tcp://127.0.0.1:41235", DataEndpoint: "tcp://127.0.0.1:41236",
	}
}

// requestSize is the mean JSON body size of the REG_REQ and DISC_REQ sent by the
// throughput run (stamped as the Messenger stamps them).
func requestSize() int {
	ch := "plh_bench_00"
	info := benchInfo(ch)
	reg := &proto.RegReq{ChannelName: ch, ShmName: info.ShmName, SchemaHash: fmt.Sprintf("%064x", 0), SchemaVersion: 1,
		ProducerPID: uint64(os.Getpid()), HasSharedMemory: true, ChannelPattern: "PubSub",
		ZmqCtrlEndpoint: info.CtrlEndpoint, ZmqDataEndpoint: info.DataEndpoint, ProducerStartTime: 123456789}
	disc := &proto.DiscReq{ChannelName: ch}
	proto.Stamp(reg, "0123abcd-123456")
	proto.Stamp(disc, "0123abcd-123457")
	a, _ := json.Marshal(reg)
	b, _ := json.Marshal(disc)
	return (len(a) + len(b)) / 2
}

// regDiscRate measures round trips per second through the Messenger: n callers,
// each alternating RegisterProducer (a re-registration, same schema) and
// Discover of its own channel.
func regDiscRate(dur time.Duration, n int) (float64, error) {
	b, err := startBenchBroker("tcp://127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer b.Close()
	m, err := connectMessenger(b.Endpoint(), hub.MessengerConfig{})
	if err != nil {
		return 0, err
	}
	defer m.Close()
	ctx := context.Background()
	return roundTripRate(dur, n, func(i int) func(k int) error {
		ch := fmt.Sprintf("plh_bench_%02d", i)
		info := benchInfo(ch)
		return func(k int) error {
			if k%2 == 0 {
				return m.RegisterProducer(ctx, ch, info)
			}
			_, err := m.Discover(ctx, ch)
			return err
		}
	})
}

// roundTripRate runs n callers for a 200 ms warm-up plus dur; caller i runs
// newOp(i)(k) for k = 0, 1, … until the time is up. It returns the round trips
// per second after the warm-up, or the first error of any caller.
func roundTripRate(dur time.Duration, n int, newOp func(i int) func(k int) error) (float64, error) {
	var measured atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	warm := 200 * time.Millisecond
	start := time.Now()
	end := start.Add(warm + dur)
	for i := range n {
		op := newOp(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				now := time.Now()
				if now.After(end) {
					return
				}
				if err := op(k); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				if now.Sub(start) >= warm {
					measured.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	return float64(measured.Load()) / dur.Seconds(), nil
}

// zmqEchoRate measures round trips per second of a bare zmq4 DEALER → ROUTER
// echo with n concurrent DEALERs, each sending ['C'][type][body] of size bytes
// and waiting for the echo. Raw zmq4 on purpose (this is the baseline), so it
// lives only here; the product opens sockets only through internal/wire.
func zmqEchoRate(dur time.Duration, n, size int) (float64, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	router := zmq4.NewRouter(ctx, zmq4.WithTimeout(2*time.Second))
	defer router.Close()
	if err := router.Listen("tcp://127.0.0.1:0"); err != nil {
		return 0, err
	}
	ep := "tcp://" + router.Addr().String()
	go func() {
		for {
			msg, err := router.Recv()
			if err != nil {
				return
			}
			if err := router.Send(msg); err != nil {
				return
			}
		}
	}()
	body := make([]byte, size)
	for i := range body {
		body[i] = 'x'
	}
	dealers := make([]zmq4.Socket, n)
	for i := range n {
		d := zmq4.NewDealer(ctx, zmq4.WithTimeout(2*time.Second), zmq4.WithID(zmq4.SocketIdentity(fmt.Sprintf("d%04d", i))))
		if err := d.Dial(ep); err != nil {
			return 0, err
		}
		dealers[i] = d
	}
	defer func() {
		for _, d := range dealers {
			d.Close()
		}
	}()
	return roundTripRate(dur, n, func(i int) func(int) error {
		d := dealers[i]
		return func(int) error {
			if err := d.Send(zmq4.NewMsgFrom([]byte{'C'}, []byte("DISC_REQ"), body)); err != nil {
				return err
			}
			_, err := d.Recv()
			return err
		}
	})
}

// wireEchoRate is zmqEchoRate through internal/wire (what the broker and the
// Messenger stand on), for reference: it shows what the wire layer costs.
func wireEchoRate(dur time.Duration, n, size int) (float64, error) {
	r, err := wire.Listen(wire.Config{Logger: quietLogger()}, "tcp://127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			msg, err := r.Recv(ctx)
			if err != nil {
				return
			}
			_ = r.Send(msg.Peer, msg.Frames...)
		}
	}()
	dealers := make([]*wire.Dealer, n)
	for i := range n {
		d, err := wire.Dial(ctx, wire.Config{Logger: quietLogger()}, r.Endpoint())
		if err != nil {
			return 0, err
		}
		defer d.Close()
		dealers[i] = d
	}
	body := make([]byte, size)
	return roundTripRate(dur, n, func(i int) func(int) error {
		d := dealers[i]
		return func(int) error {
			if err := d.Send([]byte{'C'}, []byte("DISC_REQ"), body); err != nil {
				return err
			}
			_, err := d.Recv(ctx)
			return err
		}
	})
}

// consumerDeaths starts a consumer process kills times, SIGKILLs it once it is
// registered, and returns the delay to OnConsumerDied at the producer, in ms.
func consumerDeaths(kills int) ([]float64, error) {
	b, err := startBenchBroker("tcp://127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer b.Close()
	m, err := connectMessenger(b.Endpoint(), hub.MessengerConfig{})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	ch := fmt.Sprintf("plh_bench_died_%d", os.Getpid())
	if err := m.RegisterProducer(context.Background(), ch, hub.ProducerInfo{}); err != nil {
		return nil, err
	}
	deaths := make(chan uint64, 4)
	m.OnConsumerDied(ch, func(pid uint64, _ string) {
		deaths <- pid
	})
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var out []float64
	for range kills {
		cmd := exec.Command(exe, "broker", "--consumer-child", b.Endpoint(), ch)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		cmd.Env = append(os.Environ(), benchKeyEnv+"="+b.PublicKey())
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || line != "registered\n" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, fmt.Errorf("consumer child did not register (%q): %v", line, err)
		}
		t0 := time.Now()
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			return nil, err
		}
		select {
		case pid := <-deaths:
			el := time.Since(t0)
			if pid != uint64(cmd.Process.Pid) {
				return nil, fmt.Errorf("death reported for pid %d, killed %d", pid, cmd.Process.Pid)
			}
			out = append(out, float64(el.Microseconds())/1000)
		case <-time.After(15 * time.Second):
			_ = cmd.Wait()
			return nil, fmt.Errorf("no CONSUMER_DIED_NOTIFY for pid %d within 15 s", cmd.Process.Pid)
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
	}
	return out, nil
}

// consumerChild registers as a consumer of CHANNEL at ENDPOINT, says
// "registered" on stdout, and waits to be killed.
func consumerChild(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("want ENDPOINT CHANNEL, got %q", args)
	}
	m, err := connectMessenger(args[0], hub.MessengerConfig{})
	if err != nil {
		return err
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.RegisterConsumer(ctx, args[1]); err != nil {
		return err
	}
	fmt.Println("registered")
	sig, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	<-sig.Done()
	return nil
}

// reregister restarts the broker under a Messenger owning channels channels and
// returns, per restart, the ms from the new broker being up to
// OnBrokerReconnected.
func reregister(restarts, channels int) ([]float64, error) {
	b, err := startBenchBroker("tcp://127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ep := b.Endpoint()
	defer func() { b.Close() }()
	m, err := connectMessenger(ep, hub.MessengerConfig{HeartbeatInterval: 500 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	for i := range channels {
		ch := fmt.Sprintf("plh_bench_rr_%03d", i)
		if err := m.RegisterProducer(context.Background(), ch, benchInfo(ch)); err != nil {
			return nil, err
		}
	}
	lost := make(chan struct{}, 1)
	back := make(chan int, 1)
	m.OnBrokerLost(func(error) { lost <- struct{}{} })
	m.OnBrokerReconnected(func(n int) { back <- n })
	var out []float64
	for range restarts {
		b.Close()
		select {
		case <-lost:
		case <-time.After(10 * time.Second):
			return nil, fmt.Errorf("broker loss not reported within 10 s")
		}
		b, err = startBenchBroker(ep)
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		select {
		case n := <-back:
			el := time.Since(t0)
			if n != channels {
				return nil, fmt.Errorf("%d channels registered again, want %d", n, channels)
			}
			if got := b.Stats().Channels; got != channels {
				return nil, fmt.Errorf("new broker holds %d channels, want %d", got, channels)
			}
			out = append(out, float64(el.Microseconds())/1000)
		case <-time.After(15 * time.Second):
			return nil, fmt.Errorf("not reconnected within 15 s")
		}
	}
	return out, nil
}

// silentBroker measures, runs times, the delay from a broker's last reply to
// OnBrokerLost when it stops answering but keeps its connection (a paused
// process). The broker is a raw wire ROUTER answering PING_REQ until told to stop.
func silentBroker(runs int, period time.Duration) ([]float64, error) {
	var out []float64
	for range runs {
		ms, err := silentOnce(period)
		if err != nil {
			return nil, err
		}
		out = append(out, ms)
	}
	return out, nil
}

func silentOnce(period time.Duration) (float64, error) {
	r, err := wire.Listen(wire.Config{Logger: quietLogger()}, "tcp://127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var answering atomic.Bool
	answering.Store(true)
	var last atomic.Int64 // UnixNano of the last reply
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			msg, err := r.Recv(ctx)
			if err != nil {
				return
			}
			m, err := proto.DecodeFrames(msg.Frames)
			if err != nil || !answering.Load() {
				continue
			}
			if q, ok := m.(*proto.PingReq); ok {
				frames, _ := proto.Encode(&proto.PingAck{ReplyHeader: proto.Success(q.CorrelationID, "")})
				last.Store(time.Now().UnixNano())
				_ = r.Send(msg.Peer, frames...)
			}
		}
	}()
	defer func() { cancel(); <-done }()
	// LostAfter set to B-2's 2 periods: its default (max(2 x PingInterval,
	// RequestTimeout) = 5 s) keeps a merely slow link from counting as lost.
	m, err := connectMessenger(r.Endpoint(), hub.MessengerConfig{HeartbeatInterval: period, LostAfter: 2 * period})
	if err != nil {
		return 0, err
	}
	defer m.Close()
	lost := make(chan time.Time, 1)
	m.OnBrokerLost(func(error) { lost <- time.Now() })
	// Let a few pings be answered, then fall silent.
	time.Sleep(3 * period)
	answering.Store(false)
	select {
	case t := <-lost:
		return float64(t.UnixNano()-last.Load()) / 1e6, nil
	case <-time.After(10 * period):
		return 0, fmt.Errorf("silent broker not reported lost within %v", 10*period)
	}
}
