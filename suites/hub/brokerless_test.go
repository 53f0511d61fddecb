package hub_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/suites/support"
)

// B-5: no broker anywhere. Producers and consumers are plh-node processes
// given only --discovery-dir; they find each other through the producer's
// discovery record and talk over the peer link.
var _ = Describe("B-5 brokerless discovery (no broker, real processes)", func() {
	var dir string
	BeforeEach(func() { dir = filepath.Join(GinkgoT().TempDir(), "channels") })

	idle := func() *hub.Messenger {
		m, err := hub.NewMessenger(hub.MessengerConfig{DiscoveryDir: dir})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(m.Close)
		return m
	}
	reads := func(p *support.Proc) func() float64 {
		return func() float64 {
			total := 0.0
			for _, e := range p.Events() {
				if e.Kind == "read" {
					total += num(e, "count")
				}
			}
			return total
		}
	}

	It("a producer and two consumers find each other; a killed consumer is dropped through the peer link; the record goes with the producer", func() {
		ch := support.UniqueName("nobroker")
		p := node("p", "--role", "producer", "--discovery-dir", dir, "--channel", ch, "--shm", "--policy", "latest",
			"--secret", "0xb5", "--rate", "200", "--peer-timeout", "500ms")
		Eventually(saw(p, "ready", nil)).WithTimeout(10 * time.Second).Should(BeTrue())
		record := filepath.Join(dir, ch+".json")
		fi, err := os.Stat(record)
		Expect(err).NotTo(HaveOccurred())
		Expect(fi.Mode().Perm()).To(Equal(os.FileMode(0o600)))
		data, err := os.ReadFile(record)
		Expect(err).NotTo(HaveOccurred())
		var rec map[string]any
		Expect(json.Unmarshal(data, &rec)).To(Succeed())
		Expect(rec["producer_pid"]).To(BeEquivalentTo(p.Cmd.Process.Pid))
		Expect(rec["shm_name"]).To(Equal(ch))
		Expect(rec["zmq_pubkey"]).To(HaveLen(40), "the peer link's CURVE key travels in the record")

		common := []string{"--role", "consumer", "--discovery-dir", dir, "--channel", ch, "--shm", "--secret", "0xb5", "--peer-heartbeat", "100ms"}
		c1, c2 := node("c1", common...), node("c2", common...)
		for _, c := range []*support.Proc{c1, c2} {
			Eventually(saw(c, "attached", func(e event.Event) bool { return e.Fields["shm"] == true })).WithTimeout(10 * time.Second).Should(BeTrue())
			Eventually(reads(c)).WithTimeout(10 * time.Second).Should(BeNumerically(">=", 10))
		}
		victim := float64(c1.Cmd.Process.Pid)
		c1.Kill()
		Eventually(saw(p, "consumer_died", func(e event.Event) bool {
			return num(e, "consumer_pid") == victim && e.Str("reason") == hub.ReasonPeerTimeout
		})).WithTimeout(5 * time.Second).Should(BeTrue())
		before := reads(c2)()
		Eventually(reads(c2)).WithTimeout(10*time.Second).Should(BeNumerically(">=", before+50), "the survivor keeps reading")
		Expect(p.Count("consumer_died", nil)).To(Equal(1), "nobody else is declared dead")

		Expect(c2.Stop(10 * time.Second)).To(Succeed())
		Expect(p.Stop(10 * time.Second)).To(Succeed())
		_, err = os.Stat(record)
		Expect(os.IsNotExist(err)).To(BeTrue(), "the record is removed when the producer closes")
		Expect(segmentsOf(ch)).To(BeEmpty())
	})

	It("a killed producer's record is ignored and swept; a consumer follows its successor", func() {
		ch := support.UniqueName("nobroker_follow")
		p1 := node("p1", "--role", "producer", "--discovery-dir", dir, "--channel", ch, "--rate", "200")
		Eventually(saw(p1, "ready", nil)).WithTimeout(10 * time.Second).Should(BeTrue())
		c := node("c", "--role", "consumer", "--discovery-dir", dir, "--channel", ch, "--peer-heartbeat", "100ms")
		Eventually(reads(c)).WithTimeout(10 * time.Second).Should(BeNumerically(">=", 10))
		p1.Kill()
		<-p1.Done()
		record := filepath.Join(dir, ch+".json")
		Expect(record).To(BeAnExistingFile(), "a killed producer cannot remove its record")

		_, err := idle().Discover(context.Background(), ch)
		Expect(err).To(MatchError(hub.ErrChannelNotFound))
		Expect(err.Error()).To(ContainSubstring("dead"))
		Expect(record).NotTo(BeAnExistingFile(), "the dead record is swept")

		p2 := node("p2", "--role", "producer", "--discovery-dir", dir, "--channel", ch, "--rate", "200")
		Eventually(saw(p2, "ready", nil)).WithTimeout(10 * time.Second).Should(BeTrue())
		successor := float64(p2.Cmd.Process.Pid)
		Eventually(saw(c, "producer_restarted", func(e event.Event) bool { return num(e, "producer_pid") == successor })).
			WithTimeout(15 * time.Second).Should(BeTrue())
		Eventually(func() bool {
			_, ok := c.Find("read", func(e event.Event) bool { return num(e, "from_pid") == successor })
			return ok
		}).WithTimeout(10*time.Second).Should(BeTrue(), "the consumer reads the successor's messages")
	})

	It("a corrupt record is a clear error naming the file, and a second producer of a live channel is refused", func() {
		ch := support.UniqueName("nobroker_bad")
		Expect(os.MkdirAll(dir, 0o700)).To(Succeed())
		record := filepath.Join(dir, ch+".json")
		Expect(os.WriteFile(record, []byte(`{"format":1,"channel_name":`), 0o600)).To(Succeed())
		_, err := hub.Connect(context.Background(), idle(), hub.ConsumerOptions{Channel: ch, Timeout: 2 * time.Second})
		Expect(err).To(MatchError(hub.ErrBadRecord))
		Expect(err.Error()).To(ContainSubstring(record))
		Expect(os.Remove(record)).To(Succeed())

		p := node("p", "--role", "producer", "--discovery-dir", dir, "--channel", ch)
		Eventually(saw(p, "ready", nil)).WithTimeout(10 * time.Second).Should(BeTrue())
		_, err = hub.NewProducer(context.Background(), idle(), hub.ProducerOptions{Channel: ch})
		Expect(err).To(MatchError(hub.ErrChannelInUse))
		rival := node("rival", "--role", "producer", "--discovery-dir", dir, "--channel", ch)
		Eventually(rival.Done()).WithTimeout(10 * time.Second).Should(BeClosed())
		Expect(saw(rival, "error", func(e event.Event) bool { return e.Str("op") == "create_producer" })()).To(BeTrue())
	})
})
