package hub

import (
	"context"
	"testing"
	"time"
)

// TestBriefLinkDropIsNotProducerLost drops the consumer's real peer connection
// (Dealer.Reconnect closes the socket and redials; the producer stays up): the
// link comes back within the grace, the consumer says HELLO again, and the
// producer is not reported lost, neither at once nor after the grace ran out.
func TestBriefLinkDropIsNotProducerLost(t *testing.T) {
	s := startBroker(t)
	m := newMessenger(t, s)
	ctx := context.Background()
	joined := make(chan ConsumerIdentity, 4)
	p, err := NewProducer(ctx, m, ProducerOptions{Channel: chanName("lostdrop"),
		Callbacks: ProducerCallbacks{OnConsumerJoined: func(c ConsumerIdentity) { joined <- c }}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	const grace = 3 * time.Second // far above a loopback redial, even on a loaded machine
	lost := make(chan struct{}, 4)
	c, err := Connect(ctx, m, ConsumerOptions{Channel: p.Channel(), ProducerLostAfter: grace,
		Callbacks: ConsumerCallbacks{OnProducerLost: func() { lost <- struct{}{} }}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waitJoin := func(what string) {
		t.Helper()
		select {
		case <-joined:
		case <-time.After(10 * time.Second):
			t.Fatalf("no OnConsumerJoined %s", what)
		}
	}
	waitJoin("after Connect")
	dropped := time.Now()
	c.d.Reconnect()
	waitJoin("after the link came back (HELLO again)")
	if got := c.d.Stats().Redials; got != 1 {
		t.Fatalf("redials = %d, want 1 (the link was not dropped once)", got)
	}
	if c.ProducerLost() {
		t.Fatal("ProducerLost after a link drop that recovered within the grace")
	}
	// The grace armed at the drop must have been disarmed at the reconnect:
	// watch until well after it would have run out.
	select {
	case <-lost:
		t.Fatal("OnProducerLost after a link drop that recovered within the grace")
	case <-time.After(time.Until(dropped.Add(grace + 500*time.Millisecond))):
	}
	if c.ProducerLost() || c.ProducerGone() {
		t.Fatalf("ProducerLost=%v ProducerGone=%v, want both false", c.ProducerLost(), c.ProducerGone())
	}
}
