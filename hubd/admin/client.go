package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/pylabhub/plh/internal/wire"
)

// Client talks to an admin endpoint (a plh Server or the original's REP
// socket): it sends REQ-style envelopes ([empty][json]) from a wire Dealer and
// waits for the reply of each request in turn. Not safe for concurrent Exec.
type Client struct {
	d     *wire.Dealer
	token string
}

// DialClient connects to endpoint, waiting up to ctx for the connection.
func DialClient(ctx context.Context, endpoint, token string) (*Client, error) {
	d, err := wire.Dial(ctx, wire.Config{}, endpoint)
	if err != nil {
		return nil, fmt.Errorf("connect to admin endpoint %s: %w", endpoint, err)
	}
	return &Client{d: d, token: token}, nil
}

// Exec sends code and returns the reply; ctx bounds the wait (the original
// client waits 10 s).
func (c *Client) Exec(ctx context.Context, code string) (Reply, error) {
	req := map[string]string{"code": code}
	if c.token != "" {
		req["token"] = c.token
	}
	body, err := json.Marshal(req)
	if err != nil {
		return Reply{}, err
	}
	return c.Raw(ctx, body)
}

// Raw sends one raw payload (tests use it for malformed requests) and decodes
// the reply.
func (c *Client) Raw(ctx context.Context, payload []byte) (Reply, error) {
	if err := c.d.Send([]byte{}, payload); err != nil {
		return Reply{}, fmt.Errorf("send admin request: %w", err)
	}
	frames, err := c.d.Recv(ctx)
	if err != nil {
		return Reply{}, fmt.Errorf("wait for admin reply: %w", err)
	}
	if len(frames) >= 2 && len(frames[0]) == 0 {
		frames = frames[1:]
	}
	if len(frames) != 1 {
		return Reply{}, fmt.Errorf("admin reply has %d frames, want 1", len(frames))
	}
	var r Reply
	if err := json.Unmarshal(frames[0], &r); err != nil {
		return Reply{}, fmt.Errorf("admin reply is not JSON: %w", err)
	}
	return r, nil
}

// DefaultClientTimeout is how long plh-admin waits for a reply (as the
// original client's receive timeout).
const DefaultClientTimeout = 10 * time.Second

// Close closes the connection. Safe on nil and repeated.
func (c *Client) Close() error {
	if c == nil {
		return nil
	}
	return c.d.Close()
}
