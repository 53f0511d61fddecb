package scenarios_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/sim/report"
	"github.com/pylabhub/plh/sim/verdict"
)

// results reads the run folder's results.json.
func (r simRun) results() verdict.Report {
	b, err := os.ReadFile(filepath.Join(r.runFolder(), report.ResultsFile))
	Expect(err).NotTo(HaveOccurred(), r.stdout+r.stderr)
	var rep verdict.Report
	Expect(json.Unmarshal(b, &rep)).To(Succeed())
	return rep
}

// named returns the verdict called name.
func named(rep verdict.Report, name string) verdict.Verdict {
	for _, v := range rep.Expectations {
		if v.Name == name {
			return v
		}
	}
	Fail("no verdict named " + name)
	return verdict.Verdict{}
}

var _ = Describe("the built-in invariants and the resource watch", func() {
	testdata := func(f string) string {
		p, err := filepath.Abs(filepath.Join("testdata", f))
		Expect(err).NotTo(HaveOccurred())
		return p
	}

	// Issue 11, defect 7: the broker keeps a pidfd and a goroutine per
	// CONSUMER_REG/DEREG cycle of a live pid. This spec proves the resource
	// watch sees it: it expects the run to FAIL today. When the broker fix
	// lands it fails; then move testdata/consumer_churn.toml to scenarios/
	// (where it must pass) and delete this spec.
	It("fails a run whose hub keeps a descriptor per consumer registration", func(ctx SpecContext) {
		r := runSim(ctx, "run", testdata("consumer_churn.toml"))
		r.attach()
		Expect(r.code).To(Equal(verdict.ExitFail), r.stdout+r.stderr)
		rep := r.results()
		steady := named(rep, "invariant hub_resources_steady")
		Expect(steady.Status).To(Equal(verdict.StatusFail), steady.Message)
		Expect(steady.Evidence).To(HaveLen(2))
		fa, _ := steady.Evidence[0].Num("fds")
		fb, _ := steady.Evidence[1].Num("fds")
		Expect(fb-fa).To(BeNumerically(">=", 150), "200 cycles: about one fd each")
		Expect(named(rep, "the hub's descriptors do not grow with registrations").Status).To(Equal(verdict.StatusFail))
		Expect(named(rep, "invariant hub_resources_return").Status).To(Equal(verdict.StatusPass),
			"the pidfds go with the process: once every node ended the hub is back at its baseline")
	}, SpecTimeout(2*time.Minute))

})
