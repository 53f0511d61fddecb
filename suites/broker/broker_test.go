package broker_test

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/suites/support"
)

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func register(c *rawClient, name, hash string, pid uint64) {
	r := c.call(&proto.RegReq{ChannelName: name, SchemaHash: hash, ProducerPID: pid, ShmName: name + ".shm"})
	Expect(errCode(r)).To(BeEmpty())
	c.req(&proto.HeartbeatReq{ChannelName: name, ProducerPID: pid})
	// A round trip on the same connection: the broker handles one connection's
	// messages in order, so the heartbeat is processed once PING_ACK arrives.
	Expect(c.call(&proto.PingReq{})).To(BeAssignableToTypeOf(&proto.PingAck{}))
}

var _ = Describe("registration and discovery (behaviours §2)", func() {
	It("registers, discovers, rejects a schema mismatch with CHANNEL_ERROR_NOTIFY, and checks the pid on DEREG", func() {
		logs := &logBuf{}
		s := startBroker(broker.Config{Logger: slog.New(slog.NewTextHandler(logs, nil))})
		owner, other := dialRaw(s.Endpoint()), dialRaw(s.Endpoint())
		ch := support.UniqueName("reg")
		register(owner, ch, strings.Repeat("0", 64), 55555)
		d := other.call(&proto.DiscReq{ChannelName: ch}).(*proto.DiscAck)
		Expect(d.ShmName).To(Equal(ch + ".shm"))
		Expect(d.BrokerVersion).To(Equal(proto.BrokerVersion))

		By("a second REG_REQ with another hash")
		Expect(errCode(other.call(&proto.RegReq{ChannelName: ch, SchemaHash: strings.Repeat("a", 64), ProducerPID: 2}))).To(Equal(proto.CodeSchemaMismatch))
		n, ok := owner.recv().(*proto.ChannelErrorNotify)
		Expect(ok).To(BeTrue())
		Expect(n.Event).To(Equal(proto.EventSchemaMismatch))
		Expect(n.AttemptedPID).To(BeEquivalentTo(2))
		Expect(logs.String()).To(ContainSubstring("Cat1 schema mismatch"))

		By("DEREG with the wrong pid, then the right one")
		Expect(errCode(other.call(&proto.DeregReq{ChannelName: ch, ProducerPID: 99999}))).To(Equal(proto.CodeNotRegistered))
		Expect(errCode(other.call(&proto.DiscReq{ChannelName: ch}))).To(BeEmpty())
		Expect(errCode(owner.call(&proto.DeregReq{ChannelName: ch, ProducerPID: 55555}))).To(BeEmpty())
		Expect(errCode(other.call(&proto.DiscReq{ChannelName: ch}))).To(Equal(proto.CodeChannelNotFound))
	})

	It("answers CHANNEL_NOT_READY before the first heartbeat and re-registration keeps consumers", func() {
		s := startBroker(broker.Config{})
		p, c := dialRaw(s.Endpoint()), dialRaw(s.Endpoint())
		ch := support.UniqueName("ready")
		Expect(errCode(p.call(&proto.RegReq{ChannelName: ch, SchemaHash: "ab", ProducerPID: 1}))).To(BeEmpty())
		Expect(errCode(c.call(&proto.DiscReq{ChannelName: ch}))).To(Equal(proto.CodeChannelNotReady))
		Expect(errCode(c.call(&proto.ConsumerRegReq{ChannelName: ch, ConsumerPID: 4242}))).To(BeEmpty())
		Expect(errCode(p.call(&proto.RegReq{ChannelName: ch, SchemaHash: "ab", ProducerPID: 7}))).To(BeEmpty())
		Expect(s.Channels()).To(ConsistOf(HaveField("ConsumerCount", BeEquivalentTo(1))))
	})
})

var _ = Describe("consumer registration (behaviours §3)", func() {
	It("counts consumers, deregisters by pid, rejects unknown channels and pids", func() {
		s := startBroker(broker.Config{})
		p, c := dialRaw(s.Endpoint()), dialRaw(s.Endpoint())
		ch := support.UniqueName("cons")
		Expect(errCode(c.call(&proto.ConsumerRegReq{ChannelName: ch, ConsumerPID: 55100}))).To(Equal(proto.CodeChannelNotFound))
		register(p, ch, "", 55001)
		Expect(errCode(c.call(&proto.ConsumerRegReq{ChannelName: ch, ConsumerPID: 55100}))).To(BeEmpty())
		Expect(c.call(&proto.DiscReq{ChannelName: ch}).(*proto.DiscAck).ConsumerCount).To(BeEquivalentTo(1))
		Expect(errCode(c.call(&proto.ConsumerDeregReq{ChannelName: ch, ConsumerPID: 99999}))).To(Equal(proto.CodeNotRegistered))
		Expect(c.call(&proto.DiscReq{ChannelName: ch}).(*proto.DiscAck).ConsumerCount).To(BeEquivalentTo(1))
		Expect(errCode(c.call(&proto.ConsumerDeregReq{ChannelName: ch, ConsumerPID: 55100}))).To(BeEmpty())
		Expect(c.call(&proto.DiscReq{ChannelName: ch}).(*proto.DiscAck).ConsumerCount).To(BeEquivalentTo(0))
		Expect(errCode(c.call(&proto.ConsumerDeregReq{ChannelName: "nope", ConsumerPID: 1}))).To(Equal(proto.CodeNotRegistered))
	})
})

var _ = Describe("health and notifications (behaviours §7, B-3, B-10)", func() {
	It("closes a silent channel with CHANNEL_CLOSING_NOTIFY to consumer and producer", func() {
		s := startBroker(broker.Config{ChannelTimeout: 500 * time.Millisecond, LivenessInterval: -1})
		p, c := dialRaw(s.Endpoint()), dialRaw(s.Endpoint())
		ch := support.UniqueName("timeout")
		register(p, ch, "", 1)
		Expect(errCode(c.call(&proto.ConsumerRegReq{ChannelName: ch, ConsumerPID: 2}))).To(BeEmpty())
		for _, who := range []*rawClient{c, p} {
			n, ok := who.recv().(*proto.ChannelClosingNotify)
			Expect(ok).To(BeTrue())
			Expect(n.Reason).To(Equal(proto.ReasonHeartbeatTimeout))
		}
		Expect(s.Channels()).To(BeEmpty())
		Expect(s.Stats().ChannelTimeouts).To(BeEquivalentTo(1))
	})

	It("reports a SIGKILLed local consumer with CONSUMER_DIED_NOTIFY process_dead (pidfd)", func() {
		s := startBroker(broker.Config{LivenessInterval: -1})
		p, c := dialRaw(s.Endpoint()), dialRaw(s.Endpoint())
		ch := support.UniqueName("dead")
		register(p, ch, "", 1)
		victim := exec.Command("sleep", "600")
		victim.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		Expect(victim.Start()).To(Succeed())
		DeferCleanup(func() { _ = victim.Process.Kill(); _ = victim.Wait() })
		id, err := proc.Lookup(victim.Process.Pid)
		Expect(err).NotTo(HaveOccurred())
		Expect(errCode(c.call(&proto.ConsumerRegReq{ChannelName: ch, ConsumerPID: uint64(id.Pid), ConsumerStartTime: id.StartTime}))).To(BeEmpty())
		killed := time.Now()
		Expect(victim.Process.Kill()).To(Succeed())
		n, ok := p.recv().(*proto.ConsumerDiedNotify)
		Expect(ok).To(BeTrue())
		AddReportEntry("kill to CONSUMER_DIED_NOTIFY", time.Since(killed).String())
		Expect(n.ConsumerPID).To(BeEquivalentTo(id.Pid))
		Expect(n.Reason).To(Equal(proto.ReasonProcessDead))
		Expect(s.Stats().DeadConsumers).To(BeEquivalentTo(1))
	})

	It("removes a consumer that stops heartbeating with reason heartbeat_timeout (B-3)", func() {
		s := startBroker(broker.Config{ConsumerTimeout: 400 * time.Millisecond, LivenessInterval: -1})
		p, c := dialRaw(s.Endpoint()), dialRaw(s.Endpoint())
		ch := support.UniqueName("hb")
		register(p, ch, "", 1)
		// pid on another host: no pidfd; stamped (plh client) so it must heartbeat.
		Expect(errCode(c.call(&proto.ConsumerRegReq{ChannelName: ch, ConsumerPID: 777, ConsumerHostname: "elsewhere"}))).To(BeEmpty())
		c.req(&proto.ConsumerHeartbeatReq{ChannelName: ch, ConsumerPID: 777})
		n, ok := p.recv().(*proto.ConsumerDiedNotify)
		Expect(ok).To(BeTrue())
		Expect(n.Reason).To(Equal(proto.ReasonHeartbeatTimeout))
		Expect(s.Stats().ConsumerTimeouts).To(BeEquivalentTo(1))
	})

	It("lists channels and closes one explicitly, notifying consumer then producer (B-10)", func() {
		s := startBroker(broker.Config{})
		p, c := dialRaw(s.Endpoint()), dialRaw(s.Endpoint())
		ch := support.UniqueName("list")
		register(p, ch, "ff", 9)
		Expect(errCode(c.call(&proto.ConsumerRegReq{ChannelName: ch, ConsumerPID: 3}))).To(BeEmpty())
		l := c.call(&proto.ChannelListReq{}).(*proto.ChannelListAck)
		Expect(l.Channels).To(ConsistOf(proto.ChannelInfo{Name: ch, SchemaHash: "ff", ConsumerCount: 1, ProducerPID: 9,
			Status: proto.StatusReady, Pattern: proto.PatternPubSub}))
		admin := dialRaw(s.Endpoint()) // neither party, so its ACK is not interleaved with notifications
		Expect(admin.call(&proto.ChannelCloseReq{ChannelName: ch}).(*proto.ChannelCloseAck).ChannelName).To(Equal(ch))
		n := c.recv().(*proto.ChannelClosingNotify)
		Expect(n.Reason).To(Equal(proto.ReasonExplicitClose))
		Expect(p.recv().(*proto.ChannelClosingNotify).Reason).To(Equal(proto.ReasonExplicitClose))
		Expect(errCode(admin.call(&proto.ChannelCloseReq{ChannelName: ch}))).To(Equal(proto.CodeChannelNotFound))
	})

	It("forwards CHECKSUM_ERROR_REPORT as CHANNEL_EVENT_NOTIFY under NotifyOnly", func() {
		s := startBroker(broker.Config{Checksum: broker.ChecksumNotifyOnly})
		p, c := dialRaw(s.Endpoint()), dialRaw(s.Endpoint())
		ch := support.UniqueName("cksum")
		register(p, ch, "", 1)
		Expect(errCode(c.call(&proto.ConsumerRegReq{ChannelName: ch, ConsumerPID: 3}))).To(BeEmpty())
		c.req(&proto.ChecksumErrorReport{ChannelName: ch, SlotIndex: 2, Error: "bad", ReporterPID: 3})
		for _, who := range []*rawClient{c, p} {
			n := who.recv().(*proto.ChannelEventNotify)
			Expect(n.BrokerAction).To(Equal(proto.ActionNotifyOnly))
			Expect(n.SlotIndex).To(BeEquivalentTo(2))
		}
	})
})

var _ = Describe("versions and bad input from the wire (B-8)", func() {
	It("over CURVE (the default) answers VERSION_MISMATCH, accepts unversioned requests, and survives garbage", func() {
		s := startBroker(broker.Config{})
		Expect(s.PublicKey()).To(HaveLen(40))
		c := dialRaw(s.Endpoint())
		r := &proto.DiscReq{ChannelName: support.UniqueName("bad")}
		r.CorrelationID, r.ProtocolVersion = "v2", "2.0"
		c.send(r)
		Expect(errCode(c.recv().(proto.Reply))).To(Equal(proto.CodeVersionMismatch))
		c.sendFrames([]byte{'C'}, []byte("REG_REQ"), []byte(`{"channel_name":`)) // malformed: INVALID_REQUEST
		Expect(errCode(c.recv().(proto.Reply))).To(Equal(proto.CodeInvalidRequest))
		c.sendFrames([]byte{'A'}, []byte("payload")) // not a control message: drop
		c.sendFrames([]byte{'C'}, []byte("BOGUS"), []byte(`{"correlation_id":"u"}`))
		Expect(errCode(c.recv().(proto.Reply))).To(Equal(proto.CodeUnknownMsgType))
		c.sendFrames([]byte{'C'}, []byte("PING_REQ"), []byte(`{}`)) // original client: no version
		Expect(c.recv()).To(BeAssignableToTypeOf(&proto.PingAck{}))
		Eventually(func() uint64 { return s.Stats().Dropped }).Should(BeEquivalentTo(1))
	})

	It("on an explicitly NULL broker (Curve.Disabled) answers VERSION_MISMATCH, accepts unversioned requests, and survives garbage and raw TCP", func() {
		s := startBroker(broker.Config{Curve: broker.CurveConfig{Disabled: true}, Wire: wire.Config{MaxFrame: 64 << 10}})
		Expect(s.PublicKey()).To(BeEmpty())
		c := dialRaw(s.Endpoint())
		ch := support.UniqueName("bad")

		r := &proto.DiscReq{ChannelName: ch}
		r.CorrelationID, r.ProtocolVersion = "v2", "2.0"
		c.send(r)
		Expect(errCode(c.recv().(proto.Reply))).To(Equal(proto.CodeVersionMismatch))

		c.sendFrames([]byte{'C'}, []byte("PING_REQ"), []byte(`{}`)) // original client: no version
		Expect(c.recv()).To(BeAssignableToTypeOf(&proto.PingAck{}))

		bad := [][][]byte{
			{[]byte{'C'}, []byte("REG_REQ")},                                     // too few frames: drop
			{[]byte{'A'}, []byte("payload")},                                     // data frame: drop
			{[]byte{'C'}, []byte("HEARTBEAT_REQ"), []byte(`{"channel_name":3}`)}, // fire-and-forget: drop
		}
		for _, f := range bad {
			c.sendFrames(f...)
		}
		replies := []struct {
			frames [][]byte
			code   proto.Code
		}{
			{[][]byte{{'C'}, []byte("BOGUS"), []byte(`{"correlation_id":"u"}`)}, proto.CodeUnknownMsgType},
			{[][]byte{{'C'}, []byte("REG_REQ"), []byte(`{"correlation_id":"m"}`)}, proto.CodeInvalidRequest},
			{[][]byte{{'C'}, []byte("REG_REQ"), []byte(`{"channel_name":`)}, proto.CodeInvalidRequest}, // malformed
			{[][]byte{{'C'}, []byte("DISC_REQ"), []byte(`{"channel_name":42,"correlation_id":"w"}`)}, proto.CodeInvalidRequest},
			{[][]byte{{'C'}, []byte("CONSUMER_REG_REQ"), []byte(`{"channel_name":"x","consumer_pid":-5}`)}, proto.CodeInvalidRequest},
		}
		for _, r := range replies {
			c.sendFrames(r.frames...)
			Expect(errCode(c.recv().(proto.Reply))).To(Equal(r.code))
		}
		Eventually(func() uint64 { return s.Stats().Dropped }).Should(BeEquivalentTo(len(bad)))
		Expect(s.Stats().Received).To(HaveKeyWithValue("UNKNOWN", BeEquivalentTo(1)))
		Expect(s.Stats().Errors).To(HaveKeyWithValue(string(proto.CodeInvalidRequest), BeEquivalentTo(4)))

		By("an oversized frame drops that connection only")
		big := dialRaw(s.Endpoint())
		big.sendFrames([]byte{'C'}, []byte("REG_REQ"), make([]byte, 1<<20))
		Eventually(func() uint64 { return s.Stats().Wire.Oversized }).Should(BeEquivalentTo(1))
		c.sendFrames([]byte{'C'}, []byte("PING_REQ"), []byte(`{}`))
		Expect(c.recv()).To(BeAssignableToTypeOf(&proto.PingAck{}))

		By("a raw TCP peer announcing a 2^60-byte frame")
		raw, err := net.Dial("tcp", strings.TrimPrefix(s.Endpoint(), "tcp://"))
		Expect(err).NotTo(HaveOccurred())
		defer raw.Close()
		g := make([]byte, 64)
		g[0], g[9], g[10] = 0xFF, 0x7F, 3
		copy(g[12:], "NULL")
		ready := append([]byte{5}, "READY"...)
		ready = append(ready, 11)
		ready = append(ready, "Socket-Type"...)
		ready = binary.BigEndian.AppendUint32(ready, 6)
		ready = append(ready, "DEALER"...)
		hdr := make([]byte, 9)
		hdr[0] = 0x02
		binary.BigEndian.PutUint64(hdr[1:], 1<<60)
		_, _ = raw.Write(append(append(g, append([]byte{0x04, byte(len(ready))}, ready...)...), hdr...))
		Eventually(func() uint64 { return s.Stats().Wire.Oversized }).Should(BeEquivalentTo(2))
		c.sendFrames([]byte{'C'}, []byte("PING_REQ"), []byte(`{}`))
		Expect(c.recv()).To(BeAssignableToTypeOf(&proto.PingAck{}))
	})
})
