package sim

import (
	"context"
	"path/filepath"
)

// A run without a hub ([hub] enabled = false, sim/scenario/nohub.go): no
// broker process starts; every node gets --discovery-dir, a directory of the
// run folder, and finds its channel through the producer's discovery record.

// startHubIfAny starts the hub unless the plan runs without one.
func (r *run) startHubIfAny(ctx context.Context) error {
	if r.plan.Hub.Off() {
		r.col.engine("no_hub", map[string]any{"discovery_dir": discoveryDir(r.dir)})
		return nil
	}
	return r.startHub(ctx, "")
}

// discoveryDir is the run's directory of discovery records.
func discoveryDir(runDir string) string { return filepath.Join(runDir, "discovery") }
