package main

import (
	"context"
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
	if err := fs.Parse(args); err != nil {
		return 2
	}
	dur := 8 * time.Second
	if *quick {
		dur = 4 * time.Second
	}
	srv, err := curve.GenerateKeyPair()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	type result struct{ oneway, rr float64 }
	var res [2]result
	for i, secure := range []bool{false, true} {
		name := map[bool]string{false: "NULL", true: "CURVE"}[secure]
		p, err := newBenchPair(secure, srv)
		if err != nil {
			fmt.Fprintf(os.Stderr, "curve bench %s: %v\n", name, err)
			return 1
		}
		res[i].oneway, err = p.oneWay(4096, dur)
		if err == nil {
			res[i].rr, err = p.roundTrips(64, dur/2)
		}
		p.close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "curve bench %s: %v\n", name, err)
			return 1
		}
		fmt.Printf("%-6s 4 KiB one-way %9.0f msg/s (%6.1f MB/s)   64 B round trips %8.0f /s\n",
			name, res[i].oneway, res[i].oneway*4096/1e6, res[i].rr)
	}
	fmt.Printf("CURVE/NULL: throughput %.2fx, round trips %.2fx\n", res[1].oneway/res[0].oneway, res[1].rr/res[0].rr)
	fmt.Printf("RESULT curve_4k_msgs=%.0f null_4k_msgs=%.0f curve_rr_per_s=%.0f null_rr_per_s=%.0f\n",
		res[1].oneway, res[0].oneway, res[1].rr, res[0].rr)
	return 0
}

type benchPair struct {
	cancel   context.CancelFunc
	router   zmq4.Socket
	dealer   zmq4.Socket
	releases []func() error
}

func newBenchPair(secure bool, srv curve.KeyPair) (*benchPair, error) {
	ctx, cancel := context.WithCancel(context.Background())
	p := &benchPair{cancel: cancel}
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
// the ROUTER received them at (after a short warm-up).
func (p *benchPair) oneWay(size int, d time.Duration) (float64, error) {
	var got atomic.Int64
	stop := make(chan struct{})
	recvDone := make(chan error, 1)
	go func() {
		for {
			if _, err := p.router.Recv(); err != nil {
				recvDone <- err
				return
			}
			got.Add(1)
			select {
			case <-stop:
				recvDone <- nil
				return
			default:
			}
		}
	}()
	sendDone := make(chan error, 1)
	go func() {
		msg := zmq4.NewMsg(make([]byte, size))
		for {
			select {
			case <-stop:
				sendDone <- nil
				return
			default:
			}
			if err := p.dealer.Send(msg); err != nil {
				sendDone <- err
				return
			}
		}
	}()
	time.Sleep(d / 8) // warm-up
	n0, t0 := got.Load(), time.Now()
	time.Sleep(d)
	n1, t1 := got.Load(), time.Now()
	close(stop)
	if err := <-sendDone; err != nil {
		return 0, err
	}
	// Unblock the receiver with one more message, then wait for it.
	_ = p.dealer.Send(zmq4.NewMsg([]byte("end")))
	if err := <-recvDone; err != nil {
		return 0, err
	}
	// Drain what is still queued so the next test starts clean.
	return float64(n1-n0) / t1.Sub(t0).Seconds(), p.drain()
}

// drain sends a marker and receives until it arrives.
func (p *benchPair) drain() error {
	if err := p.dealer.Send(zmq4.NewMsg([]byte("drain"))); err != nil {
		return err
	}
	for {
		m, err := p.router.Recv()
		if err != nil {
			return err
		}
		if len(m.Frames) == 2 && string(m.Frames[1]) == "drain" {
			return nil
		}
	}
}

// roundTrips measures size-byte request/reply pairs per second for d.
func (p *benchPair) roundTrips(size int, d time.Duration) (float64, error) {
	errc := make(chan error, 1)
	stop := make(chan struct{})
	go func() {
		for {
			m, err := p.router.Recv()
			if err != nil {
				errc <- err
				return
			}
			if err := p.router.Send(m); err != nil {
				errc <- err
				return
			}
			select {
			case <-stop:
				errc <- nil
				return
			default:
			}
		}
	}()
	msg := zmq4.NewMsg(make([]byte, size))
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		if err := p.dealer.Send(msg); err != nil {
			return 0, err
		}
		if _, err := p.dealer.Recv(); err != nil {
			return 0, err
		}
		n++
	}
	elapsed := time.Since(start)
	close(stop)
	if err := p.dealer.Send(msg); err != nil { // let the echo loop see stop
		return 0, err
	}
	if _, err := p.dealer.Recv(); err != nil {
		return 0, err
	}
	return float64(n) / elapsed.Seconds(), <-errc
}
