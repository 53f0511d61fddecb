package broker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/suites/support"
)

// codeLimitExceeded is the ERROR code docs/protocol.md gives for a broker limit.
const codeLimitExceeded = "LIMIT_EXCEEDED"

// rawCall sends ['C'][typ][body] and returns the reply's type and JSON body.
func (c *rawClient) rawCall(typ string, body []byte) (string, map[string]any) {
	c.sendFrames([]byte{'C'}, []byte(typ), body)
	return c.rawRecv()
}

func (c *rawClient) rawRecv() (string, map[string]any) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := c.d.Recv(ctx)
	Expect(err).NotTo(HaveOccurred(), "no reply")
	Expect(f).To(HaveLen(3))
	var m map[string]any
	Expect(json.Unmarshal(f[2], &m)).To(Succeed())
	return string(f[1]), m
}

// expectRawError checks an ERROR reply with code (and correlation id corr when not "").
func expectRawError(typ string, body map[string]any, code, corr string) {
	Expect(typ).To(Equal("ERROR"), "body %v", body)
	Expect(body).To(HaveKeyWithValue("status", "error"))
	Expect(body).To(HaveKeyWithValue("error_code", code), "body %v", body)
	if corr != "" {
		Expect(body).To(HaveKeyWithValue("correlation_id", corr))
	}
}

// nullBroker is an in-process broker without CURVE (faster for many round trips).
func nullBroker(cfg broker.Config) *broker.Service {
	cfg.Curve = broker.CurveConfig{Disabled: true}
	return startBroker(cfg)
}

// deadPid returns a pid that names no process on this host.
func deadPid() uint64 {
	for p := 4_000_000; p > 1000; p-- {
		if !proc.AlivePid(p) {
			return uint64(p)
		}
	}
	Fail("no free pid")
	return 0
}

var _ = Describe("channel names and pids from the wire", Label("hostile"), func() {
	It("rejects names that are not clean UTF-8 with INVALID_REQUEST, so different names never collide", func() {
		s := nullBroker(broker.Config{})
		c := dialRaw(s.Endpoint())
		bad := map[string]string{
			"invalid UTF-8 0xff": "coll\xff",
			"invalid UTF-8 0xfe": "coll\xfe",
			"lone surrogate":     `a\ud800b`,
			"control character":  `a\u0001b`,
			"DEL":                "a\x7fb",
			"line feed":          `a\nb`,
			"replacement U+FFFD": "a\uFFFDb",
			"C1 control":         `a\u0085b`,
			"truncated sequence": "\xe2\x82",
		}
		for what, name := range bad {
			body := []byte(`{"channel_name":"` + name + `","producer_pid":` + fmt.Sprint(os.Getpid()) + `,"correlation_id":"n"}`)
			typ, rep := c.rawCall("REG_REQ", body)
			expectRawError(typ, rep, "INVALID_REQUEST", "n")
			typ, rep = c.rawCall("DISC_REQ", []byte(`{"channel_name":"`+name+`","correlation_id":"d"}`))
			expectRawError(typ, rep, "INVALID_REQUEST", "d")
			_ = what
		}
		Expect(s.Channels()).To(BeEmpty())

		By("letters of any script, digits, punctuation and spaces are names")
		ok := support.UniqueName("données β-1 ok")
		register(c, ok, "", uint64(os.Getpid()))
		Expect(c.call(&proto.DiscReq{ChannelName: ok})).To(BeAssignableToTypeOf(&proto.DiscAck{}))
	})

	It("rejects a name longer than the limit with LIMIT_EXCEEDED and logs only its head", func() {
		logs := &logBuf{}
		s := nullBroker(broker.Config{Logger: slog.New(slog.NewTextHandler(logs, nil))})
		c := dialRaw(s.Endpoint())
		long := strings.Repeat("n", 120_000)
		typ, rep := c.rawCall("REG_REQ", []byte(`{"channel_name":"`+long+`","producer_pid":1,"correlation_id":"l"}`))
		expectRawError(typ, rep, codeLimitExceeded, "l")
		typ, rep = c.rawCall("DISC_REQ", []byte(`{"channel_name":"`+long+`","correlation_id":"m"}`))
		expectRawError(typ, rep, codeLimitExceeded, "m")
		Expect(len(rep["message"].(string))).To(BeNumerically("<", 1024), "the reply quotes the name truncated")
		Expect(len(logs.String())).To(BeNumerically("<", 4096), "logs quote the name truncated")
		Expect(s.Channels()).To(BeEmpty())
	})

	It("rejects consumer pids 0, beyond the kernel's limit and 2^64-1, and producer pid 0, with INVALID_REQUEST", func() {
		s := nullBroker(broker.Config{})
		c := dialRaw(s.Endpoint())
		ch := support.UniqueName("pids")
		register(c, ch, "", uint64(os.Getpid()))
		for _, pid := range []string{"0", "4194305", "18446744073709551615"} {
			typ, rep := c.rawCall("CONSUMER_REG_REQ", []byte(`{"channel_name":"`+ch+`","consumer_pid":`+pid+`,"correlation_id":"q"}`))
			expectRawError(typ, rep, "INVALID_REQUEST", "q")
		}
		for _, body := range []string{`"producer_pid":0`, `"schema_hash":"00"`} {
			typ, rep := c.rawCall("REG_REQ", []byte(`{"channel_name":"`+ch+`x",`+body+`,"correlation_id":"p"}`))
			expectRawError(typ, rep, "INVALID_REQUEST", "p")
		}
		typ, rep := c.rawCall("CONSUMER_REG_REQ", []byte(`{"channel_name":"`+ch+`","correlation_id":"r"}`))
		expectRawError(typ, rep, "INVALID_REQUEST", "r")
		Expect(s.Channels()).To(ConsistOf(HaveField("ConsumerCount", BeZero())))
	})
})

var _ = Describe("bad input that used to be dropped in silence", Label("hostile"), func() {
	It("answers oversized bodies, deep nesting, malformed JSON and bad type frames with an ERROR", func() {
		s := nullBroker(broker.Config{})
		c := dialRaw(s.Endpoint())
		big := `{"correlation_id":"big","channel_name":"x","metadata":{"k":"` + strings.Repeat("b", 300<<10) + `"}}`
		typ, rep := c.rawCall("REG_REQ", []byte(big))
		expectRawError(typ, rep, codeLimitExceeded, "big")

		deep := `{"correlation_id":"deep","channel_name":"x","metadata":{"k":` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `}}`
		typ, rep = c.rawCall("REG_REQ", []byte(deep))
		expectRawError(typ, rep, "INVALID_REQUEST", "deep")

		typ, rep = c.rawCall("REG_REQ", []byte(`{"correlation_id":"half","channel_name":`))
		expectRawError(typ, rep, "INVALID_REQUEST", "")

		typ, rep = c.rawCall("", []byte(`{"correlation_id":"empty"}`))
		expectRawError(typ, rep, "UNKNOWN_MSG_TYPE", "empty")
		typ, rep = c.rawCall(strings.Repeat("T", 100_000), []byte(`{"correlation_id":"huge"}`))
		expectRawError(typ, rep, "UNKNOWN_MSG_TYPE", "huge")
		Expect(len(rep["message"].(string))).To(BeNumerically("<", 1024))
		typ, rep = c.rawCall("PING\x00REQ", []byte(`{"correlation_id":"nul"}`))
		expectRawError(typ, rep, "UNKNOWN_MSG_TYPE", "nul")

		By("what cannot be answered is dropped and counted: not a control message, or a fire-and-forget message")
		dropped := s.Stats().Dropped
		c.sendFrames([]byte{'A'}, []byte("data"))
		c.sendFrames([]byte{'C'}, []byte("HEARTBEAT_REQ"), []byte(`{"channel_name":"x","metadata":"`+strings.Repeat("h", 300<<10)+`"}`))
		c.sendFrames([]byte{'C'}, []byte("HEARTBEAT_REQ"), []byte(`{"channel_name":`))
		Expect(c.call(&proto.PingReq{})).To(BeAssignableToTypeOf(&proto.PingAck{}))
		Expect(s.Stats().Dropped).To(Equal(dropped + 3))
	})
})

var _ = Describe("limits on what clients can make the broker hold", Label("hostile"), func() {
	It("caps channels, consumers per channel and metadata with LIMIT_EXCEEDED and counts each", func() {
		s := nullBroker(broker.Config{Limits: broker.Limits{MaxChannels: 3, MaxConsumersPerChannel: 2, MaxMetadataBytes: 1024}})
		c := dialRaw(s.Endpoint())
		pid := uint64(os.Getpid())
		var names []string
		for range 3 {
			names = append(names, support.UniqueName("cap"))
			register(c, names[len(names)-1], "", pid)
		}
		r := c.call(&proto.RegReq{ChannelName: support.UniqueName("cap"), ProducerPID: pid})
		Expect(string(errCode(r))).To(Equal(codeLimitExceeded))
		Expect(errCode(c.call(&proto.RegReq{ChannelName: names[0], ProducerPID: pid}))).To(BeEmpty(), "a producer restart is not a new channel")

		self := proc.Self()
		other := exec.Command("sleep", "600")
		other.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		Expect(other.Start()).To(Succeed())
		DeferCleanup(func() { _ = other.Process.Kill(); _ = other.Wait() })
		Expect(errCode(c.call(&proto.ConsumerRegReq{ChannelName: names[1], ConsumerPID: uint64(self.Pid), ConsumerStartTime: self.StartTime}))).To(BeEmpty())
		Expect(errCode(c.call(&proto.ConsumerRegReq{ChannelName: names[1], ConsumerPID: uint64(other.Process.Pid)}))).To(BeEmpty())
		Expect(string(errCode(c.call(&proto.ConsumerRegReq{ChannelName: names[1], ConsumerPID: 1})))).To(Equal(codeLimitExceeded))

		meta := map[string]any{"k": strings.Repeat("m", 2048)}
		Expect(string(errCode(c.call(&proto.RegReq{ChannelName: names[2], ProducerPID: pid, Metadata: meta})))).To(Equal(codeLimitExceeded))

		st := s.Stats()
		Expect(st.Errors).To(HaveKeyWithValue(codeLimitExceeded, BeEquivalentTo(3)))
		Expect(st.LimitsExceeded).To(And(HaveKeyWithValue("channels", BeEquivalentTo(1)),
			HaveKeyWithValue("consumers_per_channel", BeEquivalentTo(1)), HaveKeyWithValue("metadata_bytes", BeEquivalentTo(1))))
		Expect(st.Channels).To(Equal(3))
	})

	It("expires a consumer entry that never heartbeats after StaleConsumerAge even though its process lives", func() {
		s := nullBroker(broker.Config{Limits: broker.Limits{StaleConsumerAge: 300 * time.Millisecond}})
		p, c := dialRaw(s.Endpoint()), dialRaw(s.Endpoint())
		ch := support.UniqueName("stale")
		register(p, ch, "", uint64(os.Getpid()))
		// An original client: no protocol_version, never heartbeats, pid alive (ours).
		typ, _ := c.rawCall("CONSUMER_REG_REQ", []byte(`{"channel_name":"`+ch+`","consumer_pid":`+fmt.Sprint(os.Getpid())+`}`))
		Expect(typ).To(Equal("CONSUMER_REG_ACK"))
		n, ok := p.recv().(*proto.ConsumerDiedNotify)
		Expect(ok).To(BeTrue())
		Expect(n.Reason).To(Equal(proto.ReasonHeartbeatTimeout))
		Expect(s.Channels()).To(ConsistOf(HaveField("ConsumerCount", BeZero())))
	})
})

var _ = Describe("a consumer that registers again", Label("hostile"), func() {
	It("replaces its entry: consumer_count stays 1 and its clean exit gives no CONSUMER_DIED_NOTIFY", func() {
		s := nullBroker(broker.Config{LivenessInterval: 50 * time.Millisecond})
		p, c := dialRaw(s.Endpoint()), dialRaw(s.Endpoint())
		ch := support.UniqueName("dup")
		register(p, ch, "", uint64(os.Getpid()))
		start := func() (*exec.Cmd, proc.Identity) {
			cmd := exec.Command("sleep", "600")
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			Expect(cmd.Start()).To(Succeed())
			DeferCleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			id, err := proc.Lookup(cmd.Process.Pid)
			Expect(err).NotTo(HaveOccurred())
			return cmd, id
		}
		cmd, id := start()
		reg := &proto.ConsumerRegReq{ChannelName: ch, ConsumerPID: uint64(id.Pid), ConsumerStartTime: id.StartTime}
		for range 3 {
			Expect(errCode(c.call(&proto.ConsumerRegReq{ChannelName: ch, ConsumerPID: reg.ConsumerPID, ConsumerStartTime: reg.ConsumerStartTime}))).To(BeEmpty())
		}
		Expect(c.call(&proto.DiscReq{ChannelName: ch}).(*proto.DiscAck).ConsumerCount).To(BeEquivalentTo(1))
		Expect(errCode(c.call(&proto.ConsumerDeregReq{ChannelName: ch, ConsumerPID: reg.ConsumerPID}))).To(BeEmpty())
		Expect(c.call(&proto.DiscReq{ChannelName: ch}).(*proto.DiscAck).ConsumerCount).To(BeZero())
		Expect(cmd.Process.Kill()).To(Succeed())
		_ = cmd.Wait()

		By("a sentinel consumer that dies afterwards is the first and only death the producer hears of")
		sentinel, sid := start()
		Expect(errCode(c.call(&proto.ConsumerRegReq{ChannelName: ch, ConsumerPID: uint64(sid.Pid), ConsumerStartTime: sid.StartTime}))).To(BeEmpty())
		Expect(sentinel.Process.Kill()).To(Succeed())
		n, ok := p.recv().(*proto.ConsumerDiedNotify)
		Expect(ok).To(BeTrue())
		Expect(n.ConsumerPID).To(BeEquivalentTo(sid.Pid))
	})
})

var _ = Describe("several consumers of one channel in one process", Label("hostile"), func() {
	It("keeps one entry per socket and per consumer_id, each replaced when it registers again", func() {
		s := nullBroker(broker.Config{})
		p, c1, c2 := dialRaw(s.Endpoint()), dialRaw(s.Endpoint()), dialRaw(s.Endpoint())
		ch := support.UniqueName("multi")
		register(p, ch, "", uint64(os.Getpid()))
		self := proc.Self()
		reg := func(c *rawClient, id string) {
			Expect(errCode(c.call(&proto.ConsumerRegReq{ChannelName: ch, ConsumerPID: uint64(self.Pid),
				ConsumerStartTime: self.StartTime, ConsumerID: id}))).To(BeEmpty())
		}
		count := func() uint64 { return p.call(&proto.DiscReq{ChannelName: ch}).(*proto.DiscAck).ConsumerCount }
		for range 2 {
			reg(c1, "a")
			reg(c1, "b")
			reg(c2, "")
		}
		Expect(count()).To(BeEquivalentTo(3))
		Expect(errCode(c1.call(&proto.ConsumerDeregReq{ChannelName: ch, ConsumerPID: uint64(self.Pid), ConsumerID: "b"}))).To(BeEmpty())
		Expect(errCode(c1.call(&proto.ConsumerDeregReq{ChannelName: ch, ConsumerPID: uint64(self.Pid), ConsumerID: "b"}))).To(Equal(proto.CodeNotRegistered))
		Expect(count()).To(BeEquivalentTo(2))
	})
})

var _ = Describe("consumers on another host (empty consumer_hostname)", Label("hostile"), func() {
	It("judges a heartbeating consumer by its heartbeats, never by /proc on the broker's host", func() {
		s := nullBroker(broker.Config{LivenessInterval: 50 * time.Millisecond, ConsumerTimeout: time.Minute})
		p, c := dialRaw(s.Endpoint()), dialRaw(s.Endpoint())
		ch := support.UniqueName("remote")
		register(p, ch, "", uint64(os.Getpid()))
		remote := deadPid() // alive on its own host, not here
		Expect(errCode(c.call(&proto.ConsumerRegReq{ChannelName: ch, ConsumerPID: remote}))).To(BeEmpty())
		c.req(&proto.ConsumerHeartbeatReq{ChannelName: ch, ConsumerPID: remote})
		By("an original (unversioned) local consumer whose pid is dead is swept: the sentinel")
		sentinel := remote - 1
		for proc.AlivePid(int(sentinel)) {
			sentinel--
		}
		typ, _ := c.rawCall("CONSUMER_REG_REQ", []byte(`{"channel_name":"`+ch+`","consumer_pid":`+fmt.Sprint(sentinel)+`}`))
		Expect(typ).To(Equal("CONSUMER_REG_ACK"))
		n, ok := p.recv().(*proto.ConsumerDiedNotify)
		Expect(ok).To(BeTrue())
		Expect(n.ConsumerPID).To(Equal(sentinel), "the heartbeating consumer was declared dead by /proc")
		Expect(s.Channels()).To(ConsistOf(HaveField("ConsumerCount", BeEquivalentTo(1))))
	})
})

var _ = Describe("CHANNEL_LIST with many channels", Label("hostile"), func() {
	It("pages: no cursor gives the first page and a next_cursor; following it lists every channel once, in order", func() {
		s := nullBroker(broker.Config{})
		c := dialRaw(s.Endpoint())
		const n = 2500
		pid := fmt.Sprint(os.Getpid())
		prefix := support.UniqueName("page")
		for i := range n {
			typ, rep := c.rawCall("REG_REQ", []byte(fmt.Sprintf(`{"channel_name":"%s-%05d","producer_pid":%s,"correlation_id":"r"}`, prefix, i, pid)))
			Expect(typ).To(Equal("REG_ACK"), "%v", rep)
		}
		typ, rep := c.rawCall("CHANNEL_LIST_REQ", []byte(`{"correlation_id":"first"}`))
		Expect(typ).To(Equal("CHANNEL_LIST_ACK"))
		first := rep["channels"].([]any)
		Expect(len(first)).To(BeNumerically("<", n), "the first page is bounded")
		Expect(rep).To(HaveKeyWithValue("next_cursor", Not(BeEmpty())))

		var seen []string
		cursor := ""
		for pages := 0; ; pages++ {
			Expect(pages).To(BeNumerically("<", n))
			body, _ := json.Marshal(map[string]any{"correlation_id": "pg", "cursor": cursor, "limit": 700})
			typ, rep := c.rawCall("CHANNEL_LIST_REQ", body)
			Expect(typ).To(Equal("CHANNEL_LIST_ACK"), "%v", rep)
			chans := rep["channels"].([]any)
			Expect(len(chans)).To(BeNumerically("<=", 700))
			for _, ch := range chans {
				seen = append(seen, ch.(map[string]any)["name"].(string))
			}
			next, _ := rep["next_cursor"].(string)
			if next == "" {
				break
			}
			cursor = next
		}
		Expect(seen).To(HaveLen(n))
		for i := 1; i < len(seen); i++ {
			Expect(seen[i-1] < seen[i]).To(BeTrue(), "order at %d", i)
		}
	})
})

var _ = Describe("log volume under a flood", Label("hostile"), func() {
	It("rate-limits a repeated warning and reports how many it suppressed", func() {
		logs := &logBuf{}
		s := nullBroker(broker.Config{Logger: slog.New(slog.NewTextHandler(logs, nil))})
		c := dialRaw(s.Endpoint())
		for i := range 1000 {
			typ, _ := c.rawCall("BOGUS_REQ", []byte(fmt.Sprintf(`{"correlation_id":"%d"}`, i)))
			Expect(typ).To(Equal("ERROR"))
		}
		Expect(strings.Count(logs.String(), "Unknown message type")).To(BeNumerically("<=", 20))
		Expect(s.Close()).To(Succeed())
		Expect(logs.String()).To(MatchRegexp(`suppressed=9[0-9][0-9]`))
	})

	It("logs a bounded number of lines when one consumer of 500 channels dies", func() {
		logs := &logBuf{}
		s := nullBroker(broker.Config{ChannelTimeout: -1, Logger: slog.New(slog.NewTextHandler(logs, nil))})
		c := dialRaw(s.Endpoint())
		victim := exec.Command("sleep", "600")
		victim.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		Expect(victim.Start()).To(Succeed())
		DeferCleanup(func() { _ = victim.Process.Kill(); _ = victim.Wait() })
		id, err := proc.Lookup(victim.Process.Pid)
		Expect(err).NotTo(HaveOccurred())
		const n = 500
		prefix := support.UniqueName("many")
		for i := range n {
			ch := fmt.Sprintf("%s-%03d", prefix, i)
			Expect(errCode(c.call(&proto.RegReq{ChannelName: ch, ProducerPID: uint64(os.Getpid())}))).To(BeEmpty())
			Expect(errCode(c.call(&proto.ConsumerRegReq{ChannelName: ch, ConsumerPID: uint64(id.Pid), ConsumerStartTime: id.StartTime}))).To(BeEmpty())
		}
		Expect(victim.Process.Kill()).To(Succeed())
		Eventually(func() uint64 { return s.Stats().DeadConsumers }).WithTimeout(30 * time.Second).Should(BeEquivalentTo(n))
		Expect(strings.Count(logs.String(), "Cat2 dead consumer")).To(BeNumerically("<=", 20))
		Expect(s.Close()).To(Succeed())
		Expect(logs.String()).To(MatchRegexp(`line="Cat2 dead consumer" suppressed=4[0-9][0-9]`))
	})
})
