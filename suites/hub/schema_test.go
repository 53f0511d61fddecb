package hub_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/suites/support"
)

var (
	imuV1 = hub.Schema{Name: "imu", Version: proto.PackVersion(1, 0, 0), BLDS: "t:u64;x:f32"}
	imuV2 = hub.Schema{Name: "imu", Version: proto.PackVersion(1, 1, 0), BLDS: "t:u64;x:f32;y:f32"}
)

var _ = Describe("Schema registry (B-9)", func() {
	It("returns the descriptor on discovery and checks a consumer's expectation, naming the first differing field", func() {
		s, m := brokerAndMessenger()
		p := newProducer(m, hub.ProducerOptions{Schema: imuV1, SchemaHash: []byte{1}})
		info, err := m.Discover(context.Background(), p.Channel())
		Expect(err).NotTo(HaveOccurred())
		Expect(info.Schema).To(Equal(imuV1))
		Expect(info.SchemaVersion).To(Equal(imuV1.Version))

		c := connect(m, hub.ConsumerOptions{Channel: p.Channel(), ExpectedSchema: &imuV1})
		Expect(p.Send(context.Background(), u32(7))).To(Succeed())
		Expect(recv(c, 2*time.Second)).To(Equal(u32(7)))

		_, err = hub.Connect(context.Background(), m, hub.ConsumerOptions{Channel: p.Channel(), ExpectedSchema: &imuV2})
		Expect(err).To(MatchError(hub.ErrSchemaMismatch))
		Expect(err).To(MatchError(proto.ErrSchemaIncompatible))
		Expect(err.Error()).To(ContainSubstring(`field 2 "y" missing`))
		other := hub.Schema{Name: "imu", Version: imuV1.Version, BLDS: "t:u64;x:f64"}
		_, err = hub.Connect(context.Background(), m, hub.ConsumerOptions{Channel: p.Channel(), ExpectedSchema: &other})
		Expect(err).To(MatchError(hub.ErrSchemaMismatch))
		Expect(err.Error()).To(ContainSubstring(`field 1 "x": "x:f32", expected "x:f64"`))

		bare := newProducer(m, hub.ProducerOptions{})
		_, err = hub.Connect(context.Background(), m, hub.ConsumerOptions{Channel: bare.Channel(), ExpectedSchema: &imuV1})
		Expect(err).To(MatchError(hub.ErrSchemaMismatch))
		Expect(err.Error()).To(ContainSubstring("registered no schema descriptor"))
		Expect(s.Schemas()).To(ContainElement(HaveField("Schema", imuV1)))
	})

	It("lets a producer register a compatible upgrade of a channel and refuses an incompatible one", func() {
		s, m := brokerAndMessenger()
		p := newProducer(m, hub.ProducerOptions{Schema: imuV1, SchemaHash: []byte{1}})
		c := connect(m, hub.ConsumerOptions{Channel: p.Channel(), ExpectedSchema: &imuV1})
		Expect(c.Valid()).To(BeTrue())
		m2 := newMessenger(s, 0, proc.Identity{Pid: os.Getpid() + 100000})

		bad := hub.Schema{Name: "imu", Version: imuV1.Version, BLDS: imuV2.BLDS}
		_, err := hub.NewProducer(context.Background(), m2, hub.ProducerOptions{Channel: p.Channel(), Schema: bad, SchemaHash: []byte{2}})
		Expect(err).To(MatchError(hub.ErrSchemaMismatch))
		Expect(err.Error()).To(ContainSubstring(`field 2 "y" appended without a higher minor version`))

		up := newProducer(m2, hub.ProducerOptions{Channel: p.Channel(), Schema: imuV2, SchemaHash: []byte{2}})
		info, err := m.Discover(context.Background(), up.Channel())
		Expect(err).NotTo(HaveOccurred())
		Expect(info.Schema).To(Equal(imuV2))
		Expect(info.ConsumerCount).To(BeNumerically("==", 1), "the consumers are kept")
		// A consumer still reading version 1.0 is compatible with 1.1 (fields appended).
		c1 := connect(m2, hub.ConsumerOptions{Channel: up.Channel(), ExpectedSchema: &imuV1})
		Expect(c1.Valid()).To(BeTrue())
	})
})

var _ = Describe("Logical channel names (B-21)", func() {
	It("finds, joins and notifies a channel whose producer used a display name", func() {
		s, m := brokerAndMessenger()
		base := support.UniqueName("logical")
		p := newProducer(m, hub.ProducerOptions{Channel: base + " | pid:42-0"})
		closing := make(chan string, 1)
		c := connect(m, hub.ConsumerOptions{Channel: base, Callbacks: hub.ConsumerCallbacks{
			OnChannelClosing: func(reason string) { closing <- reason }}})
		Expect(p.Send(context.Background(), u32(9))).To(Succeed())
		Expect(recv(c, 2*time.Second)).To(Equal(u32(9)))
		Expect(s.CloseChannel(base + " | pid:1-1")).To(Succeed())
		Eventually(closing).WithTimeout(5 * time.Second).Should(Receive(Equal(proto.ReasonExplicitClose)))
	})
})

var _ = Describe("Messenger protocol trace (B-13)", func() {
	It("writes every control message with correlation id and round trip, never a body, and switches at run time", func() {
		s := startBroker(broker.Config{})
		path := filepath.Join(GinkgoT().TempDir(), "messenger.jsonl")
		m, err := hub.NewMessenger(hub.MessengerConfig{Trace: hub.TraceConfig{On: true, Path: path}, PingInterval: -1, HeartbeatInterval: -1})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(m.Close)
		Expect(m.Connect(context.Background(), s.Endpoint(), s.PublicKey())).To(Succeed())
		name := support.UniqueName("traced")
		Expect(m.RegisterProducer(context.Background(), name, hub.ProducerInfo{Metadata: map[string]any{"password": "hunter2"}})).To(Succeed())
		Expect(m.SetTrace(hub.TraceConfig{})).To(Succeed())
		_, _ = m.Discover(context.Background(), name)
		st := m.TraceStatus()
		Expect(st.On).To(BeFalse())
		raw, err := os.ReadFile(path)
		Expect(err).NotTo(HaveOccurred())
		text := string(raw)
		Expect(text).NotTo(ContainSubstring("hunter2"))
		Expect(text).NotTo(ContainSubstring("DISC_REQ"))
		var reg, ack string
		for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
			if strings.Contains(l, `"type":"REG_REQ"`) {
				reg = l
			}
			if strings.Contains(l, `"type":"REG_ACK"`) {
				ack = l
			}
		}
		Expect(reg).To(And(ContainSubstring(`"side":"messenger"`), ContainSubstring(`"dir":"out"`), ContainSubstring(`"channel":"`+name+`"`), ContainSubstring(`"peer":"`+s.Endpoint()+`"`)))
		Expect(ack).To(And(ContainSubstring(`"dir":"in"`), ContainSubstring(`"elapsed_us":`), ContainSubstring(`"correlation_id":"`)))
		Expect(m.SetTrace(hub.TraceConfig{On: true, Path: filepath.Join(path, "no")})).To(MatchError(hub.ErrInvalidArgument))
	})
})
