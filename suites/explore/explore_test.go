package explore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/sim"
	"github.com/pylabhub/plh/sim/report"
	"github.com/pylabhub/plh/sim/scenario"
	"github.com/pylabhub/plh/sim/verdict"
	"github.com/pylabhub/plh/suites/support"
)

// simCmd is a running plh-sim in its own process group.
type simCmd struct {
	cmd    *exec.Cmd
	so, se bytes.Buffer
	done   chan struct{}
	out    string
}

func startSim(bin, out string, args ...string) *simCmd {
	s := &simCmd{cmd: exec.Command(bin, args...), done: make(chan struct{}), out: out}
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	s.cmd.Stdout, s.cmd.Stderr = &s.so, &s.se
	Expect(s.cmd.Start()).To(Succeed())
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	DeferCleanup(func() {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	})
	return s
}

// wait waits for plh-sim's exit (SIGINT, then SIGKILL, if ctx ends first)
// and returns its status and output.
func (s *simCmd) wait(ctx context.Context) (int, string) {
	select {
	case <-s.done:
	case <-ctx.Done():
		_ = syscall.Kill(s.cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
	}
	output := s.so.String() + s.se.String()
	AddReportEntry("plh-sim output", output, ReportEntryVisibilityFailureOrVerbose)
	return s.cmd.ProcessState.ExitCode(), output
}

func testdata(f string) string {
	p, err := filepath.Abs(filepath.Join("testdata", f))
	Expect(err).NotTo(HaveOccurred())
	return p
}

// outDir is a temporary folder for plh-sim's --out; when the spec fails its
// runs.tsv and summary.txt go into the report.
func outDir() string {
	out := GinkgoT().TempDir()
	DeferCleanup(func() {
		if !CurrentSpecReport().Failed() {
			return
		}
		for _, f := range []string{sim.RunsFile, sim.SummaryFile} {
			m, _ := filepath.Glob(filepath.Join(out, "explore-*", f))
			for _, p := range m {
				if b, err := os.ReadFile(p); err == nil {
					AddReportEntry(f, string(b))
				}
			}
		}
	})
	return out
}

// exploreDir returns the explore folder under out ("" while there is none).
func exploreDir(out string) string {
	m, _ := filepath.Glob(filepath.Join(out, "explore-*"))
	if len(m) == 0 {
		return ""
	}
	return m[0]
}

// aRunIsUnderWay reports whether a run of the exploration under out has a
// consumer started (its log exists).
func aRunIsUnderWay(out string) bool {
	m, _ := filepath.Glob(filepath.Join(out, "explore-*", "runs", "*", "logs", "c1.log"))
	return len(m) > 0
}

// spawnedPids lists the pids of every process any run under out started.
func spawnedPids(out string) []int {
	files, _ := filepath.Glob(filepath.Join(out, "explore-*", "*", "*", report.EventsFile))
	var pids []int
	for _, f := range files {
		evs, err := report.ReadEvents(f)
		Expect(err).NotTo(HaveOccurred())
		for _, ev := range evs {
			if ev.Node == scenario.EngineName && ev.Kind == "spawned" {
				pid, _ := ev.Num("pid")
				pids = append(pids, int(pid))
			}
		}
	}
	return pids
}

// expectNothingLeft: no process any run started is alive, no process
// mentions the explore folder, and no segment named by owner's runs is in
// /dev/shm (channels are plh_<channel>_<owner pid>_...).
func expectNothingLeft(out string, owner int) {
	pids := spawnedPids(out)
	Expect(pids).NotTo(BeEmpty(), "no run under %s started a process", out)
	Eventually(func() []int {
		var alive []int
		for _, pid := range pids {
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				alive = append(alive, pid)
			}
		}
		return alive
	}).WithTimeout(10*time.Second).Should(BeEmpty(), "processes of the runs still alive")
	Eventually(func() []string {
		var left []string
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(out)) {
				left = append(left, p+": "+strings.ReplaceAll(string(b), "\x00", " "))
			}
		}
		return left
	}).WithTimeout(10*time.Second).Should(BeEmpty(), "processes mentioning the explore folder")
	Eventually(func() []string {
		m, _ := filepath.Glob(fmt.Sprintf("/dev/shm/plh_*_%d_*", owner))
		return m
	}).WithTimeout(10*time.Second).Should(BeEmpty(), "segments left in /dev/shm")
}

var shrunkLine = regexp.MustCompile(`failed on run (\d+); shrunk from (\d+) faults to (\d+) in (\d+) re-runs; (.*)`)

var _ = Describe("plh-sim explore", func() {
	It("finds the planted CONSUMER_DEREG defect within its default budget and shrinks it to at most 2 faults; the shrunk schedule replayed fails the same way",
		func(ctx SpecContext) {
			out := outDir()
			start := time.Now()
			code, output := startSim(bins["seeded"], out, "explore", "--seed", "1", "--out", out, testdata("small.toml")).wait(ctx)
			Expect(code).To(Equal(verdict.ExitFail), output)
			dir := exploreDir(out)
			summary, err := os.ReadFile(filepath.Join(dir, sim.SummaryFile))
			Expect(err).NotTo(HaveOccurred())
			m := shrunkLine.FindStringSubmatch(string(summary))
			Expect(m).NotTo(BeNil(), "no shrink line in summary.txt:\n%s", summary)
			from, _ := strconv.Atoi(m[2])
			to, _ := strconv.Atoi(m[3])
			Expect(to).To(BeNumerically("<=", 2), "shrunk to %d faults:\n%s", to, summary)
			Expect(to).To(BeNumerically("<=", from))
			fmt.Fprintf(GinkgoWriter, "seeded defect: found on run %s after %v; shrunk %d -> %d faults in %s re-runs\n",
				m[1], time.Since(start).Round(time.Second), from, to, m[4])

			minimal := filepath.Join(dir, sim.ShrinkDir, sim.MinimalDir)
			for _, f := range []string{report.ResolvedFile, report.ReplayFile, "report.txt"} {
				Expect(filepath.Join(minimal, f)).To(BeAnExistingFile())
			}
			rtxt, err := os.ReadFile(filepath.Join(minimal, "report.txt"))
			Expect(err).NotTo(HaveOccurred())
			_, names, ok := strings.Cut(string(rtxt), "still fails = a run fails one of: ")
			Expect(ok).To(BeTrue(), string(rtxt))
			names, _, _ = strings.Cut(names, "\n")
			want := strings.Split(names, "; ")

			// Replayed, the minimal schedule fails one of the same verdicts
			// in one of 3 runs (the definition of "still fails").
			var got [][]string
			for try := 0; try < sim.DefaultShrinkTries; try++ {
				rout := outDir()
				code, output := startSim(bins["seeded"], rout, "replay", "--quiet", "--out", rout, minimal).wait(ctx)
				names := failedIn(rout)
				got = append(got, names)
				if code == verdict.ExitFail && overlaps(names, want) {
					return
				}
				AddReportEntry(fmt.Sprintf("replay %d", try+1), output)
			}
			Fail(fmt.Sprintf("the shrunk schedule replayed 3 times never failed one of %q: failures %q", want, got))
		}, SpecTimeout(8*time.Minute))

	It("finds nothing on the real build in a short budget", func(ctx SpecContext) {
		out := outDir()
		code, output := startSim(bins["real"], out, "explore", "--seed", "1", "--time", "25s", "--no-shrink", "--out", out,
			testdata("small.toml")).wait(ctx)
		Expect(code).To(Equal(verdict.ExitPass), output)
		dir := exploreDir(out)
		summary, err := os.ReadFile(filepath.Join(dir, sim.SummaryFile))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(summary)).To(ContainSubstring("no failure found"))
		cov, err := os.ReadFile(filepath.Join(dir, sim.CoverageFile))
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.Count(string(cov), "\n")).To(BeNumerically(">=", 3), "coverage.tsv: a header and a line per run:\n%s", cov)
		expectNothingLeft(out, -1)
	}, SpecTimeout(3*time.Minute))

	It("leaves no process and no segment when interrupted with SIGINT mid-run", func(ctx SpecContext) {
		out := outDir()
		s := startSim(bins["real"], out, "explore", "--seed", "2", "--out", out, testdata("small.toml"))
		Eventually(func() bool { return aRunIsUnderWay(out) }).WithTimeout(60*time.Second).WithPolling(20*time.Millisecond).
			Should(BeTrue(), "no run started")
		Expect(s.cmd.Process.Signal(syscall.SIGINT)).To(Succeed())
		code, output := s.wait(ctx)
		Expect(code).To(Equal(verdict.ExitInconclusive), output)
		Expect(output).To(ContainSubstring("interrupted"))
		expectNothingLeft(out, s.cmd.Process.Pid)
	}, SpecTimeout(2*time.Minute))

	It("in process: cancelled mid-run, Explore returns with every process reaped and leaks no goroutine", func(ctx SpecContext) {
		out := outDir()
		vs, err := scenario.Load(testdata("small.toml"))
		Expect(err).NotTo(HaveOccurred())
		bin := bins["real"]
		cfg := sim.ExploreConfig{Seed: 3, Engine: sim.Config{HubCmd: []string{bin, "hub"}, NodeCmd: []string{bin, "node"},
			JanitorCmd: []string{bin, "janitor"}, OutDir: out}}
		ectx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			defer GinkgoRecover()
			Eventually(ectx, func() bool { return aRunIsUnderWay(out) }).WithTimeout(60*time.Second).
				WithPolling(20*time.Millisecond).Should(BeTrue(), "no run started")
			cancel()
		}()
		res, err := sim.Explore(ectx, cfg, vs[0])
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Interrupted).To(BeTrue())
		Expect(res.FailedRun).To(BeZero())
		expectNothingLeft(out, os.Getpid())
	}, SpecTimeout(2*time.Minute))

	It("explores the default system for 10 minutes on the real build without a failure", Label("soak"), func(ctx SpecContext) {
		root, err := support.ModuleRoot()
		Expect(err).NotTo(HaveOccurred())
		out := outDir()
		code, output := startSim(bins["real"], out, "explore", "--time", "10m", "--out", out,
			filepath.Join(root, "scenarios", "explore", "default.toml")).wait(ctx)
		Expect(code).To(Equal(verdict.ExitPass), output)
	}, SpecTimeout(15*time.Minute))
})

// failedIn returns the failed verdict names of the run folder under out.
func failedIn(out string) []string {
	m, _ := filepath.Glob(filepath.Join(out, "*", report.ResultsFile))
	if len(m) == 0 {
		return nil
	}
	b, err := os.ReadFile(m[0])
	Expect(err).NotTo(HaveOccurred())
	var rep verdict.Report
	Expect(json.Unmarshal(b, &rep)).To(Succeed())
	var names []string
	for _, v := range rep.Expectations {
		if v.Status == verdict.StatusFail {
			names = append(names, v.Name)
		}
	}
	return names
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}
