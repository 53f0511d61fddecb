package scenario

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Event modes of a user's own program (NodeSpec.Events).
const (
	// EventsJSONL: the program writes the event contract of docs/events.md on
	// stdout (at least ready); the default.
	EventsJSONL = "jsonl"
	// EventsNone: the program writes no events; the engine counts it ready
	// once started and judges only what it sees from outside.
	EventsNone = "none"
)

var eventModes = []string{EventsJSONL, EventsNone}

// IsProgram reports whether the node runs a user's own program (command)
// instead of plh-node.
func (n NodeSpec) IsProgram() bool { return len(n.Command) > 0 }

// Silent reports whether the node writes no events of its own (a program
// with events = "none").
func (n NodeSpec) Silent() bool { return n.IsProgram() && n.Events == EventsNone }

// checkProgram validates command, env, dir and events of node spec n and
// makes its dir absolute (relative to the scenario file's folder, which is
// also the default), so a resolved plan runs from anywhere.
func (c checker) checkProgram(key string, n *NodeSpec) error {
	if n.Command == nil {
		for k, set := range map[string]bool{"env": n.Env != nil, "dir": n.Dir != "", "events": n.Events != ""} {
			if set {
				return c.errf(key+"."+k, "", "node %q: %s needs command (it configures a user's own program)", n.Name, k)
			}
		}
		return nil
	}
	if len(n.Command) == 0 || strings.TrimSpace(n.Command[0]) == "" {
		return c.errf(key+".command", "", "node %q: command is empty (want e.g. [\"python3\", \"cam.py\"])", n.Name)
	}
	if len(n.Args) > 0 {
		return c.errf(key+".args", "", "node %q: args are plh-node flags; with command, put the program's arguments in command", n.Name)
	}
	if n.Events == "" {
		n.Events = EventsJSONL
	}
	if err := checkEnum(c, key+".events", &n.Events, "events mode", eventModes); err != nil {
		return err
	}
	for k := range n.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return c.errf(key+".env", k, "node %q: bad environment variable name %q", n.Name, k)
		}
	}
	n.Dir = programDir(c.v.File, n.Dir)
	if st, err := os.Stat(n.Dir); err != nil || !st.IsDir() {
		return c.errf(key+".dir", "", "node %q: dir %s is not a folder", n.Name, n.Dir)
	}
	if _, err := lookProgram(n.Command[0], n.Dir, n.Env); err != nil {
		return c.errf(key+".command", n.Command[0], "node %q: command %q not found: %v", n.Name, n.Command[0], err)
	}
	return nil
}

// programDir returns dir made absolute against the folder of file (the
// working directory when file is ""); "" gives that folder itself.
func programDir(file, dir string) string {
	base := "."
	if file != "" {
		base = filepath.Dir(file)
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(base, dir)
	}
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

// lookProgram finds the program as exec would run it from dir: a name
// with a slash relative to dir, a bare name on PATH (env's, if it sets
// one).
func lookProgram(name, dir string, env map[string]string) (string, error) {
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		st, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		if st.IsDir() || st.Mode()&0o111 == 0 {
			return "", exec.ErrNotFound
		}
		return p, nil
	}
	path, ok := env["PATH"]
	if !ok {
		return exec.LookPath(name)
	}
	for _, d := range filepath.SplitList(path) {
		if !filepath.IsAbs(d) {
			d = filepath.Join(dir, d)
		}
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// isProgram reports whether the node named name (an instance name) runs a
// user's own program.
func (c checker) isProgram(name string) bool {
	for _, n := range expandNodes(c.v.Scenario) {
		if n.Name == name {
			return n.IsProgram()
		}
	}
	return false
}
