package broker_test

import (
	"context"
	"errors"
	"os"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/suites/support"
)

// repairs records the requests a broker's RepairSlot got and answers with res
// and err; gate, when set, holds every call until it is closed (or the broker
// ends the call's context).
type repairs struct {
	mu   sync.Mutex
	got  []broker.RepairRequest
	res  broker.RepairResult
	err  error
	gate chan struct{}
}

func (r *repairs) slot(ctx context.Context, req broker.RepairRequest) (broker.RepairResult, error) {
	r.mu.Lock()
	r.got = append(r.got, req)
	r.mu.Unlock()
	if r.gate != nil {
		select {
		case <-r.gate:
		case <-ctx.Done():
			return broker.RepairResult{}, ctx.Err()
		}
	}
	return r.res, r.err
}

func (r *repairs) calls() []broker.RepairRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]broker.RepairRequest(nil), r.got...)
}

// shmChannel registers channel ch with shared memory on host, and a consumer.
func shmChannel(s *broker.Service, host string) (ch string, p, c *rawClient) {
	p, c = dialRaw(s.Endpoint()), dialRaw(s.Endpoint())
	ch = support.UniqueName("repair")
	Expect(errCode(p.call(&proto.RegReq{ChannelName: ch, ProducerPID: 7, ShmName: ch, HasSharedMemory: true,
		ProducerHostname: host}))).To(BeEmpty())
	p.req(&proto.HeartbeatReq{ChannelName: ch, ProducerPID: 7})
	Expect(p.call(&proto.PingReq{})).To(BeAssignableToTypeOf(&proto.PingAck{}))
	Expect(errCode(c.call(&proto.ConsumerRegReq{ChannelName: ch, ConsumerPID: 3}))).To(BeEmpty())
	return ch, p, c
}

// eventOf reads the next CHANNEL_EVENT_NOTIFY of each party and checks they agree.
func eventOf(parties ...*rawClient) *proto.ChannelEventNotify {
	var first *proto.ChannelEventNotify
	for _, who := range parties {
		n, ok := who.recv().(*proto.ChannelEventNotify)
		Expect(ok).To(BeTrue())
		if first == nil {
			first = n
		}
		Expect(n).To(Equal(first))
	}
	return first
}

var _ = Describe("checksum policy Repair (B-16)", func() {
	host, _ := os.Hostname()

	It("hands the report to RepairSlot and tells every party the outcome", func() {
		rp := &repairs{res: broker.RepairResult{Repaired: true, Detail: "hash recomputed"}}
		s := startBroker(broker.Config{Checksum: broker.ChecksumRepair, RepairSlot: rp.slot})
		ch, p, c := shmChannel(s, host)
		c.req(&proto.ChecksumErrorReport{ChannelName: ch, SlotIndex: 2, Error: "bad", ReporterPID: 3})
		n := eventOf(c, p)
		Expect(*n).To(Equal(proto.ChannelEventNotify{ChannelName: ch, SlotIndex: 2, Error: "bad", ReporterPID: 3,
			BrokerAction: proto.ActionRepaired, BrokerDetail: "hash recomputed"}))
		Expect(rp.calls()).To(Equal([]broker.RepairRequest{{Channel: ch, ShmName: ch, SlotIndex: 2, ProducerPID: 7,
			ReporterPID: 3, Error: "bad"}}))
		Expect(s.Stats().Repaired).To(BeEquivalentTo(1))

		rp.mu.Lock()
		rp.res = broker.RepairResult{Detail: "checksum_ok"}
		rp.mu.Unlock()
		c.req(&proto.ChecksumErrorReport{ChannelName: ch, SlotIndex: 1, ReporterPID: 3})
		n = eventOf(c, p)
		Expect(n.BrokerAction).To(Equal(proto.ActionNotRepaired))
		Expect(n.BrokerDetail).To(Equal("checksum_ok"))
	})

	It("reports repair_failed with the error, and refuses channels it cannot reach without calling RepairSlot", func() {
		rp := &repairs{err: errors.New("segment belongs to pid 9")}
		s := startBroker(broker.Config{Checksum: broker.ChecksumRepair, RepairSlot: rp.slot})
		ch, p, c := shmChannel(s, host)
		c.req(&proto.ChecksumErrorReport{ChannelName: ch, SlotIndex: 0, ReporterPID: 3})
		n := eventOf(c, p)
		Expect(n.BrokerAction).To(Equal(proto.ActionRepairFailed))
		Expect(n.BrokerDetail).To(Equal("segment belongs to pid 9"))

		remote, rp2, rc := shmChannel(s, "elsewhere.example")
		rc.req(&proto.ChecksumErrorReport{ChannelName: remote, SlotIndex: 0, ReporterPID: 3})
		n = eventOf(rc, rp2)
		Expect(n.BrokerAction).To(Equal(proto.ActionRepairFailed))
		Expect(n.BrokerDetail).To(ContainSubstring(`"elsewhere.example"`))

		noShm := support.UniqueName("repair")
		register(p, noShm, "", 8) // no has_shared_memory
		c.req(&proto.ChecksumErrorReport{ChannelName: noShm, SlotIndex: 0, ReporterPID: 3})
		n, ok := p.recv().(*proto.ChannelEventNotify)
		Expect(ok).To(BeTrue())
		Expect(n.BrokerDetail).To(Equal("the channel has no shared memory"))
		Expect(rp.calls()).To(HaveLen(1))
		Expect(s.Stats().RepairsFailed).To(BeEquivalentTo(3))
	})

	It("bounds the reports waiting for a repair, and Close ends a repair in progress", func() {
		rp := &repairs{gate: make(chan struct{})}
		s := startBroker(broker.Config{Checksum: broker.ChecksumRepair, RepairSlot: rp.slot})
		ch, p, c := shmChannel(s, host)
		const reports = 80 // one in RepairSlot, 64 queued, the rest refused
		for range reports {
			c.req(&proto.ChecksumErrorReport{ChannelName: ch, SlotIndex: 0, ReporterPID: 3})
		}
		full := 0
		for full < reports-65 {
			n := eventOf(c, p)
			Expect(n.BrokerAction).To(Equal(proto.ActionRepairFailed))
			Expect(n.BrokerDetail).To(Equal("repair queue full"))
			full++
		}
		Eventually(rp.calls).Should(HaveLen(1))
		Expect(s.Close()).To(Succeed()) // RepairSlot returns on its context; goleak checks the rest
	})

	It("refuses policy Repair without RepairSlot", func() {
		_, err := broker.Start(context.Background(), broker.Config{Endpoint: "tcp://127.0.0.1:0", Checksum: broker.ChecksumRepair})
		Expect(err).To(MatchError(broker.ErrBadConfig))
	})
})
