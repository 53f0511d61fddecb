package broker

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/pylabhub/plh/broker/proto"
)

// fillConsumers adds n consumer entries to channel name that the /proc liveness
// sweep must check: local (our hostname), not watched by a pidfd, alive (this
// process). Real CONSUMER_REG_REQs would be watched by pidfd instead.
func fillConsumers(s *Service, name string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[name]
	now := time.Now()
	for i := range n {
		ch.consumers = append(ch.consumers, &consumer{pid: uint64(os.Getpid()), hostname: s.hostname,
			identity: []byte{byte(i)}, lastHeartbeat: now})
	}
}

// TestLivenessSweepDoesNotHoldRequests: while a liveness sweep is in the middle
// of its /proc reads, a PING is answered. The sweep's check is held (test hook)
// until the PING's reply arrives; a sweep that checked under the registry lock
// would hold the PING until the hook gave up.
func TestLivenessSweepDoesNotHoldRequests(t *testing.T) {
	inSweep, pinged := make(chan struct{}), make(chan struct{})
	first := true
	livenessCheck = func(k *consumer) bool {
		if first {
			first = false
			close(inSweep)
			select {
			case <-pinged:
			case <-time.After(15 * time.Second):
			}
		}
		return alive(k)
	}
	t.Cleanup(func() { livenessCheck = alive })
	s := start(t, Config{LivenessInterval: 100 * time.Millisecond, Curve: CurveConfig{Disabled: true},
		ChannelTimeout: time.Hour, ConsumerTimeout: time.Hour})
	c := dial(t, s)
	c.send(&proto.RegReq{ChannelName: "plh_sweep", ProducerPID: uint64(os.Getpid())})
	c.recv()
	fillConsumers(s, "plh_sweep", 100)
	<-inSweep
	c.send(&proto.PingReq{})
	if _, ok := c.recv().(*proto.PingAck); !ok {
		t.Fatal("no PING_ACK during a sweep")
	}
	close(pinged)
	if s.Stats().Consumers != 100 {
		t.Fatalf("live consumers removed: %+v", s.Stats())
	}
}

// TestLivenessSweepLatency reports (does not assert) PING round trips while
// sweeps of 20,000 consumers run: the figure of docs/operations.md.
func TestLivenessSweepLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("20,000 entries")
	}
	s := start(t, Config{LivenessInterval: 100 * time.Millisecond, Curve: CurveConfig{Disabled: true},
		ChannelTimeout: time.Hour, ConsumerTimeout: time.Hour,
		Limits: Limits{MaxConsumersPerChannel: -1}})
	c := dial(t, s)
	c.send(&proto.RegReq{ChannelName: "plh_sweep", ProducerPID: uint64(os.Getpid())})
	c.recv()
	fillConsumers(s, "plh_sweep", 20000)
	var rtts []time.Duration
	for sweeps := s.Stats().LivenessSweeps; s.Stats().LivenessSweeps < sweeps+2; {
		t0 := time.Now()
		c.send(&proto.PingReq{})
		if _, ok := c.recv().(*proto.PingAck); !ok {
			t.Fatal("no PING_ACK")
		}
		rtts = append(rtts, time.Since(t0))
	}
	slices.Sort(rtts)
	t.Logf("%d PINGs during liveness sweeps of 20,000 consumers: round trip p50 %v, p99 %v, worst %v",
		len(rtts), rtts[len(rtts)/2], rtts[len(rtts)*99/100], rtts[len(rtts)-1])
	if s.Stats().Consumers != 20000 {
		t.Fatalf("live consumers removed: %+v", s.Stats())
	}
}

// TestLivenessSweepRemovesManyDeadInChunks: a sweep that finds more dead
// consumers than one chunk removes them all (over several holds of the lock),
// and a CONSUMER_DIED_NOTIFY is made for each (the producer's bounded queue may
// drop some of them on the way, by design, so they are counted at the broker).
func TestLivenessSweepRemovesManyDeadInChunks(t *testing.T) {
	s := start(t, Config{LivenessInterval: time.Second, Curve: CurveConfig{Disabled: true},
		ChannelTimeout: time.Hour, ConsumerTimeout: time.Hour, Limits: Limits{MaxConsumersPerChannel: -1}})
	c := dial(t, s)
	c.send(&proto.RegReq{ChannelName: "plh_sweep_dead", ProducerPID: uint64(os.Getpid())})
	c.recv()
	const n = 3*sweepChunk + 7
	s.mu.Lock()
	ch := s.channels["plh_sweep_dead"]
	for i := range n { // our pid with a start time that is not ours: a dead process
		ch.consumers = append(ch.consumers, &consumer{pid: uint64(os.Getpid()), startTime: 1, hostname: s.hostname,
			identity: []byte{byte(i), byte(i >> 8)}, lastHeartbeat: time.Now()})
	}
	s.mu.Unlock()
	// One whole sweep (they run a second apart) must remove them all, chunk by
	// chunk; the first to end may have started before the entries were added.
	sweeps := s.Stats().LivenessSweeps
	deadline := time.Now().Add(30 * time.Second)
	for s.Stats().LivenessSweeps < sweeps+2 {
		if time.Now().After(deadline) {
			t.Fatal("no liveness sweep in 30 s")
		}
		time.Sleep(10 * time.Millisecond) // polling the broker's counter, no event to wait on
	}
	if left := s.Stats().Consumers; left != 0 {
		t.Fatalf("%d of %d dead consumers left after a whole sweep", left, n)
	}
	if got := s.Stats().Notifications[string(proto.TypeConsumerDiedNotify)]; got != n {
		t.Fatalf("%d CONSUMER_DIED_NOTIFY for %d dead consumers", got, n)
	}
}
