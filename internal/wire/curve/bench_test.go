package curve

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
)

// BenchmarkEcho4K measures 4 KiB request/echo round trips through the curve
// transport (zmq4 DEALER to ROUTER over loopback TCP): both data paths, sealing
// and opening, and the listener's connection wrapper.
func BenchmarkEcho4K(b *testing.B) {
	srv := mustKeys(b)
	addr := startRouter(b, ServerConfig{Keys: srv})
	d, err := dialDealer(b, addr, ClientConfig{ServerKey: srv.Public})
	if err != nil {
		b.Fatal(err)
	}
	msg := zmq4.NewMsg(make([]byte, 4096))
	b.SetBytes(2 * 4096)
	b.ResetTimer()
	for range b.N {
		if err := d.Send(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := d.Recv(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOneWay4K measures 4 KiB messages sent one way through the curve
// transport, the receiver reading as fast as it can.
func BenchmarkOneWay4K(b *testing.B) {
	srv := mustKeys(b)
	ep, err := ServerEndpoint("tcp://127.0.0.1:0", ServerConfig{Keys: srv})
	if err != nil {
		b.Fatal(err)
	}
	defer ep.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := zmq4.NewRouter(ctx, zmq4.WithTimeout(5*time.Second))
	defer r.Close()
	if err := r.Listen(ep.String()); err != nil {
		b.Fatal(err)
	}
	d, err := dialDealer(b, ep.BoundAddr(), ClientConfig{ServerKey: srv.Public})
	if err != nil {
		b.Fatal(err)
	}
	msg := zmq4.NewMsg(make([]byte, 4096))
	b.SetBytes(4096)
	b.ResetTimer()
	errc := make(chan error, 1)
	go func() {
		for range b.N {
			if _, err := r.Recv(); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for range b.N {
		if err := d.Send(msg); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSealOpen measures the message-phase crypto alone (one MESSAGE
// sealed and opened per op, XSalsa20-Poly1305 with the precomputed key) per
// payload size: the floor CURVE puts under the socket data path.
func BenchmarkSealOpen(b *testing.B) {
	for _, size := range []int{64, 4096, 65536} {
		b.Run(strconv.Itoa(size), func(b *testing.B) { benchSealOpen(b, size) })
	}
}

func benchSealOpen(b *testing.B, size int) {
	var shared [32]byte
	s := &session{sendPfx: prefixMsgC, recvPfx: prefixMsgC, shared: shared}
	plain := make([]byte, 1+size)
	var sealed, opened []byte
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for range b.N {
		var err error
		sealed, err = s.sealMessage(sealed[:0], plain)
		if err != nil {
			b.Fatal(err)
		}
		// sealMessage wrote a ZMTP header (2 or 9 bytes) before the MESSAGE body.
		hl := 2
		if sealed[0]&flagLong != 0 {
			hl = 9
		}
		opened, err = s.openMessage(opened[:0], sealed[hl:])
		if err != nil {
			b.Fatal(err)
		}
	}
}
