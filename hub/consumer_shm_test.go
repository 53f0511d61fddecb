package hub

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pylabhub/plh/shm"
)

// A read transaction waiting for a slot ends as soon as its attachment's context
// is cancelled (the first step of a producer restart), though the ring's wait
// only polls Err; the transaction's Context is done then as well, and a Context
// kept past the transaction is done once it is over.
func TestReadTxnEndsWithAttachment(t *testing.T) {
	s := startBroker(t)
	m := newMessenger(t, s)
	p, err := NewProducer(context.Background(), m, ProducerOptions{Channel: chanName("txnctx"), NoCurve: true,
		SHM: ringConfig(shm.SingleReader, shm.ChecksumNone)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := Connect(context.Background(), m, ConsumerOptions{Channel: p.Channel(), Secret: ringSecret})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.HasSHM() {
		t.Fatalf("not attached: %v", c.SHMError())
	}

	// Over: a Context taken inside a transaction is done once it returns.
	var kept context.Context
	writeOne(t, p)
	if err := c.Pull(context.Background(), 5*time.Second, func(tx *ReadTxn) error {
		kept = tx.Context()
		_, err := tx.Next()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if kept.Err() == nil {
		t.Fatal("the Context of a finished transaction is not done")
	}

	// Waiting: nothing is written; the slot timeout is far beyond the bound below.
	waiting, ctxDone, pulled := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		pulled <- c.Pull(context.Background(), time.Minute, func(tx *ReadTxn) error {
			ctx := tx.Context()
			go func() { <-ctx.Done(); close(ctxDone) }()
			close(waiting)
			_, err := tx.Next()
			return err
		})
	}()
	<-waiting
	c.ringReader.gen.Load().cancel()
	select {
	case err := <-pulled:
		if !errors.Is(err, ErrNoSlot) {
			t.Fatalf("Pull returned %v, want ErrNoSlot", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a waiting read transaction did not end when its attachment's context was cancelled")
	}
	select {
	case <-ctxDone:
	case <-time.After(20 * time.Second):
		t.Fatal("the transaction's Context was not done")
	}
}
