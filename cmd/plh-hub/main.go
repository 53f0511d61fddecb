// Command plh-hub runs the plh hub: the broker, configured in layers (defaults,
// config files, environment, flags), announcing itself with one "ready" event on
// stdout. The first SIGINT/SIGTERM stops it gracefully (exit 0); a second one
// exits at once with status 1. See cmd/internal/hubrole, hubd and docs/config.md.
package main

import (
	"context"
	"os"

	"github.com/pylabhub/plh/cmd/internal/hubrole"
	"github.com/pylabhub/plh/cmd/internal/shutdown"
)

func main() {
	ctx, stop := shutdown.OnSignal(context.Background(), os.Exit)
	code := hubrole.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
