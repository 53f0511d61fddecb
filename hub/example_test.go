package hub_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/shm"
)

// A broker, a producer that owns a channel backed by a DataBlock, and a consumer
// that finds the channel through the broker and reads the ring. In production the
// broker is a plh-hub process and producer and consumer live in different processes;
// the calls are the same.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	b, err := broker.Start(ctx, broker.Config{Endpoint: "tcp://127.0.0.1:0"})
	if err != nil {
		fmt.Println("broker:", err)
		return
	}
	defer b.Close()

	m, err := hub.NewMessenger(hub.MessengerConfig{})
	if err != nil {
		fmt.Println("messenger:", err)
		return
	}
	defer m.Close()
	// The key is the broker's CURVE public key ("" when it runs without CURVE).
	if err := m.Connect(ctx, b.Endpoint(), b.PublicKey()); err != nil {
		fmt.Println("connect:", err)
		return
	}

	const secret = 0x5EC2E7C0FFEE
	channel := fmt.Sprintf("plh_example_%d", os.Getpid())
	p, err := hub.NewProducer(ctx, m, hub.ProducerOptions{
		Channel: channel,
		SHM: &shm.Config{PageSize: shm.Page4K, Capacity: 8, Policy: shm.PolicyRingBuffer,
			Sync: shm.SingleReader, Secret: secret},
	})
	if err != nil {
		fmt.Println("producer:", err)
		return
	}
	defer p.Close()

	c, err := hub.Connect(ctx, m, hub.ConsumerOptions{Channel: channel, Secret: secret})
	if err != nil {
		fmt.Println("consumer:", err)
		return
	}
	defer c.Close()

	// Write one slot in the caller's goroutine: returning nil publishes it.
	err = p.SyncedWrite(ctx, time.Second, func(t *hub.WriteTxn) error {
		slot, err := t.Next()
		if err != nil {
			return err
		}
		copy(slot.Bytes(), "hello through the ring")
		return nil
	})
	if err != nil {
		fmt.Println("write:", err)
		return
	}

	// Read it back, zero-copy: the slot's bytes are the shared memory itself.
	err = c.Pull(ctx, time.Second, func(t *hub.ReadTxn) error {
		slot, err := t.Next()
		if err != nil {
			return err
		}
		fmt.Println(string(slot.Bytes()[:22]))
		return nil
	})
	if err != nil {
		fmt.Println("read:", err)
	}
	// Output: hello through the ring
}
