package main

import (
	"errors"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/pylabhub/plh/internal/wire/curve"
)

// A peer that fails ends the measurement at once with its error: the echo side
// cannot reply (as when its Send times out under load) while the connection stays
// up and the DEALER waits for the reply.
func TestRoundTripsEndsWhenEchoFails(t *testing.T) {
	kp, err := curve.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	p, err := newBenchPair(false, kp)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	echoErr := errors.New("echo refused")
	p.echo = func(zmq4.Msg) error { return echoErr }
	done := make(chan error, 1)
	go func() {
		_, err := p.roundTrips(64, time.Minute)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, echoErr) {
			t.Fatalf("roundTrips: %v, want the echo side's error", err)
		}
		t.Logf("roundTrips: %v", err)
	case <-time.After(benchStall / 2): // well before the stall watchdog
		t.Fatal("roundTrips still blocked after its echo side failed")
	}
}

// The same for the one-way stream: the receiving side fails.
func TestOneWayEndsWhenReceiverFails(t *testing.T) {
	kp, err := curve.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	p, err := newBenchPair(false, kp)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	if err := p.router.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := p.oneWay(4096, time.Minute)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("oneWay succeeded with its receiver closed")
		}
		t.Logf("oneWay: %v", err)
	case <-time.After(benchStall / 2):
		t.Fatal("oneWay still running after its receiver failed")
	}
}
