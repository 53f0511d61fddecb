// Command plh-node runs one producer or consumer of a plh channel from flags and
// reports every event as a JSON line on stdout (docs/events.md). See
// cmd/internal/noderole for the flags, the payload and the control lines it
// reads on stdin. Exit status: 0 done (or stopped by a signal), 1 error, 2 usage.
package main

import (
	"context"
	"os"

	"github.com/pylabhub/plh/cmd/internal/noderole"
	"github.com/pylabhub/plh/cmd/internal/shutdown"
)

func main() {
	ctx, stop := shutdown.OnSignal(context.Background(), os.Exit)
	code := noderole.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
