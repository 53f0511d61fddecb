package hub

import (
	"fmt"
	"log/slog"

	"github.com/pylabhub/plh/shm"
)

// openGroup makes the consumer a member of its group on the attached ring b
// (shm.Block.JoinGroup): the members split the ring's slots, each to exactly one
// of them, and a member's claimed slot goes to another member when it dies. It
// takes no sole-reader lock (the members share the ring; other groups and
// consumers without a group each read everything). Only a Sync_reader ring has a
// cursor per reader: on another policy the consumer is refused
// (ErrGroupUnsupported, Connect fails).
func (c *ringReader) openGroup(a *ringAttach, b *shm.Block) *ringAttach {
	if b.Sync() != shm.SyncReader {
		b.Close()
		a.err = fmt.Errorf("%w: group %q: a %s ring has one read cursor; consumer groups on the ring need Sync_reader",
			ErrGroupUnsupported, c.opts.Group, b.Sync())
		a.refused = a.err
		return a
	}
	g, err := b.JoinGroup(c.opts.Group, c.readerOptions())
	if err != nil {
		b.Close()
		c.log.Warn("hub: consumer group on the ring failed; continuing without shared memory", "group", c.opts.Group, "err", err)
		a.err = err
		return a
	}
	a.block, a.grp = b, g
	a.rd.Store(g.Reader())
	return a
}

// sweepGroupSegments removes the consumer-group companion segments of the
// DataBlock name whose members are all dead (shm.Sweep): the last member to
// close removes its group's, but a group whose last members were killed leaves
// one. The producer calls it when it closes its DataBlock.
func sweepGroupSegments(name string, log *slog.Logger) {
	if _, err := shm.Sweep(shm.SweepOptions{Prefix: name + ".g", Logger: log}); err != nil {
		log.Warn("hub: sweeping consumer-group segments failed", "name", name, "err", err)
	}
}
