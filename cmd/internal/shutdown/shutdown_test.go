package shutdown

import (
	"context"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestFirstSignalCancelsSecondExits(t *testing.T) {
	defer goleak.VerifyNone(t)
	exited := make(chan int, 1)
	ctx, stop := OnSignal(context.Background(), func(code int) { exited <- code })
	defer stop()

	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("first SIGTERM did not cancel the context")
	}
	select {
	case code := <-exited:
		t.Fatalf("exit(%d) after one signal", code)
	default:
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exited:
		if code != 1 {
			t.Fatalf("second signal: exit(%d), want exit(1)", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second signal did not call exit")
	}
	stop()
	stop() // idempotent
}

func TestStopWithoutSignal(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, stop := OnSignal(context.Background(), func(int) { t.Error("exit called") })
	stop()
	if ctx.Err() == nil {
		t.Fatal("stop did not cancel the context")
	}
}
