package hub

import (
	"context"
	"fmt"
)

// Receive buffers of the peer link (doc.go "Bulk data over the socket").
//
// The consumer's Dealer assembles every data message it receives into a body
// the link supplies (wire.Dealer.SetAlloc → recvBody). Recv hands that body to
// the caller for good, so its storage is never seen again; RecvFunc lends it to
// a callback and then puts it on the link's free list, where the next message
// of at most its capacity is read into it. A consumer that receives with
// RecvFunc therefore allocates (and zeroes, and collects) no body per message.

// maxRecycled: bodies of larger capacity are left to the garbage collector
// (the free list then holds at most Window+16 times this much).
const maxRecycled = 1 << 20

// newFreeList returns the free list of a link whose data queue holds window+16
// messages: room for every body that queue can hold.
func newFreeList(window int) chan []byte { return make(chan []byte, window+16) }

// recvBody returns storage for a received frame body of n bytes: a recycled
// body when the next one on the free list is large enough, else a new slice
// (a recycled body too small for n is dropped).
func (c *consumerLink) recvBody(n int) []byte {
	select {
	case b := <-c.free:
		if cap(b) >= n {
			return b[:n]
		}
	default:
	}
	return make([]byte, n)
}

// recycle puts the storage of a body RecvFunc lent out on the free list.
func (c *consumerLink) recycle(b []byte) {
	if cap(b) <= smallBody || cap(b) > maxRecycled {
		return // small bodies share a slab with others; large ones are not kept
	}
	select {
	case c.free <- b[:0]:
	default:
	}
}

// smallBody: bodies up to this size are not recycled (the Dealer stores them
// in a shared slab, not in storage of their own; wire's smallFrame).
const smallBody = 64

// RecvFunc waits for the next data message like Recv and calls fn with it on
// the calling goroutine, without a copy: b is the buffer the message was read
// into from the network, valid only until fn returns (then it holds a later
// message; copy what you keep). It returns fn's error, or ctx's error /
// ErrClosed (wrapped) without calling fn. The message counts as consumed (its
// credit goes back to the producer; a consumer group member acknowledges it)
// once fn returns. For bulk data it is the fastest way to receive over the
// socket: no allocation, zeroing or garbage per message. Do not use it while
// started with an OnData callback.
func (c *consumerLink) RecvFunc(ctx context.Context, fn func(b []byte) error) error {
	select {
	case b := <-c.data:
		defer c.recycle(b)
		defer c.consumed()
		return fn(b)
	case <-ctx.Done():
		return fmt.Errorf("recv %q: %w", c.name, ctx.Err())
	case <-c.ctx.Done():
		return fmt.Errorf("recv %q: %w", c.name, ErrClosed)
	}
}
