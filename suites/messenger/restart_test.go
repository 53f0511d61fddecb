package messenger_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/suites/support"
)

// startHub starts a plh-hub process on endpoint (tcp://127.0.0.1:0 for a fresh
// port) with its admin shell on an ephemeral port and its CURVE key pair kept in
// keysDir (a restart with the same dir keeps the public key), waits for its
// ready event, remembers its public key and returns the process and the bound
// broker endpoint.
func startHub(endpoint, keysDir string) (*support.Proc, string) {
	return startHubWith(endpoint, keysDir, "--channel-timeout", "30s")
}

// startHubWith is startHub with more plh-hub arguments.
func startHubWith(endpoint, keysDir string, args ...string) (*support.Proc, string) {
	dir := GinkgoT().TempDir()
	cfg := filepath.Join(dir, "hub.json")
	Expect(os.WriteFile(cfg, []byte(`{"hub":{"admin_endpoint":"tcp://127.0.0.1:0"}}`), 0o600)).To(Succeed())
	p, ready := support.StartHub(bins["plh-hub"], []string{"PYLABHUB_CONFIG_FILE=" + cfg},
		append([]string{"--config", cfg, "--endpoint", endpoint, "--keys-dir", keysDir}, args...)...)
	Expect(ready.Str("pubkey")).To(HaveLen(40), "plh-hub serves CURVE by default")
	return p, ready.Str("endpoint")
}

// restartWatch records a Messenger's lost/reconnected callbacks.
type restartWatch struct {
	lost chan error
	back chan int
}

func watchRestart(m *hub.Messenger) restartWatch {
	w := restartWatch{lost: make(chan error, 8), back: make(chan int, 8)}
	m.OnBrokerLost(func(err error) { w.lost <- err })
	m.OnBrokerReconnected(func(n int) { w.back <- n })
	return w
}

// readyChannels returns the names of the channels a broker lists as Ready.
func readyChannels(m *hub.Messenger) func() ([]string, error) {
	return func() ([]string, error) {
		list, err := m.ListChannels(ctx5())
		var names []string
		for _, c := range list {
			if c.Status == proto.StatusReady {
				names = append(names, c.Name)
			}
		}
		return names, err
	}
}

var _ = Describe("Broker loss and restart (B-1, B-2)", func() {
	fast := hub.MessengerConfig{HeartbeatInterval: 200 * time.Millisecond}

	It("re-registers channels and consumers after an in-process broker restarts on the same port", func() {
		keys := GinkgoT().TempDir() // the restarted broker keeps its CURVE key
		cfg := brokerCfg()
		cfg.Curve.KeysDir = keys
		b, err := broker.Start(context.Background(), cfg)
		Expect(err).NotTo(HaveOccurred())
		ep := b.Endpoint()
		rememberKey(ep, b.PublicKey())
		DeferCleanup(func() { _ = b.Close() })
		prod := connected(ep, fast)
		cons := connected(ep, fast)
		pw, cw := watchRestart(prod), watchRestart(cons)
		chans := []string{uniq("r1"), uniq("r2"), uniq("r3")}
		for i, ch := range chans {
			Expect(prod.RegisterProducer(ctx5(), ch, hub.ProducerInfo{ShmName: ch, SchemaHash: []byte{byte(i)}, SchemaVersion: 3})).To(Succeed())
		}
		Expect(cons.RegisterConsumer(ctx5(), chans[0])).To(Succeed())

		Expect(b.Close()).To(Succeed())
		Eventually(pw.lost).WithTimeout(10 * time.Second).Should(Receive(MatchError(hub.ErrBrokerLost)))
		Eventually(cw.lost).WithTimeout(10 * time.Second).Should(Receive(MatchError(hub.ErrBrokerLost)))

		cfg.Endpoint = ep
		b2 := startBroker(cfg)
		Eventually(pw.back).WithTimeout(30 * time.Second).Should(Receive(Equal(3)))
		Eventually(cw.back).WithTimeout(30 * time.Second).Should(Receive(Equal(0)))
		Eventually(readyChannels(prod)).WithTimeout(10 * time.Second).Should(ConsistOf(chans))
		Eventually(consumerCount(prod, chans[0])).WithTimeout(10 * time.Second).Should(BeEquivalentTo(1))
		info, err := cons.Discover(ctx5(), chans[2])
		Expect(err).NotTo(HaveOccurred())
		Expect(info.ShmName).To(Equal(chans[2]))
		Expect(info.SchemaHash).To(Equal([]byte{2}))
		Expect(b2.Stats().Channels).To(Equal(3))
	})

	It("reports a paused plh-hub as lost after LostAfter (5 s: RequestTimeout, not two heartbeat periods) and recovers when it resumes", func() {
		p, ep := startHub("tcp://127.0.0.1:0", GinkgoT().TempDir())
		m := connected(ep, fast)
		w := watchRestart(m)
		ch := uniq("pause")
		Expect(m.RegisterProducer(ctx5(), ch, hub.ProducerInfo{})).To(Succeed())

		Expect(p.Signal(syscall.SIGSTOP)).To(Succeed())
		DeferCleanup(func() { _ = p.Signal(syscall.SIGCONT) })
		Eventually(w.lost).WithTimeout(10 * time.Second).Should(Receive(MatchError(ContainSubstring("silent"))))
		failsFast(func(ctx context.Context) error { _, err := m.Discover(ctx, ch); return err }, hub.ErrBrokerLost)

		Expect(p.Signal(syscall.SIGCONT)).To(Succeed())
		Eventually(w.back).WithTimeout(30 * time.Second).Should(Receive(Equal(1)))
		_, err := m.Discover(ctx5(), ch)
		Expect(err).NotTo(HaveOccurred())
	})

	It("survives SIGKILL of the plh-hub process: no client hangs, all channels come back (broker restart)", func() {
		keys := GinkgoT().TempDir()
		p, ep := startHub("tcp://127.0.0.1:0", keys)
		key := keyOf(ep)
		const producers, perProducer = 3, 4
		var all []string
		var ws []restartWatch
		var ms []*hub.Messenger
		for i := range producers {
			m := connected(ep, fast)
			ws = append(ws, watchRestart(m))
			ms = append(ms, m)
			for j := range perProducer {
				ch := uniq(fmt.Sprintf("k%d_%d", i, j))
				Expect(m.RegisterProducer(ctx5(), ch, hub.ProducerInfo{ShmName: ch, SchemaHash: []byte{7}})).To(Succeed())
				all = append(all, ch)
			}
		}
		cons := connected(ep, fast)
		cw := watchRestart(cons)
		Expect(cons.RegisterConsumer(ctx5(), all[0])).To(Succeed())

		// Callers keep calling through the whole outage; each call must return.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		calls, oks := 0, 0
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					_, err := ms[i%producers].Discover(ctx, all[i])
					cancel()
					mu.Lock()
					calls++
					if err == nil {
						oks++
					}
					mu.Unlock()
					if err != nil && !errors.Is(err, hub.ErrNotConnected) && !errors.Is(err, hub.ErrTimeout) &&
						!errors.Is(err, hub.ErrChannelNotFound) && !errors.Is(err, hub.ErrChannelNotReady) {
						Fail("unexpected error during the outage: " + err.Error())
					}
				}
			}()
		}
		DeferCleanup(func() { close(stop); wg.Wait() })

		p.Kill()
		for _, w := range ws {
			Eventually(w.lost).WithTimeout(10 * time.Second).Should(Receive(MatchError(hub.ErrBrokerLost)))
		}
		Eventually(cw.lost).WithTimeout(10 * time.Second).Should(Receive())

		startHub(ep, keys)
		Expect(keyOf(ep)).To(Equal(key), "the restarted plh-hub has another public key")
		for _, w := range ws {
			Eventually(w.back).WithTimeout(30 * time.Second).Should(Receive(Equal(perProducer)))
		}
		Eventually(cw.back).WithTimeout(30 * time.Second).Should(Receive())
		Eventually(readyChannels(cons)).WithTimeout(10 * time.Second).Should(ConsistOf(all))
		Eventually(consumerCount(ms[0], all[0])).WithTimeout(10 * time.Second).Should(BeEquivalentTo(1))
		mu.Lock()
		before := oks
		mu.Unlock()
		Eventually(func() int { mu.Lock(); defer mu.Unlock(); return oks }).WithTimeout(10*time.Second).
			Should(BeNumerically(">", before), "callers did not get answers again after the restart")
	})
})
