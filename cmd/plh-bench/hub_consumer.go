package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/shm"
)

// hubConsumer is the consumer process of the hub benchmark (mode bare, shm,
// pipe or pipecopy; args ENDPOINT TARGET N SIZE). It prints READY once it can receive, then
// "END k tk tn n cpu": the CLOCK_MONOTONIC times at which it had received k (the
// first tenth) and all n messages, and its CPU ns per message in between.
func hubConsumer(mode string, args []string, prof string) error {
	if len(args) != 4 {
		return fmt.Errorf("want ENDPOINT TARGET N SIZE, got %q", args)
	}
	endpoint, target := args[0], args[1]
	n, err1 := strconv.Atoi(args[2])
	size, err2 := strconv.Atoi(args[3])
	if err1 != nil || err2 != nil || n < 10 || size <= 0 {
		return fmt.Errorf("bad N SIZE %q", args[2:])
	}
	stop, err := startCPUProfile(prof)
	if err != nil {
		return err
	}
	defer stop()
	var next func(out []byte) error
	switch mode {
	case "bare":
		blk, err := shm.Attach(target, benchShmConfig().Secret, nil)
		if err != nil {
			return err
		}
		defer blk.Close()
		r, err := blk.NewReader(shm.ReaderOptions{})
		if err != nil {
			return err
		}
		next = func(out []byte) error {
			s, err := r.AcquireRead(context.Background(), 5*time.Second)
			if err != nil {
				return err
			}
			copy(out, s.Bytes()[:len(out)])
			return s.Release()
		}
	case "shm", "pipe", "pipecopy":
		m, err := connectMessenger(endpoint, hub.MessengerConfig{})
		if err != nil {
			return err
		}
		defer m.Close()
		opts := hub.ConsumerOptions{Channel: target}
		if mode == "shm" {
			opts.Secret = benchShmConfig().Secret
		}
		c, err := hub.Connect(context.Background(), m, opts)
		if err != nil {
			return err
		}
		defer c.Close()
		if next, err = consumerNext(c, mode); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown consumer mode %q", mode)
	}
	fmt.Println("READY")
	out := make([]byte, size)
	k := n / 10
	var tk int64
	var ck time.Duration
	for i := range n {
		if err := next(out); err != nil {
			return fmt.Errorf("message %d of %d: %w", i, n, err)
		}
		if i == k-1 {
			tk, ck = nowNS(), processCPU()
		}
	}
	tn, cn := nowNS(), processCPU()
	fmt.Println("END", k, tk, tn, n, (cn-ck).Nanoseconds()/int64(n-k))
	return nil
}

// consumerNext returns the receive step of a hub Consumer: Pull (copy out) over
// the DataBlock; over the Pipeline socket Recv (copy out) in mode pipecopy,
// else RecvFunc (the message read in the
// buffer it arrived in, its length checked, no copy: the API for bulk data,
// as the libzmq side's PULL takes its message without a copy at 64 KiB).
func consumerNext(c *hub.Consumer, mode string) (func(out []byte) error, error) {
	if mode == "shm" {
		if !c.HasSHM() {
			return nil, fmt.Errorf("consumer not attached: %w", c.SHMError())
		}
		var out []byte
		read := func(tx *hub.ReadTxn) error {
			s, err := tx.Next()
			if err != nil {
				return err
			}
			copy(out, s.Bytes()[:len(out)])
			return nil
		}
		return func(o []byte) error {
			out = o
			return c.Pull(context.Background(), 5*time.Second, read)
		}, nil
	}
	// One deadline for the whole run: the producer process kills us if it fails.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	_ = cancel // released at process exit
	// pipecopy (--copying): Recv, copied out.
	if mode == "pipecopy" {
		return func(out []byte) error {
			b, err := c.Recv(ctx)
			if err != nil {
				return err
			}
			if len(b) != len(out) {
				return fmt.Errorf("got %d bytes, want %d", len(b), len(out))
			}
			copy(out, b)
			return nil
		}, nil
	}
	var want int
	check := func(b []byte) error {
		if len(b) != want {
			return fmt.Errorf("got %d bytes, want %d", len(b), want)
		}
		return nil
	}
	return func(out []byte) error {
		want = len(out)
		return c.RecvFunc(ctx, check)
	}, nil
}
