package sim

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/pylabhub/plh/chaos"
)

// The janitor is a helper process that outlives a killed engine. The engine
// starts it first (in its own process group, without a parent-death signal) and
// tells it, one line per item on its stdin, every process group it starts
// ("pgid N") and every segment the run may create ("shm NAME"). When the engine
// finishes it writes "done"; if the janitor instead sees end of input without
// "done" (the engine was killed: the kernel closed the pipe), it SIGKILLs every
// group and unlinks every segment it was told about, then exits. Parent-death
// signals cover the children themselves; the janitor also covers the segments,
// and the links of the run's hosts ("net ID": chaos.SweepLinks; a host's
// namespaces die with its init process, told as a "pgid").

// RunJanitor is the janitor's main loop: it reads r until "done" or end of
// input and cleans up in the second case. shmDir is normally /dev/shm. It
// returns what it cleaned, for logging.
func RunJanitor(r io.Reader, shmDir string) []string {
	var groups []int
	var segs, nets []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		kind, val, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		switch kind {
		case "done":
			return nil
		case "pgid":
			if n, err := strconv.Atoi(val); err == nil && n > 1 {
				groups = append(groups, n)
			}
		case "net":
			nets = append(nets, val)
		case "shm":
			if val != "" && !strings.ContainsAny(val, "/") && val != "." && val != ".." {
				segs = append(segs, val)
			}
		}
	}
	var cleaned []string
	for _, g := range groups {
		if syscall.Kill(-g, syscall.SIGKILL) == nil {
			cleaned = append(cleaned, "pgid "+strconv.Itoa(g))
		}
	}
	for _, id := range nets {
		if chaos.SweepLinks(id) == nil {
			cleaned = append(cleaned, "net "+id)
		}
	}
	for _, s := range segs {
		if os.Remove(filepath.Join(shmDir, s)) == nil {
			cleaned = append(cleaned, "shm "+s)
		}
	}
	return cleaned
}

// janitorClient feeds a janitor process. A nil client does nothing.
type janitorClient struct {
	mu  sync.Mutex
	cmd *exec.Cmd
	w   io.WriteCloser
}

func startJanitor(argv []string) (*janitorClient, error) {
	if len(argv) == 0 {
		return nil, nil
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	w, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("%w: janitor: %v", ErrHarness, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: janitor: %v", ErrHarness, err)
	}
	return &janitorClient{cmd: cmd, w: w}, nil
}

func (j *janitorClient) add(kind, val string) {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.w != nil {
		_, _ = fmt.Fprintf(j.w, "%s %s\n", kind, val)
	}
}

// finish tells the janitor the run cleaned up after itself, and reaps it.
func (j *janitorClient) finish() {
	if j == nil {
		return
	}
	j.mu.Lock()
	_, _ = io.WriteString(j.w, "done\n")
	_ = j.w.Close()
	j.w = nil
	j.mu.Unlock()
	_ = j.cmd.Wait()
}
