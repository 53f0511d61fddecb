package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/pylabhub/plh/internal/wire/curve"
)

func init() { register("curve", runCurve) }

// runCurve compares CURVE with NULL over the same zmq4 DEALER→ROUTER pair on
// loopback TCP: 4 KiB one-way throughput and 64 B round trips.
func runCurve(args []string) int {
	fs := flag.NewFlagSet("curve", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "short runs (about 20 s in all)")
	prof := fs.String("cpuprofile", "", "write a CPU profile to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	stop, err := startCPUProfile(*prof)
	if err != nil {
		fmt.Fprintln(os.Stderr, "curve:", err)
		return 1
	}
	defer stop()
	dur := 8 * time.Second
	if *quick {
		dur = 4 * time.Second
	}
	srv, err := curve.GenerateKeyPair()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	type result struct{ oneway, cpu, rr float64 }
	var res [2]result
	for i, secure := range []bool{false, true} {
		name := map[bool]string{false: "NULL", true: "CURVE"}[secure]
		p, err := newBenchPair(secure, srv)
		if err != nil {
			fmt.Fprintf(os.Stderr, "curve bench %s: %v\n", name, err)
			return 1
		}
		res[i].oneway, res[i].cpu, err = p.oneWay(4096, dur)
		if err == nil {
			res[i].rr, err = p.roundTrips(64, dur/2)
		}
		p.close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "curve bench %s: %v\n", name, err)
			return 1
		}
		fmt.Printf("%-6s 4 KiB one-way %9.0f msg/s (%6.1f MB/s, %6.0f CPU ns/msg)   64 B round trips %8.0f /s\n",
			name, res[i].oneway, res[i].oneway*4096/1e6, res[i].cpu, res[i].rr)
	}
	ratio("curve 4 KiB one-way msg/s, CURVE/NULL", res[1].oneway/res[0].oneway, noRatio, 0)
	ratio("curve 64 B round trips/s, CURVE/NULL", res[1].rr/res[0].rr, noRatio, 0)
	fmt.Printf("RESULT curve_4k_msgs=%.0f null_4k_msgs=%.0f curve_rr_per_s=%.0f null_rr_per_s=%.0f\n",
		res[1].oneway, res[0].oneway, res[1].rr, res[0].rr)
	return 0
}

// benchPair is a DEALER → ROUTER pair. Any failure of either side (fail) ends
// every blocked Send and Recv of the pair at once (their context is cancelled), so
// a measurement ends promptly with the first error, never at a timeout.
type benchPair struct {
	cancel   context.CancelFunc
	router   zmq4.Socket
	dealer   zmq4.Socket
	releases []func() error
	failure  atomic.Pointer[error]
	echo     func(zmq4.Msg) error // the echo side's reply (nil: router.Send)
	done     <-chan struct{}      // closed when the pair fails or closes
}

// benchStall is how long a measurement may go without a message before it fails.
var benchStall = 10 * time.Second

// fail records the first failure and unblocks everything waiting on the pair.
func (p *benchPair) fail(err error) {
	if p.failure.CompareAndSwap(nil, &err) {
		p.cancel()
	}
}

// cause returns the first failure, or err when there was none.
func (p *benchPair) cause(err error) error {
	if f := p.failure.Load(); f != nil {
		return *f
	}
	return err
}

// pause waits d, or returns the failure that ends the pair first.
func (p *benchPair) pause(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-p.done:
		return p.cause(errors.New("benchmark pair closed"))
	}
}

// watchdog fails the pair when progress stops moving for benchStall; the
// returned func ends the watch.
func (p *benchPair) watchdog(progress *atomic.Int64) (stop func()) {
	quit := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		tick := time.NewTicker(benchStall / 10)
		defer tick.Stop()
		last, since := progress.Load(), time.Now()
		for {
			select {
			case <-quit:
				return
			case <-p.done:
				return
			case now := <-tick.C:
				if v := progress.Load(); v != last {
					last, since = v, now
				} else if now.Sub(since) >= benchStall {
					p.fail(fmt.Errorf("no message moved for %v", benchStall))
					return
				}
			}
		}
	}()
	return func() { close(quit); <-exited }
}

func newBenchPair(secure bool, srv curve.KeyPair) (*benchPair, error) {
	ctx, cancel := context.WithCancel(context.Background())
	p := &benchPair{cancel: cancel, done: ctx.Done()}
	p.router = zmq4.NewRouter(ctx, zmq4.WithTimeout(5*time.Second))
	p.dealer = zmq4.NewDealer(ctx, zmq4.WithTimeout(5*time.Second), zmq4.WithDialerMaxRetries(0))
	listen, dial := "tcp://127.0.0.1:0", ""
	var sep *curve.Endpoint
	if secure {
		var err error
		if sep, err = curve.ServerEndpoint(listen, curve.ServerConfig{Keys: srv}); err != nil {
			p.close()
			return nil, err
		}
		p.releases = append(p.releases, sep.Close)
		listen = sep.String()
	}
	if err := p.router.Listen(listen); err != nil {
		p.close()
		return nil, err
	}
	dial = "tcp://" + p.router.Addr().String()
	if secure {
		cep, err := curve.ClientEndpoint(sep.BoundAddr(), curve.ClientConfig{ServerKey: srv.Public})
		if err != nil {
			p.close()
			return nil, err
		}
		p.releases = append(p.releases, cep.Close)
		dial = cep.String()
	}
	if err := p.dealer.Dial(dial); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func (p *benchPair) close() {
	p.cancel()
	_ = p.dealer.Close()
	_ = p.router.Close()
	for _, r := range p.releases {
		_ = r()
	}
}

// oneWay streams size-byte messages DEALER→ROUTER for d and returns the rate
// the ROUTER received them at (after a short warm-up) and the CPU time per
// message of both sides (this process) over the same window.
func (p *benchPair) oneWay(size int, d time.Duration) (rate, cpuNs float64, err error) {
	var got atomic.Int64
	stop := make(chan struct{})
	recvDone, sendDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(recvDone)
		for {
			if _, err := p.router.Recv(); err != nil {
				p.fail(fmt.Errorf("ROUTER recv: %w", err))
				return
			}
			got.Add(1)
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	go func() {
		defer close(sendDone)
		msg := zmq4.NewMsg(make([]byte, size))
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := p.dealer.Send(msg); err != nil {
				p.fail(fmt.Errorf("DEALER send: %w", err))
				return
			}
		}
	}()
	unwatch := p.watchdog(&got)
	defer unwatch()
	if err := p.pause(d / 8); err != nil { // warm-up
		close(stop)
		return 0, 0, err
	}
	n0, t0, c0 := got.Load(), time.Now(), processCPU()
	err = p.pause(d)
	n1, t1, c1 := got.Load(), time.Now(), processCPU()
	close(stop)
	<-sendDone
	if err == nil { // unblock the receiver with one more message
		if serr := p.dealer.Send(zmq4.NewMsg([]byte("end"))); serr != nil {
			p.fail(fmt.Errorf("DEALER send: %w", serr))
		}
	}
	<-recvDone
	if err := p.cause(nil); err != nil {
		return 0, 0, err
	}
	n := float64(n1 - n0)
	// Drain what is still queued so the next test starts clean.
	return n / t1.Sub(t0).Seconds(), float64(c1-c0) / n, p.drain(&got)
}

// drain sends a marker and receives until it arrives.
func (p *benchPair) drain(progress *atomic.Int64) error {
	if err := p.dealer.Send(zmq4.NewMsg([]byte("drain"))); err != nil {
		return p.cause(err)
	}
	for {
		m, err := p.router.Recv()
		if err != nil {
			return p.cause(err)
		}
		progress.Add(1)
		if len(m.Frames) == 2 && string(m.Frames[1]) == "drain" {
			return nil
		}
	}
}

// roundTrips measures size-byte request/reply pairs per second for d. The echo
// goroutine's failure ends the caller's blocked Recv at once (fail).
func (p *benchPair) roundTrips(size int, d time.Duration) (float64, error) {
	var moved atomic.Int64
	echoDone := make(chan struct{})
	go func() {
		defer close(echoDone)
		for {
			m, err := p.router.Recv()
			if err != nil {
				p.fail(fmt.Errorf("echo recv: %w", err))
				return
			}
			if len(m.Frames) == 2 && string(m.Frames[1]) == "stop" {
				return
			}
			reply := p.router.Send
			if p.echo != nil {
				reply = p.echo
			}
			if err := reply(m); err != nil {
				p.fail(fmt.Errorf("echo send: %w", err))
				return
			}
		}
	}()
	unwatch := p.watchdog(&moved)
	defer unwatch()
	msg := zmq4.NewMsg(make([]byte, size))
	n := 0
	start := time.Now()
	var err error
	for time.Since(start) < d {
		if err = p.dealer.Send(msg); err != nil {
			break
		}
		if _, err = p.dealer.Recv(); err != nil {
			break
		}
		n++
		moved.Add(1)
	}
	elapsed := time.Since(start)
	if err == nil {
		err = p.dealer.Send(zmq4.NewMsg([]byte("stop")))
	}
	if err != nil {
		p.fail(err)
	}
	<-echoDone
	if err := p.cause(nil); err != nil {
		return 0, err
	}
	return float64(n) / elapsed.Seconds(), nil
}
