package wire

import (
	"context"
	"fmt"
	"sync"

	"github.com/go-zeromq/zmq4"
)

// Pub is a bound PUB socket: every message goes to every connected Sub (PubSub
// data plane). Send never blocks: messages go through a bounded queue drained by
// one goroutine, and zmq4's own PUB queue is bounded with OptionHWM (trap 5).
// A Sub that stops reading is disconnected by the guard's write deadline.
type Pub struct {
	cfg   Config
	key   string
	st    counters
	sock  zmq4.Socket
	ep    string
	sendq chan [][]byte
	quit  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

// ListenPub binds a PUB socket to endpoint.
func ListenPub(cfg Config, endpoint string) (*Pub, error) {
	cfg = cfg.withDefaults()
	p := &Pub{cfg: cfg, sendq: make(chan [][]byte, cfg.PeerQueue), quit: make(chan struct{})}
	p.key, _ = register(&p.cfg, &p.st, zmq4.Pub)
	zep, err := zmqEndpoint(endpoint, p.key)
	if err != nil {
		unregister(p.key)
		return nil, err
	}
	p.sock = zmq4.NewPub(context.Background(), socketOptions(&p.cfg)...)
	if err := p.sock.SetOption(zmq4.OptionHWM, cfg.PeerQueue); err != nil {
		p.sock.Close()
		unregister(p.key)
		return nil, fmt.Errorf("wire: pub hwm: %w", err)
	}
	if err := p.sock.Listen(zep); err != nil {
		p.sock.Close()
		unregister(p.key)
		return nil, fmt.Errorf("wire: listen %s: %w", endpoint, err)
	}
	p.ep = publicEndpoint(p.sock.Addr())
	p.wg.Add(1)
	go p.writeLoop()
	return p, nil
}

func (p *Pub) writeLoop() {
	defer p.wg.Done()
	for {
		select {
		case <-p.quit:
			return
		case frames := <-p.sendq:
			if err := p.sock.SendMulti(zmq4.NewMsgFrom(frames...)); err != nil {
				p.st.sendErrors.Add(1)
				continue
			}
			p.st.sent.Add(1)
		}
	}
}

// Endpoint returns the bound endpoint with the real port.
func (p *Pub) Endpoint() string { return p.ep }

// Send queues a message for every subscriber; ErrQueueFull when PeerQueue
// messages are waiting, ErrTooLarge, ErrClosed.
func (p *Pub) Send(frames ...[]byte) error {
	select {
	case <-p.quit:
		return ErrClosed
	default:
	}
	size := 0
	for _, f := range frames {
		size += len(f)
	}
	if size > p.cfg.MaxMessage || len(frames) > p.cfg.MaxFrames {
		return ErrTooLarge
	}
	select {
	case p.sendq <- frames:
		return nil
	default:
		p.st.queueFull.Add(1)
		return ErrQueueFull
	}
}

// Stats returns a snapshot of the socket's counters.
func (p *Pub) Stats() Stats { return p.st.snapshot() }

// Close stops the writer and closes the socket (zmq4 leaks one goroutine per PUB,
// see wiretest.GoleakIgnores). Idempotent, nil-safe.
func (p *Pub) Close() error {
	if p == nil {
		return nil
	}
	var err error
	p.once.Do(func() {
		close(p.quit)
		p.wg.Wait()
		closeListeners(p.key) // as Router.Close: accept nothing while zmq4 drops connections
		err = p.sock.Close()
		unregister(p.key)
	})
	return err
}

// Sub is a SUB socket subscribed to everything, redialled like a Dealer.
type Sub struct{ c *client }

// NewSub returns a Sub that connects to endpoint in the background.
func NewSub(cfg Config, endpoint string) (*Sub, error) {
	setup := func(s zmq4.Socket) error { return s.SetOption(zmq4.OptionSubscribe, "") }
	c, err := newClient(cfg, endpoint, zmq4.NewSub, setup, false)
	if err != nil {
		return nil, err
	}
	return &Sub{c: c}, nil
}

// Recv returns the next message's frames, ctx's error, or ErrClosed.
func (s *Sub) Recv(ctx context.Context) ([][]byte, error) { return s.c.recv(ctx) }

// Events delivers connection changes.
func (s *Sub) Events() <-chan Event { return s.c.events }

// Connected reports whether the Sub has a live connection now.
func (s *Sub) Connected() bool { return s.c.isConnected() }

// WaitConnected blocks until connected, ctx ends, or Close.
func (s *Sub) WaitConnected(ctx context.Context) error { return s.c.waitConnected(ctx) }

// Stats returns a snapshot of the socket's counters.
func (s *Sub) Stats() Stats { return s.c.st.snapshot() }

// Close stops every goroutine and closes the socket. Idempotent, nil-safe.
func (s *Sub) Close() error {
	if s == nil {
		return nil
	}
	s.c.close()
	return nil
}
