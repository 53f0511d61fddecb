package sim

import (
	"sort"
	"strings"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/sim/scenario"
)

// startProgram runs a user's own program as node n (docs/events.md, "Your own
// program as a node"): its command in its dir, told what plh-node would be
// told through PLH_* environment variables, the node's env on top. A program
// with events = "none" is counted ready once started: the engine records a
// ready event for it (recorded_by plh-sim).
func (r *run) startProgram(n scenario.PlanNode, broker string) (*child, error) {
	env := programEnv(r.nodeFlags(n, broker))
	keys := make([]string, 0, len(n.Env))
	for k := range n.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+n.Env[k])
	}
	argv := n.Command
	if h := r.host(n.Host); h != nil {
		argv = h.Argv(n.Dir, argv)
	}
	c, err := r.sup.spawn(n.Name, n.Role, n.Exit, argv, env, n.Dir)
	if err != nil {
		return nil, err
	}
	if n.Silent() {
		r.col.add(event.Event{T: proc.Now(), Node: n.Name, Kind: "ready", Fields: map[string]any{
			"role": n.Role, "channel": r.channels[n.Channel], "pid": c.pid, "recorded_by": scenario.EngineName}})
	}
	return c, nil
}

// programEnv turns plh-node flags ("--slot-size", "64", "--shm=true") into
// PLH_SLOT_SIZE=64, PLH_SHM=true.
func programEnv(flags []string) []string {
	var env []string
	name := func(f string) string {
		return "PLH_" + strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(f, "--"), "-", "_"))
	}
	for i := 0; i < len(flags); i++ {
		f := flags[i]
		if k, v, ok := strings.Cut(f, "="); ok {
			env = append(env, name(k)+"="+v)
			continue
		}
		if i+1 < len(flags) {
			env = append(env, name(f)+"="+flags[i+1])
			i++
		}
	}
	return env
}
