package scenarios_test

import (
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/sim/scenario"
	"github.com/pylabhub/plh/sim/simtest"
	"github.com/pylabhub/plh/sim/verdict"
	"github.com/pylabhub/plh/suites/support"
)

func dur(s string) scenario.Duration {
	d, err := time.ParseDuration(s)
	Expect(err).NotTo(HaveOccurred())
	return scenario.Duration(d)
}

func bound(v float64) *scenario.Bound { b := scenario.Bound(v); return &b }

// pauseThenKill pauses target at 1 s for 1 s and kills it at 3.5 s.
func pauseThenKill(target string) []scenario.FaultSpec {
	return []scenario.FaultSpec{
		{ID: "pause", At: dur("1s"), Kind: scenario.FaultPause, Target: target, Duration: dur("1s")},
		{ID: "kill", At: dur("3500ms"), Kind: scenario.FaultKill, Target: target},
	}
}

var _ = Describe("users' own programs as nodes", func() {
	no := false

	It("runs a Go consumer built on hub (nodeevent) under a pause and a kill", func(ctx SpecContext) {
		s := &scenario.Scenario{
			Name:     "a Go consumer built on hub",
			Duration: dur("8s"),
			Hub:      &scenario.HubSpec{ChannelTimeout: dur("2s"), ConsumerTimeout: dur("2s")},
			Producers: []scenario.NodeSpec{{Name: "p", Channel: "cam", Pattern: "Pipeline", Shm: &no, Rate: 200,
				Heartbeat: dur("500ms")}},
			Consumers: []scenario.NodeSpec{{Name: "go", Channel: "cam", Pattern: "Pipeline", Shm: &no,
				Command: []string{goConsumerBin}}},
			Faults: pauseThenKill("go"),
			Expect: []scenario.ExpectSpec{
				{Name: "reads before the pause", Type: "metric", Metric: "read", Node: "go", To: dur("1s"), Min: bound(100)},
				{Name: "reads again after the resume", Type: "metric", Metric: "read", Node: "go", After: "pause:end",
					From: dur("300ms"), To: dur("1500ms"), Min: bound(100)},
				{Name: "the producer hears of the death", Type: "event", Kind: "consumer_died", Node: "p",
					Match: map[string]any{"reason": "process_dead"}, After: "kill", Within: dur("1s")},
				{Name: "no death declared before the kill", Type: "never", Kind: "consumer_died", Node: "p",
					Within: dur("3500ms")},
				{Name: "killed", Type: "exit", Node: "go", Reason: "killed"},
			},
		}
		res := engine().RunScenario(ctx, s)
		attachResult(res)
		Expect(res).To(simtest.Pass())
		Expect(res).To(simtest.HoldInvariant("registry_matches"))
		Expect(res).To(simtest.HoldInvariant("consumers_read"))
		Expect(res).To(simtest.HaveEventWithin("consumer_died", "p", time.Second, "kill"))
		expectCleanHost(res)
	}, SpecTimeout(2*time.Minute))

	It("supervises, pauses and kills a program that writes no events, and judges nothing it did not say", func(ctx SpecContext) {
		root, err := support.ModuleRoot()
		Expect(err).NotTo(HaveOccurred())
		s := &scenario.Scenario{
			Name:     "a silent Python producer",
			Duration: dur("8s"),
			Hub:      &scenario.HubSpec{ChannelTimeout: dur("2s"), ConsumerTimeout: dur("2s")},
			Producers: []scenario.NodeSpec{{Name: "py", Channel: "cam", Pattern: "Pipeline", Shm: &no, Rate: 200, SlotSize: 64,
				Command: []string{"/usr/bin/python3", "producer.py", "--quiet"}, Dir: filepath.Join(root, "examples", "python"),
				Events: scenario.EventsNone}},
			Consumers: []scenario.NodeSpec{{Name: "c", Channel: "cam", Pattern: "Pipeline", Shm: &no}},
			Faults:    pauseThenKill("py"),
			Expect: []scenario.ExpectSpec{
				{Name: "the consumer reads after the resume", Type: "metric", Metric: "read", Node: "c", After: "pause:end",
					From: dur("300ms"), To: dur("1500ms"), Min: bound(100)},
				{Name: "the consumer notices the kill", Type: "event", Kind: "producer_lost", Node: "c", After: "kill", Within: dur("2s")},
				{Name: "py wrote", Type: "metric", Metric: "written", Node: "py", Min: bound(1)},
				{Name: "killed", Type: "exit", Node: "py", Reason: "killed"},
			},
		}
		res := engine().RunScenario(ctx, s)
		attachResult(res)
		Expect(res).To(simtest.HaveVerdict("py wrote", verdict.StatusInconclusive))
		Expect(res).To(simtest.HaveVerdict("the consumer reads after the resume", verdict.StatusPass))
		Expect(res).To(simtest.HaveVerdict("the consumer notices the kill", verdict.StatusPass))
		Expect(res).To(simtest.HaveVerdict("killed", verdict.StatusPass))
		Expect(res).To(simtest.HoldInvariant("consumers_read"))
		Expect(res.Report.ExitCode).To(Equal(verdict.ExitInconclusive), "a run that could not judge everything is no pass: %s", res.Summary())
		expectCleanHost(res)
	}, SpecTimeout(2*time.Minute))
})
