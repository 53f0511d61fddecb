package broker_test

import (
	"context"
	"os"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/suites/support"
)

func TestBroker(t *testing.T) {
	RegisterFailHandler(Fail)
	support.UseDefaultWaits()
	RunSpecs(t, "Broker Suite")
}

var hubBin string

var _ = SynchronizedBeforeSuite(func() []byte {
	dir, err := os.MkdirTemp("", "plh-broker-suite")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, dir)
	bins, err := support.Build(dir, true, "cmd/plh-hub")
	Expect(err).NotTo(HaveOccurred())
	return []byte(bins["plh-hub"])
}, func(b []byte) { hubBin = string(b) })

var _ = AfterSuite(func() { support.KillAll() })

var _ = BeforeEach(support.CheckLeaks)

// startBroker runs an in-process broker on an ephemeral port.
func startBroker(cfg broker.Config) *broker.Service {
	cfg.Endpoint = "tcp://127.0.0.1:0"
	var readyEP string
	cfg.OnReady = func(ep, _ string) { readyEP = ep }
	s, err := broker.Start(context.Background(), cfg)
	Expect(err).NotTo(HaveOccurred())
	Expect(readyEP).To(Equal(s.Endpoint()))
	DeferCleanup(s.Close)
	rememberKey(s.Endpoint(), s.PublicKey())
	return s
}

// The broker keys are recorded by startBroker and startHub (support.RememberKey),
// so raw clients and Messengers speak each broker's security (CURVE by default).
var rememberKey, keyOf = support.RememberKey, support.KeyOf

// rawClient is a DEALER speaking hand-made frames, like the original tests, over
// CURVE when the broker has a key (the default), NULL otherwise.
type rawClient struct {
	d   *wire.Dealer
	seq int
}

func dialRaw(ep string) *rawClient {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sec, err := support.CurveClient(keyOf(ep))
	Expect(err).NotTo(HaveOccurred())
	d, err := wire.Dial(ctx, wire.Config{Security: sec}, ep)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(d.Close)
	return &rawClient{d: d}
}

func (c *rawClient) sendFrames(frames ...[]byte) {
	Expect(c.d.Send(frames...)).To(Succeed())
}

func (c *rawClient) send(m proto.Message) {
	f, err := proto.Encode(m)
	Expect(err).NotTo(HaveOccurred())
	c.sendFrames(f...)
}

// req stamps a request (correlation id + version) and sends it.
func (c *rawClient) req(r proto.Request) string {
	c.seq++
	id := "corr-" + string(rune('a'+c.seq%26)) + time.Now().Format("150405.000000")
	proto.Stamp(r, id)
	c.send(r)
	return id
}

func (c *rawClient) recv() proto.Message {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := c.d.Recv(ctx)
	Expect(err).NotTo(HaveOccurred())
	m, err := proto.DecodeFrames(f)
	Expect(err).NotTo(HaveOccurred())
	return m
}

// call sends r and returns the reply, checking correlation and broker version.
func (c *rawClient) call(r proto.Request) proto.Reply {
	id := c.req(r)
	m := c.recv()
	rep, ok := proto.AsReply(m)
	Expect(ok).To(BeTrue(), "got %T", m)
	Expect(proto.CorrelationOf(rep)).To(Equal(id))
	return rep
}

func errCode(r proto.Reply) proto.Code {
	e, ok := r.(*proto.ErrorReply)
	if !ok {
		return ""
	}
	Expect(e.Status).To(Equal(proto.StatusError))
	return e.ErrorCode
}
