package hub

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// ownerRegisterWait bounds how long a refused producer waits for the live owner
// of the segment to appear in the broker (the two may have started at the same
// instant, the owner's REG_REQ still on its way).
const ownerRegisterWait = time.Second

// refuseInUse is NewProducer's answer when the channel's segment belongs to a
// live process (shm.ErrSegmentInUse, inUse): the channel is someone else's and
// nothing of it is touched. When the owner registered it with another schema
// the refusal goes through the broker, REG_REQ answered by SCHEMA_MISMATCH, so
// the owner hears of the attempt (CHANNEL_ERROR_NOTIFY, protocol.md §5.2) and
// the error wraps both ErrSchemaMismatch and inUse. With the same schema nothing
// is sent: the broker would take the REG_REQ for a producer restart and hand the
// live owner's channel to us. The error wraps inUse then.
func refuseInUse(ctx context.Context, m *Messenger, name string, opts ProducerOptions, inUse error) error {
	info, err := discoverOwner(ctx, m, name)
	if err != nil {
		return fmt.Errorf("%w (the owner is not registered: %w)", inUse, err)
	}
	if info.SchemaHashHex == hex.EncodeToString(opts.SchemaHash) {
		return inUse
	}
	err = m.RegisterProducer(ctx, name, ProducerInfo{ShmName: name, SchemaHash: opts.SchemaHash,
		SchemaVersion: opts.SchemaVersion, HasSharedMemory: true, Pattern: opts.Pattern})
	if err == nil {
		// The owner's registration vanished in between: give the name back.
		_ = m.UnregisterChannel(ctx, name)
		return inUse
	}
	return fmt.Errorf("%w (%w)", err, inUse)
}

// discoverOwner discovers channel name, retrying CHANNEL_NOT_FOUND for up to
// ownerRegisterWait.
func discoverOwner(ctx context.Context, m *Messenger, name string) (ChannelInfo, error) {
	deadline := time.Now().Add(ownerRegisterWait)
	for {
		info, err := m.Discover(ctx, name)
		if !errors.Is(err, ErrChannelNotFound) || time.Now().After(deadline) {
			return info, err
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return info, err
		case <-t.C:
		}
	}
}
