package messenger_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/internal/wire"
)

var _ = Describe("Registration and discovery (behaviours §2, §3)", func() {
	var (
		b *brokerService
		m *hub.Messenger
	)
	BeforeEach(func() {
		b = startBroker(brokerCfg())
		m = connected(b.Endpoint(), hub.MessengerConfig{})
	})

	It("discovers a channel right after registering it, without waiting (2.2)", func() {
		ch := uniq("reg")
		hash := []byte{0xaa, 0xbb, 0xcc, 0xdd}
		Expect(m.RegisterProducer(ctx5(), ch, hub.ProducerInfo{
			ShmName: "broker_reg_disc.shm", SchemaVersion: 7, SchemaHash: hash, HasSharedMemory: true,
			Pattern: hub.PatternPipeline, CtrlEndpoint: "tcp://127.0.0.1:41235", DataEndpoint: "tcp://127.0.0.1:41236",
		})).To(Succeed())
		info, err := m.Discover(ctx5(), ch)
		Expect(err).NotTo(HaveOccurred())
		Expect(info.Name).To(Equal(ch))
		Expect(info.ShmName).To(Equal("broker_reg_disc.shm"))
		Expect(info.SchemaVersion).To(BeEquivalentTo(7))
		Expect(info.SchemaHash).To(Equal(hash))
		Expect(info.SchemaHashHex).To(Equal("aabbccdd"))
		Expect(info.HasSharedMemory).To(BeTrue())
		Expect(info.Pattern).To(Equal(hub.PatternPipeline))
		Expect(info.CtrlEndpoint).To(Equal("tcp://127.0.0.1:41235"))
		Expect(info.DataEndpoint).To(Equal("tcp://127.0.0.1:41236"))
		Expect(info.ConsumerCount).To(BeZero())
		Expect(info.ProducerPid).To(BeEquivalentTo(m.Pid()))
	})

	It("reports an unknown channel as ErrChannelNotFound at once (2.4)", func() {
		_, err := m.Discover(ctx5(), "no.such.channel")
		Expect(err).To(MatchError(hub.ErrChannelNotFound))
		var be *hub.BrokerError
		Expect(err).To(BeAssignableToTypeOf(be))
	})

	It("no longer discovers a channel after UnregisterChannel (2.5)", func() {
		ch := uniq("dereg")
		Expect(m.RegisterProducer(ctx5(), ch, hub.ProducerInfo{ShmName: "s"})).To(Succeed())
		_, err := m.Discover(ctx5(), ch)
		Expect(err).NotTo(HaveOccurred())
		Expect(m.UnregisterChannel(ctx5(), ch)).To(Succeed())
		_, err = m.Discover(ctx5(), ch)
		Expect(err).To(MatchError(hub.ErrChannelNotFound))
		Expect(m.UnregisterChannel(ctx5(), ch)).To(MatchError(hub.ErrNotRegistered))
	})

	It("refuses UnregisterChannel from another pid and keeps the channel (2.6)", func() {
		ch := uniq("pid")
		Expect(m.RegisterProducer(ctx5(), ch, hub.ProducerInfo{ShmName: "orig"})).To(Succeed())
		other := connected(b.Endpoint(), hub.MessengerConfig{Identity: proc.Identity{Pid: 99999}})
		Expect(other.UnregisterChannel(ctx5(), ch)).To(MatchError(hub.ErrNotRegistered))
		info, err := m.Discover(ctx5(), ch)
		Expect(err).NotTo(HaveOccurred())
		Expect(info.ShmName).To(Equal("orig"))
	})

	It("counts consumers: 0, 1 after RegisterConsumer, 0 after DeregisterConsumer (3.3, 3.6)", func() {
		ch := uniq("cons")
		Expect(m.RegisterProducer(ctx5(), ch, hub.ProducerInfo{})).To(Succeed())
		Expect(consumerCount(m, ch)()).To(BeZero())
		c := connected(b.Endpoint(), hub.MessengerConfig{})
		Expect(c.RegisterConsumer(ctx5(), ch)).To(Succeed())
		Expect(consumerCount(m, ch)()).To(BeEquivalentTo(1))
		Expect(c.DeregisterConsumer(ctx5(), ch)).To(Succeed())
		Expect(consumerCount(m, ch)()).To(BeZero())
		Expect(c.DeregisterConsumer(ctx5(), ch)).To(MatchError(hub.ErrNotRegistered))
		Expect(c.RegisterConsumer(ctx5(), uniq("absent"))).To(MatchError(hub.ErrChannelNotFound))
	})

	It("retries CHANNEL_NOT_READY until the first heartbeat, within the caller's deadline", func() {
		ch := uniq("notready")
		raw := rawDealer(b.Endpoint())
		rawSend(raw, &proto.RegReq{ChannelName: ch, ShmName: "late", ProducerPID: 4242})
		Eventually(b.Channels).Should(ContainElement(HaveField("Name", ch)))

		short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := m.Discover(short, ch)
		Expect(err).To(MatchError(hub.ErrTimeout))
		Expect(err).To(MatchError(hub.ErrChannelNotReady))

		before := b.Stats().Received[string(proto.TypeDiscReq)]
		res := make(chan error, 1)
		go func() {
			info, err := m.Discover(ctx5(), ch)
			if err == nil && info.ShmName != "late" {
				err = fmt.Errorf("wrong shm_name %q", info.ShmName)
			}
			res <- err
		}()
		// Once Discover has been refused at least twice, the producer heartbeats.
		Eventually(func() uint64 { return b.Stats().Received[string(proto.TypeDiscReq)] }).
			WithTimeout(5 * time.Second).Should(BeNumerically(">=", before+2))
		rawSend(raw, &proto.HeartbeatReq{ChannelName: ch, ProducerPID: 4242})
		Eventually(res).WithTimeout(5 * time.Second).Should(Receive(BeNil()))
	})

	It("lists channels and closes one, telling its producer and consumers (B-10)", func() {
		ch := uniq("list")
		Expect(m.RegisterProducer(ctx5(), ch, hub.ProducerInfo{SchemaHash: []byte{1}, Pattern: hub.PatternBidir})).To(Succeed())
		c := connected(b.Endpoint(), hub.MessengerConfig{})
		Expect(c.RegisterConsumer(ctx5(), ch)).To(Succeed())
		list, err := m.ListChannels(ctx5())
		Expect(err).NotTo(HaveOccurred())
		Expect(list).To(ContainElement(hub.ChannelSummary{
			Name: ch, SchemaHashHex: "01", ConsumerCount: 1, ProducerPid: m.Pid(),
			Status: proto.StatusReady, Pattern: hub.PatternBidir,
		}))

		prodGot, consGot := make(chan string, 2), make(chan string, 2)
		m.OnChannelClosing(ch, func(reason string) { prodGot <- reason })
		c.OnChannelClosing(ch, func(reason string) { consGot <- reason })
		Expect(c.CloseChannel(ctx5(), ch)).To(Succeed())
		Eventually(prodGot).WithTimeout(5 * time.Second).Should(Receive(Equal(proto.ReasonExplicitClose)))
		Eventually(consGot).WithTimeout(5 * time.Second).Should(Receive(Equal(proto.ReasonExplicitClose)))
		_, err = m.Discover(ctx5(), ch)
		Expect(err).To(MatchError(hub.ErrChannelNotFound))
		Expect(m.CloseChannel(ctx5(), ch)).To(MatchError(hub.ErrChannelNotFound))
	})

	It("gives each of 50 concurrent callers its own reply (B-14)", func() {
		const callers, perCaller = 50, 20
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		for i := range callers {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				ch := uniq(fmt.Sprintf("b14_%d", i))
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := m.RegisterProducer(ctx, ch, hub.ProducerInfo{ShmName: ch, SchemaVersion: uint32(i)}); err != nil {
					errs <- err
					return
				}
				for range perCaller {
					info, err := m.Discover(ctx, ch)
					if err != nil {
						errs <- err
						return
					}
					if info.ShmName != ch || info.SchemaVersion != uint32(i) {
						errs <- fmt.Errorf("caller %d got the reply for %s v%d", i, info.ShmName, info.SchemaVersion)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		Expect(errs).To(BeEmpty())
	})

	It("drops replies whose caller gave up, and later callers get their own", func() {
		a, c := uniq("stale_a"), uniq("stale_b")
		Expect(m.RegisterProducer(ctx5(), a, hub.ProducerInfo{ShmName: "A"})).To(Succeed())
		Expect(m.RegisterProducer(ctx5(), c, hub.ProducerInfo{ShmName: "B"})).To(Succeed())
		gaveUp := 0
		for range 200 {
			tiny, cancel := context.WithTimeout(context.Background(), 30*time.Microsecond)
			if _, err := m.Discover(tiny, a); err != nil {
				gaveUp++
			}
			cancel()
			info, err := m.Discover(ctx5(), c)
			Expect(err).NotTo(HaveOccurred())
			Expect(info.ShmName).To(Equal("B"))
		}
		Expect(gaveUp).To(BeNumerically(">", 0), "no call gave up: the spec proved nothing")
	})
})

// rawDealer is a plain wire DEALER for hand-made requests (what a foreign or
// misbehaving client would send).
func rawDealer(endpoint string) *wire.Dealer {
	d, err := wire.Dial(ctx5(), wire.Config{Security: curveClient(keyOf(endpoint))}, endpoint)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(d.Close)
	return d
}

func rawSend(d *wire.Dealer, req proto.Request) {
	GinkgoHelper()
	proto.Stamp(req, fmt.Sprintf("raw-%d", time.Now().UnixNano()))
	frames, err := proto.Encode(req)
	Expect(err).NotTo(HaveOccurred())
	Expect(d.Send(frames...)).To(Succeed())
}
