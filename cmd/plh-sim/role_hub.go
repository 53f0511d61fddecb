package main

import (
	"context"
	"io"

	"github.com/pylabhub/plh/cmd/internal/hubrole"
)

// The hub role, so that plh-sim alone can run every scenario: the engine
// starts `plh-sim hub FLAGS` (flags of plh-hub).
func init() {
	register("hub", func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
		return hubrole.Main(ctx, args, stdout, stderr)
	}, true)
}
