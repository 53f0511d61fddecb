package hub_test

import (
	"context"
	"fmt"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/suites/support"
)

var _ = Describe("Multi-process (behaviours §4 and process deaths, with plh-node)", func() {
	It("4.1 producer process writes 5 slots, a consumer process reads the latest (4)", func() {
		s := startBroker(broker.Config{})
		ch := support.UniqueName("e2e")
		sec := fmt.Sprint(uint64(0xE2EC0FFEEC0FFE))
		p := node("p", "--role", "producer", "--broker", s.Endpoint(), "--broker-key", s.PublicKey(), "--channel", ch, "--shm", "--policy", "latest",
			"--slots", "4", "--secret", sec, "--count", "5", "--linger", "1m")
		Eventually(saw(p, "written", func(e event.Event) bool { return num(e, "last_seq") == 4 })).WithTimeout(10 * time.Second).Should(BeTrue())
		c := node("c", "--role", "consumer", "--broker", s.Endpoint(), "--broker-key", s.PublicKey(), "--channel", ch, "--shm", "--secret", sec, "--count", "1")
		Eventually(c.Done()).WithTimeout(10 * time.Second).Should(BeClosed())
		Expect(saw(c, "attached", func(e event.Event) bool { return e.Fields["shm"] == true })()).To(BeTrue())
		rd, ok := c.Find("read", nil)
		Expect(ok).To(BeTrue())
		Expect(num(rd, "last_seq")).To(BeEquivalentTo(4))
		ex, _ := c.Find("exit", nil)
		Expect(num(ex, "code")).To(BeEquivalentTo(0))
		Expect(ex.Str("reason")).To(Equal("done"))
		Expect(p.Stop(10 * time.Second)).To(Succeed())
		Expect(segmentsOf(ch)).To(BeEmpty())
	})

	It("a producer process killed with SIGKILL: its consumers get CHANNEL_CLOSING", func() {
		s := startBroker(broker.Config{ChannelTimeout: 500 * time.Millisecond})
		m := newMessenger(s, 0, proc.Identity{})
		ch := support.UniqueName("pkill")
		p := node("p", "--role", "producer", "--broker", s.Endpoint(), "--broker-key", s.PublicKey(), "--channel", ch, "--rate", "100", "--heartbeat", "100ms")
		Eventually(saw(p, "ready", nil)).WithTimeout(10 * time.Second).Should(BeTrue())
		closing := &calls[string]{}
		c := connect(m, hub.ConsumerOptions{Channel: ch, Callbacks: hub.ConsumerCallbacks{OnChannelClosing: closing.add}})
		_, err := recv(c, 5*time.Second)
		Expect(err).NotTo(HaveOccurred())
		p.Kill()
		Eventually(closing.list).WithTimeout(5 * time.Second).Should(ConsistOf("heartbeat_timeout"))
	})

	It("a consumer process killed with SIGKILL: the producer gets CONSUMER_DIED and drops it", func() {
		s := startBroker(broker.Config{})
		m := newMessenger(s, 0, proc.Identity{})
		died := &calls[uint64]{}
		p := newProducer(m, hub.ProducerOptions{Pattern: hub.PatternPubSub,
			Callbacks: hub.ProducerCallbacks{OnConsumerDied: func(pid uint64, _ string) { died.add(pid) }}})
		Expect(p.Start()).To(Succeed())
		c := node("c", "--role", "consumer", "--broker", s.Endpoint(), "--broker-key", s.PublicKey(), "--channel", p.Channel())
		Eventually(saw(c, "ready", nil)).WithTimeout(10 * time.Second).Should(BeTrue())
		Expect(p.ConnectedConsumers()).To(HaveLen(1))
		pid := uint64(c.Cmd.Process.Pid)
		Expect(p.ConnectedConsumers()[0].Pid).To(Equal(pid))
		c.Kill()
		Eventually(died.list).WithTimeout(5 * time.Second).Should(ConsistOf(pid))
		Expect(p.ConnectedConsumers()).To(BeEmpty())
	})

	It("B-4 a paused consumer process is dropped for missing its peer heartbeats", func() {
		s := startBroker(broker.Config{ConsumerTimeout: time.Minute})
		m := newMessenger(s, 0, proc.Identity{})
		died := &calls[string]{}
		p := newProducer(m, hub.ProducerOptions{PeerTimeout: 500 * time.Millisecond,
			Callbacks: hub.ProducerCallbacks{OnConsumerDied: func(_ uint64, r string) { died.add(r) }}})
		Expect(p.Start()).To(Succeed())
		c := node("c", "--role", "consumer", "--broker", s.Endpoint(), "--broker-key", s.PublicKey(), "--channel", p.Channel(), "--peer-heartbeat", "50ms")
		Eventually(saw(c, "ready", nil)).WithTimeout(10 * time.Second).Should(BeTrue())
		Expect(c.Signal(syscall.SIGSTOP)).To(Succeed())
		Eventually(died.list).WithTimeout(5 * time.Second).Should(ConsistOf(hub.ReasonPeerTimeout))
		Expect(p.ConnectedConsumers()).To(BeEmpty())
		c.Kill()
	})

	It("plh-node pairs report the event stream: PubSub over the peer link and Sync_reader over SHM", func() {
		s := startBroker(broker.Config{})
		for _, mode := range [][]string{{"--pattern", "PubSub"}, {"--shm", "--policy", "sync", "--slots", "4", "--secret", "77"}} {
			ch := support.UniqueName("ev")
			common := []string{"--broker", s.Endpoint(), "--broker-key", s.PublicKey(), "--channel", ch, "--schema", "lab.v1"}
			p := node("p", append(append([]string{"--role", "producer", "--linger", "1m", "--slow-consumer", "block"}, common...), mode...)...)
			Eventually(saw(p, "ready", nil)).WithTimeout(10 * time.Second).Should(BeTrue())
			Expect(saw(p, "registered", nil)()).To(BeTrue())
			c := node("c", append(append([]string{"--role", "consumer", "--count", "500"}, common...), mode...)...)
			Eventually(saw(p, "consumer_joined", nil)).WithTimeout(10 * time.Second).Should(BeTrue())
			Eventually(c.Done()).WithTimeout(30 * time.Second).Should(BeClosed())
			ex, ok := c.Find("exit", nil)
			Expect(ok).To(BeTrue(), c.Stderr())
			Expect(num(ex, "code")).To(BeEquivalentTo(0))
			Expect(num(ex, "read")).To(BeEquivalentTo(500))
			Expect(num(ex, "checksum_errors")).To(BeEquivalentTo(0))
			Expect(num(ex, "reorders")).To(BeEquivalentTo(0))
			Expect(saw(c, "discovered", nil)()).To(BeTrue())
			Expect(c.Count("gap", nil)).To(Equal(0), "gaps after the join: %v", c.Events())
			rd, _ := c.Find("read", nil)
			Expect(rd.Fields).To(HaveKey("lat_p50_ns"))
			Eventually(saw(p, "consumer_left", nil)).WithTimeout(5 * time.Second).Should(BeTrue())
			Expect(p.Stop(10 * time.Second)).To(Succeed())
			pe, _ := p.Find("exit", nil)
			Expect(pe.Str("reason")).To(Equal("signal"))
			Expect(num(pe, "written")).To(BeNumerically(">=", 500))
		}
	})

	It("plh-node refuses a schema conflict and reports the attempt to the owner", func() {
		s := startBroker(broker.Config{})
		ch := support.UniqueName("schema")
		a := node("a", "--role", "producer", "--broker", s.Endpoint(), "--broker-key", s.PublicKey(), "--channel", ch, "--schema", "v1", "--rate", "10")
		Eventually(saw(a, "ready", nil)).WithTimeout(10 * time.Second).Should(BeTrue())
		b := node("b", "--role", "producer", "--broker", s.Endpoint(), "--broker-key", s.PublicKey(), "--channel", ch, "--schema", "v2")
		Eventually(b.Done()).WithTimeout(10 * time.Second).Should(BeClosed())
		ex, _ := b.Find("exit", nil)
		Expect(num(ex, "code")).To(BeEquivalentTo(1))
		Expect(saw(b, "error", nil)()).To(BeTrue())
		Eventually(saw(a, "notification", func(e event.Event) bool {
			return e.Str("type") == "CHANNEL_ERROR_NOTIFY" && e.Str("event") == "schema_mismatch_attempt"
		})).WithTimeout(5 * time.Second).Should(BeTrue())
		_ = context.Background
	})
})
