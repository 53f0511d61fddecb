package verdict

import (
	"testing"

	"github.com/pylabhub/plh/sim/scenario"
)

// TestNoFalseDeathAfterAProducerRestart: a producer_lost about a producer
// killed and started again (producer_restart) is about the dead incarnation:
// the successor's writes after it do not make it false; the same notice
// without the death is still false.
func TestNoFalseDeathAfterAProducerRestart(t *testing.T) {
	en := scenario.EngineName
	restart := func(withDeath bool) *timeline {
		tl := invBase()
		tl.at(1500, en, "fault", "id", "producer_restart-p", "fault", "producer_restart", "target", "p")
		if withDeath {
			tl.at(1510, en, "process_end", "target", "p", "role", "producer", "pid", 10.0, "code", -1.0, "signal", "SIGKILL")
		}
		tl.at(1520, en, "spawned", "target", "p", "role", "producer", "pid", 20.0)
		tl.at(2500, "c2", "producer_lost", "channel", "plh_cam_x")
		tl.at(2600, "p", "written", "count", 10.0, "first_seq", 0.0, "last_seq", 9.0)
		tl.at(2700, "p", "written", "count", 10.0, "first_seq", 10.0, "last_seq", 19.0)
		return tl
	}
	if v := invEval(t, restart(true), "")["invariant no_false_death"]; v.Status != StatusPass {
		t.Errorf("after a restart: %s: %s", v.Status, v.Message)
	}
	fails(t, invEval(t, restart(false), ""), "no_false_death", "p declared dead (producer_lost at c2)")
}
