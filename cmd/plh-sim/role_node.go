package main

import (
	"context"
	"io"

	"github.com/pylabhub/plh/cmd/internal/noderole"
)

// The node role (producer or consumer), so that plh-sim alone can run every
// scenario: the engine starts `plh-sim node FLAGS` (flags of plh-node).
func init() {
	register("node", func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
		return noderole.Main(ctx, args, stdout, stderr)
	}, true)
}
