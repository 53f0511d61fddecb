package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"

	"github.com/pylabhub/plh/shm"
)

// runPeer is the second process of a ring measurement. With PLH_BENCH_PEER_PROFILE
// set it writes a CPU profile there (each peer overwrites it: use with --only and
// PLH_BENCH_PEER_ROLE to keep the one wanted).
func runPeer(role string, args []string) error {
	if p := os.Getenv("PLH_BENCH_PEER_PROFILE"); p != "" && (os.Getenv("PLH_BENCH_PEER_ROLE") == "" || os.Getenv("PLH_BENCH_PEER_ROLE") == role) {
		stop, err := startCPUProfile(p)
		if err != nil {
			return err
		}
		defer stop()
	}
	atoi := func(i int) int {
		if i >= len(args) {
			return 0
		}
		v, _ := strconv.Atoi(args[i])
		return v
	}
	switch role {
	case "shm-consume":
		return shmConsume(args[0], atoi(1), atoi(2), false)
	case "shm-touch":
		return shmConsume(args[0], atoi(1), atoi(2), true)
	case "uds-consume":
		return udsConsume(args[0], atoi(1), atoi(2))
	case "shm-pong":
		return shmPong(args[0], args[1], atoi(2))
	case "raw-consume":
		return rawConsume(args[0], atoi(1), atoi(2), atoi(3), atoi(4), false)
	case "raw-touch":
		return rawConsume(args[0], atoi(1), atoi(2), atoi(3), atoi(4), true)
	case "raw-pong":
		return rawPong(args[0], args[1], atoi(2))
	case "uds-pong":
		return udsPong(args[0], atoi(1))
	}
	return fmt.Errorf("unknown peer role %q", role)
}

// shmConsume reads n messages: copying each out, or (touch) zero-copy, loading one
// byte of every cache line in place so every line still crosses to this core.
func shmConsume(name string, n, size int, touch bool) error {
	blk, err := shm.Attach(name, ringSecret, nil)
	if err != nil {
		return err
	}
	defer blk.Close()
	r, err := blk.NewReader(shm.ReaderOptions{Name: "bench"})
	if err != nil {
		return err
	}
	dst := make([]byte, size)
	fmt.Println("READY")
	ctx := context.Background()
	for range n {
		s, err := r.AcquireRead(ctx, -1)
		if err != nil {
			return err
		}
		if touch {
			dst[0] = touchLines(s.Bytes()[:size])
		} else {
			copy(dst, s.Bytes()[:size])
		}
		if err := s.Release(); err != nil {
			return err
		}
	}
	fmt.Println("END", nowNS())
	return nil
}

func udsConsume(path string, n, size int) error {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return err
	}
	defer conn.Close()
	buf := make([]byte, size)
	fmt.Println("READY")
	for range n {
		if _, err := io.ReadFull(conn, buf); err != nil {
			return err
		}
	}
	fmt.Println("END", nowNS())
	return nil
}

func shmPong(pingName, pongName string, n int) error {
	ping, err := shm.Attach(pingName, ringSecret, nil)
	if err != nil {
		return err
	}
	defer ping.Close()
	pong, err := shm.Attach(pongName, ringSecret, nil)
	if err != nil {
		return err
	}
	defer pong.Close()
	r, err := ping.NewReader(shm.ReaderOptions{Name: "pong", Wait: spin})
	if err != nil {
		return err
	}
	w, err := pong.NewWriter(spin)
	if err != nil {
		return err
	}
	fmt.Println("READY")
	ctx := context.Background()
	for range n {
		rs, err := r.AcquireRead(ctx, -1)
		if err != nil {
			return err
		}
		s, err := w.AcquireWrite(ctx, -1)
		if err != nil {
			return err
		}
		copy(s.Bytes()[:64], rs.Bytes()[:64])
		rs.Release()
		s.Commit(64)
		s.Release()
	}
	return nil
}

func udsPong(path string, n int) error {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return err
	}
	defer conn.Close()
	buf := make([]byte, 64)
	fmt.Println("READY")
	for range n {
		if _, err := io.ReadFull(conn, buf); err != nil {
			return err
		}
		if _, err := conn.Write(buf); err != nil {
			return err
		}
	}
	return nil
}
