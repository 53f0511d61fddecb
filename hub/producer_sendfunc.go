package hub

import (
	"context"
	"fmt"

	"github.com/pylabhub/plh/internal/wire"
)

// SendFunc sends one data message of n bytes that fill writes in place, like
// Send without Send's copy (doc.go "Bulk data over the socket"): fill gets a
// pooled buffer of length n whose content is undefined (a previous message's
// bytes, nothing of another process) and writes what the message must hold;
// the buffer is the producer's again once
// fill returns (do not keep it). An error from fill sends nothing and is
// returned. Flow control, patterns and errors are Send's; n outside
// [0, the peer socket's MaxFrame] is refused with wire.ErrTooLarge before fill
// runs.
func (p *producerLink) SendFunc(ctx context.Context, n int, fill func(b []byte) error) error {
	if p.pat == PatternBidir {
		return fmt.Errorf("send %q: %w: Bidir needs SendTo", p.name, ErrWrongPattern)
	}
	if limit := maxFrameOf(p.opts.Wire); n < 0 || n > limit {
		return fmt.Errorf("send %q: %w: %d bytes, limit %d", p.name, wire.ErrTooLarge, n, limit)
	}
	pb := emptyDataBuf(n)
	defer pb.Release()
	if err := fill(pb.frames[1]); err != nil {
		return err
	}
	return p.sendData(ctx, pb)
}
