package hub_test

import (
	"context"
	"encoding/binary"
	"os"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/shm"
	"github.com/pylabhub/plh/suites/support"
)

const secret = 0xDEADBEEFCAFEBABE

// startBroker runs an in-process broker on an ephemeral port until the spec ends.
func startBroker(cfg broker.Config) *broker.Service {
	cfg.Endpoint = "tcp://127.0.0.1:0"
	s, err := broker.Start(context.Background(), cfg)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(s.Close)
	return s
}

// brokerAndMessenger starts a default (CURVE) in-process broker and a Messenger
// of this process connected to it, both closed at the end of the spec.
func brokerAndMessenger() (*broker.Service, *hub.Messenger) {
	s := startBroker(broker.Config{})
	return s, newMessenger(s, 0, proc.Identity{})
}

// newMessenger connects a Messenger (closed at the end of the spec). id, when
// non-zero, makes it act as another process.
func newMessenger(s *broker.Service, hb time.Duration, id proc.Identity) *hub.Messenger {
	m, err := hub.NewMessenger(hub.MessengerConfig{HeartbeatInterval: hb, Identity: id})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(m.Close)
	Expect(m.Connect(context.Background(), s.Endpoint(), s.PublicKey())).To(Succeed())
	return m
}

// shmCfg is the "shm cfg" of the behaviour catalogue.
func shmCfg() *shm.Config {
	return &shm.Config{PageSize: shm.Page4K, Capacity: 4, Policy: shm.PolicyRingBuffer, Sync: shm.LatestOnly,
		Checksum: shm.ChecksumEnforced, Secret: secret}
}

func u32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

type word struct{ V uint32 }

// newProducer creates a producer closed at the end of the spec and checks that
// its segment is gone afterwards.
func newProducer(m *hub.Messenger, opts hub.ProducerOptions) *hub.Producer {
	if opts.Channel == "" {
		opts.Channel = support.UniqueName("hub")
	}
	p, err := hub.NewProducer(context.Background(), m, opts)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		Expect(p.Close()).To(Succeed())
		_, err := os.Stat(shm.SegmentPath(opts.Channel))
		Expect(os.IsNotExist(err)).To(BeTrue(), "segment %s left behind", opts.Channel)
	})
	return p
}

func connect(m *hub.Messenger, opts hub.ConsumerOptions) *hub.Consumer {
	c, err := hub.Connect(context.Background(), m, opts)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(c.Close)
	return c
}

func recv(c *hub.Consumer, d time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return c.Recv(ctx)
}

// calls records callback invocations for assertions.
type calls[T any] struct {
	mu  sync.Mutex
	got []T
}

func (c *calls[T]) add(v T) { c.mu.Lock(); c.got = append(c.got, v); c.mu.Unlock() }
func (c *calls[T]) list() []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]T(nil), c.got...)
}
func (c *calls[T]) n() int { return len(c.list()) }

// node starts plh-node with args; it is killed at the end of the spec.
func node(name string, args ...string) *support.Proc {
	p, err := support.Start(name, GinkgoWriter, nil, bins["plh-node"], append([]string{"--name", name}, args...)...)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		if done, _ := p.Exited(); !done {
			p.Kill()
		}
		// A producer killed by the spec (or its failure) cannot unlink its segment.
		for i, a := range args {
			if a == "--channel" && i+1 < len(args) && strings.HasPrefix(args[i+1], "plh_test_") {
				_ = shm.Remove(args[i+1])
			}
		}
	})
	return p
}

func saw(p *support.Proc, kind string, match func(event.Event) bool) func() bool {
	return func() bool { _, ok := p.Find(kind, match); return ok }
}

func num(ev event.Event, k string) float64 { v, _ := ev.Num(k); return v }

func segmentsOf(prefix string) []string {
	ents, _ := os.ReadDir("/dev/shm")
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}
