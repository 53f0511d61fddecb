package scenarios_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/chaos"
	"github.com/pylabhub/plh/sim/report"
	"github.com/pylabhub/plh/sim/simtest"
	"github.com/pylabhub/plh/sim/verdict"
	"github.com/pylabhub/plh/suites/support"
)

// simRun is one finished plh-sim invocation.
type simRun struct {
	code           int
	stdout, stderr string
	out            string // --out folder
}

// runSim runs plh-sim with args (plus --out and --quiet for run) in its own
// process group, killed with its group if ctx ends.
func runSim(ctx context.Context, args ...string) simRun {
	out := GinkgoT().TempDir()
	if args[0] == "run" || args[0] == "replay" {
		args = append([]string{args[0], "--quiet", "--out", out}, args[1:]...)
	}
	cmd := exec.Command(simBin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	Expect(cmd.Start()).To(Succeed())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-ctx.Done():
		// Interrupt like a user would: plh-sim stops its processes and writes the folder.
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	return simRun{code: cmd.ProcessState.ExitCode(), stdout: so.String(), stderr: se.String(), out: out}
}

// runFolder returns the single run folder under r.out.
func (r simRun) runFolder() string {
	dirs, _ := filepath.Glob(filepath.Join(r.out, "*", report.ResultsFile))
	if len(dirs) == 0 {
		return ""
	}
	return filepath.Dir(dirs[0])
}

// attach puts the run folder's results and logs into the report (shown in the
// JUnit report when the spec fails).
func (r simRun) attach() {
	AddReportEntry("plh-sim output", r.stdout+r.stderr, ReportEntryVisibilityFailureOrVerbose)
	attachFolder(r.runFolder())
}

// attachFolder puts a run folder's path, results.json and log tails into the
// report (shown when the spec fails).
func attachFolder(dir string) {
	if dir == "" {
		return
	}
	AddReportEntry("run folder", dir, ReportEntryVisibilityFailureOrVerbose)
	if b, err := os.ReadFile(filepath.Join(dir, report.ResultsFile)); err == nil {
		AddReportEntry("results.json", string(b), ReportEntryVisibilityFailureOrVerbose)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
	for _, l := range logs {
		if b, err := os.ReadFile(l); err == nil {
			AddReportEntry("logs/"+filepath.Base(l), tail(string(b), 4000), ReportEntryVisibilityFailureOrVerbose)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a polling reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// skipWithoutHosts skips a scenario with [[hosts]] where hosts cannot be made
// (not root, iproute2 missing), printing why.
func skipWithoutHosts(file string) {
	b, err := os.ReadFile(file)
	Expect(err).NotTo(HaveOccurred())
	if !bytes.Contains(b, []byte("[[hosts]]")) {
		return
	}
	if err := chaos.HostsSupported(); err != nil {
		fmt.Fprintf(os.Stderr, "skipping %s: %v\n", filepath.Base(file), err)
		Skip(fmt.Sprintf("%s needs hosts: %v", filepath.Base(file), err))
	}
}

// expectCleanHost checks that no segment of the run's channels is left.
func expectCleanHost(res *simtest.Result) {
	Expect(res.Report).NotTo(BeNil(), "no report: %v", res.Err)
	for _, actual := range res.Report.Channels {
		Expect(filepath.Join("/dev/shm", actual)).NotTo(BeAnExistingFile(), "run folder: %s", res.Dir)
		later, _ := filepath.Glob(filepath.Join("/dev/shm", actual) + ".remap-*") // later layout generations (B-19)
		Expect(later).To(BeEmpty(), "run folder: %s", res.Dir)
	}
}

// attachResult puts an in-process run's folder, results and logs into the
// report (shown when the spec fails).
func attachResult(res *simtest.Result) {
	if res.Err != nil {
		AddReportEntry("error", res.Err.Error(), ReportEntryVisibilityFailureOrVerbose)
	}
	attachFolder(res.Dir)
}

var scenarioFiles = func() []string {
	root, err := support.ModuleRoot()
	if err != nil {
		panic(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "scenarios", "*.toml"))
	return files
}()

var _ = Describe("every scenario in scenarios/", func() {
	It("has files to run", func() {
		Expect(len(scenarioFiles)).To(BeNumerically(">=", 11))
	})
	for _, file := range scenarioFiles {
		name := strings.TrimSuffix(filepath.Base(file), ".toml")
		It(name+" passes", Label("scenario", name), func(ctx SpecContext) {
			skipWithoutHosts(file)
			res := engine().RunFile(ctx, file)
			attachResult(res)
			Expect(res).To(simtest.Pass())
			expectCleanHost(res)
		}, SpecTimeout(2*time.Minute))
	}
})

var _ = Describe("the harness itself", func() {
	testdata := func(f string) string {
		p, err := filepath.Abs(filepath.Join("testdata", f))
		Expect(err).NotTo(HaveOccurred())
		return p
	}

	It("reports an expectation that cannot hold with exit 1 and evidence", func(ctx SpecContext) {
		res := engine().RunFile(ctx, testdata("must_fail.toml"))
		attachResult(res)
		Expect(res).NotTo(simtest.Pass())
		Expect(res).To(simtest.HaveVerdict("an impossible notification", verdict.StatusFail))
		Expect(res.Report.ExitCode).To(Equal(verdict.ExitFail))
		Expect(res.Report.Expectations[0].Name).To(Equal("an impossible notification"))
		b, err := os.ReadFile(filepath.Join(res.Dir, report.ResultsFile))
		Expect(err).NotTo(HaveOccurred())
		var rep verdict.Report
		Expect(json.Unmarshal(b, &rep)).To(Succeed())
		Expect(rep.Status).To(Equal(verdict.StatusFail))
		junit, err := os.ReadFile(filepath.Join(res.Dir, report.JUnitFile))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(junit)).To(ContainSubstring(`failures="1"`))
		for _, f := range []string{report.ResolvedFile, report.EventsFile, report.TimelineFile, report.ReplayFile, "logs/hub.log"} {
			Expect(filepath.Join(res.Dir, f)).To(BeAnExistingFile())
		}
	}, SpecTimeout(time.Minute))

	DescribeTable("rejects a bad file with exit 3, naming file, line and key",
		func(ctx SpecContext, file, where, key, why string) {
			r := runSim(ctx, "run", testdata(file))
			Expect(r.code).To(Equal(verdict.ExitError), r.stdout+r.stderr)
			Expect(r.stderr).To(ContainSubstring(where))
			Expect(r.stderr).To(ContainSubstring(key))
			Expect(r.stderr).To(ContainSubstring(why))
			Expect(r.runFolder()).To(BeEmpty(), "a bad file must not start a run")
			v := runSim(ctx, "validate", testdata(file))
			Expect(v.code).To(Equal(verdict.ExitError))
		},
		Entry("a bad duration", "broken.toml", "broken.toml:3", `"duration"`, "soon"),
		Entry("an unquoted duration", "unquoted_duration.toml", "unquoted_duration.toml:11", `"faults.at"`, "unquoted"),
		Entry("a misspelt match field", "misspelt_match.toml", "misspelt_match.toml:13", `"expect.match.typ"`, "no field"),
		Entry("a bound that holds when nothing is read", "bound_without_read.toml", "bound_without_read.toml:16",
			`"expect.metric"`, "reads nothing"),
		Entry("a program that is not there", "missing_program.toml", "missing_program.toml:7", `"producers.command"`,
			`command "./no-such-camera.py" not found`),
		Entry("a remote consumer asking for shared memory", "remote_shm.toml", "remote_shm.toml:25",
			`"consumers.shm"`, "shared memory is host-local"),
	)

	It("restarts the broker on the same endpoint and replays the exact schedule", func(ctx SpecContext) {
		r := runSim(ctx, "run", "--seed", "99", testdata("hub_restart.toml"))
		r.attach()
		Expect(r.code).To(Equal(verdict.ExitPass), r.stdout+r.stderr)
		evs, err := report.ReadEvents(filepath.Join(r.runFolder(), report.EventsFile))
		Expect(err).NotTo(HaveOccurred())
		var endpoints []string
		for _, ev := range evs {
			if ev.Node == "hub" && ev.Kind == "ready" {
				endpoints = append(endpoints, ev.Str("endpoint"))
			}
		}
		Expect(endpoints).To(HaveLen(2))
		Expect(endpoints[1]).To(Equal(endpoints[0]))

		again := runSim(ctx, "replay", r.runFolder())
		Expect(again.code).To(Equal(verdict.ExitPass), again.stdout+again.stderr)
		a, _ := os.ReadFile(filepath.Join(r.runFolder(), report.ResolvedFile))
		b, _ := os.ReadFile(filepath.Join(again.runFolder(), report.ResolvedFile))
		Expect(string(b)).To(Equal(string(a)))
	}, SpecTimeout(time.Minute))

	It("lists only real scenarios", func(ctx SpecContext) {
		root, _ := support.ModuleRoot()
		r := runSim(ctx, "list", filepath.Join(root, "scenarios"))
		Expect(r.code).To(Equal(verdict.ExitPass), r.stdout+r.stderr)
		Expect(strings.Count(r.stdout, "\n")).To(Equal(len(scenarioFiles)))
		Expect(r.stdout).NotTo(ContainSubstring("INVALID"))
		Expect(r.stdout).To(ContainSubstring("quickstart.toml"))
	})

	It("leaves nothing behind when plh-sim itself is killed", func(ctx SpecContext) {
		root, _ := support.ModuleRoot()
		out := GinkgoT().TempDir()
		cmd := exec.Command(simBin, "run", "--out", out, filepath.Join(root, "scenarios", "quickstart.toml"))
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		var so syncBuffer
		cmd.Stdout = &so
		Expect(cmd.Start()).To(Succeed())
		// Wait until the run has started (every node ready), then SIGKILL plh-sim alone.
		Eventually(func() string { return so.String() }).WithContext(ctx).WithTimeout(60 * time.Second).
			Should(ContainSubstring("run_start"))
		Expect(syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)).To(Succeed())
		_ = cmd.Wait()
		// The janitor kills every group and unlinks the segments.
		Eventually(func() []string {
			m, _ := filepath.Glob("/dev/shm/plh_quickstart_" + fmt.Sprint(cmd.Process.Pid) + "_*")
			return m
		}).WithContext(ctx).WithTimeout(30 * time.Second).Should(BeEmpty())
		Eventually(func() string {
			b, _ := exec.Command("pgrep", "-f", "plh_quickstart_"+fmt.Sprint(cmd.Process.Pid)+"_").Output()
			return string(b)
		}).WithContext(ctx).WithTimeout(30 * time.Second).Should(BeEmpty())
	}, SpecTimeout(2*time.Minute))
})
