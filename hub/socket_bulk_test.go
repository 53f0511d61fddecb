package hub

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/pylabhub/plh/internal/wire"
)

// The bulk-data API over the socket, NULL and CURVE: messages sent by Send and
// SendFunc alternately (SendFunc's buffer is a previous message's, so fill
// writes every byte) and received by Recv and RecvFunc alternately arrive
// intact and in order; RecvFunc reads messages into buffers it lent out before
// (recycled), while every slice Recv returned stays the caller's: none is
// overwritten by the messages that come after it.
func TestSocketBulkAPI(t *testing.T) {
	for _, null := range []bool{true, false} {
		t.Run(map[bool]string{true: "NULL", false: "CURVE"}[null], func(t *testing.T) {
			s := startBroker(t)
			m := newMessenger(t, s)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			p, err := NewProducer(ctx, m, ProducerOptions{Channel: chanName("bulk"), Pattern: PatternPipeline, NoCurve: null})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			c, err := Connect(ctx, m, ConsumerOptions{Channel: p.Channel(), Window: 16})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			const n = 600
			sent := make(chan error, 1)
			go func() {
				for i := range n {
					var err error
					if i%2 == 0 {
						err = p.Send(ctx, bulkBody(i))
					} else {
						err = p.SendFunc(ctx, bulkLen(i), func(b []byte) error { fillBulk(b, i); return nil })
					}
					if err != nil {
						sent <- err
						return
					}
				}
				sent <- nil
			}()
			var kept [][]byte // Recv's results, checked again at the end
			seen := map[*byte]bool{}
			recycled := 0
			for i := range n {
				if i%3 == 0 {
					b, err := c.Recv(ctx)
					if err != nil {
						t.Fatal(err)
					}
					checkBulk(t, b, i)
					kept = append(kept, b)
					continue
				}
				err := c.RecvFunc(ctx, func(b []byte) error {
					checkBulk(t, b, i)
					if seen[&b[0]] {
						recycled++
					}
					seen[&b[0]] = true
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
			for k, b := range kept {
				checkBulk(t, b, 3*k)
			}
			if recycled == 0 {
				t.Fatalf("RecvFunc never got a buffer it had lent before (%d buffers for %d messages)", len(seen), 2*n/3)
			}
		})
	}
}

// RecvFunc returns fn's error (the message still counts as consumed: the next
// call gets the next one) and, when ctx ends first, ctx's error without
// calling fn. SendFunc sends nothing when fill fails, refuses a length over
// MaxFrame before calling fill, and refuses Bidir like Send.
func TestSocketBulkAPIErrors(t *testing.T) {
	s := startBroker(t)
	m := newMessenger(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := NewProducer(ctx, m, ProducerOptions{Channel: chanName("bulkerr"), Pattern: PatternPipeline, NoCurve: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := Connect(ctx, m, ConsumerOptions{Channel: p.Channel(), Window: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	errFill := errors.New("fill failed")
	if err := p.SendFunc(ctx, 100, func([]byte) error { return errFill }); !errors.Is(err, errFill) {
		t.Fatalf("SendFunc with a failing fill: %v", err)
	}
	called := false
	if err := p.SendFunc(ctx, maxFrameOf(wire.Config{})+1, func([]byte) error { called = true; return nil }); !errors.Is(err, wire.ErrTooLarge) || called {
		t.Fatalf("SendFunc over MaxFrame: %v (fill called: %v)", err, called)
	}
	if err := p.SendFunc(ctx, -1, func([]byte) error { called = true; return nil }); !errors.Is(err, wire.ErrTooLarge) || called {
		t.Fatalf("SendFunc of a negative length: %v (fill called: %v)", err, called)
	}
	for i := range 2 {
		if err := p.SendFunc(ctx, bulkLen(i), func(b []byte) error { fillBulk(b, i); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	errUser := errors.New("user says no")
	if err := c.RecvFunc(ctx, func(b []byte) error { checkBulk(t, b, 0); return errUser }); !errors.Is(err, errUser) {
		t.Fatalf("RecvFunc returned %v, want the callback's error", err)
	}
	if err := c.RecvFunc(ctx, func(b []byte) error { checkBulk(t, b, 1); return nil }); err != nil {
		t.Fatal(err)
	}
	short, stop := context.WithTimeout(ctx, 50*time.Millisecond)
	defer stop()
	called = false
	if err := c.RecvFunc(short, func([]byte) error { called = true; return nil }); !errors.Is(err, context.DeadlineExceeded) || called {
		t.Fatalf("RecvFunc with nothing to read: %v (fn called: %v)", err, called)
	}
	b, err := NewProducer(ctx, m, ProducerOptions{Channel: chanName("bulkbidir"), Pattern: PatternBidir, NoCurve: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.SendFunc(ctx, 10, func([]byte) error { return nil }); !errors.Is(err, ErrWrongPattern) {
		t.Fatalf("SendFunc on Bidir: %v", err)
	}
}

// bulkLen is message i's length: 65 bytes to about 70 KiB (above 64 bytes every
// body has storage of its own; large ones are read straight from the network).
func bulkLen(i int) int { return 65 + (i*7919)%70000 }

func bulkBody(i int) []byte {
	b := make([]byte, bulkLen(i))
	fillBulk(b, i)
	return b
}

// fillBulk writes every byte of message i.
func fillBulk(b []byte, i int) {
	for k := range b {
		b[k] = byte(i*13 + k*7)
	}
	binary.BigEndian.PutUint32(b, uint32(i))
}

// checkBulk fails t unless b is message i, every byte.
func checkBulk(t *testing.T, b []byte, i int) {
	t.Helper()
	if len(b) != bulkLen(i) {
		t.Fatalf("message %d: %d bytes, want %d", i, len(b), bulkLen(i))
	}
	want := make([]byte, len(b))
	fillBulk(want, i)
	if string(want) != string(b) {
		t.Fatalf("message %d corrupted (starts with index %d)", i, binary.BigEndian.Uint32(b))
	}
}
