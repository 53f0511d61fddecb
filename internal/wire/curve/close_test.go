package curve

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"testing"
)

// TestCloseAfterDrop: closing a connection that fail already dropped (e.g. the
// peer went away) returns nil, so a socket's Close does not report an error for
// an ordinary disconnect; a second Close is a no-op too.
func TestCloseAfterDrop(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String()) // TCP: a second Close of it fails
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c := newConn(a, bufio.NewReader(a), &session{server: true}, slog.New(slog.DiscardHandler), 1<<10)
	if err := c.fail("read", io.EOF); err != io.EOF {
		t.Fatalf("fail(EOF) = %v, want io.EOF", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close after drop = %v, want nil", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	if _, err := a.Write([]byte{0}); err == nil {
		t.Fatal("raw connection still open after drop")
	}
}
