package hub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pylabhub/plh/broker/proto"
)

// begin checks that a request may be sent now and registers its correlation id.
// internal requests (Connect's first ping) are also allowed while connecting.
// Registering under m.mu makes brokerLost/stopSession, which change the state
// under m.mu before failing every pending entry, see every entry added before.
func (m *Messenger) begin(op, channel string, internal bool) (*session, string, chan reply, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return nil, "", nil, opErr(op, channel, ErrClosed)
	case m.sess == nil:
		return nil, "", nil, opErr(op, channel, ErrNotConnected)
	case m.state == stateLost:
		return nil, "", nil, opErr(op, channel, fmt.Errorf("%w: %w", ErrNotConnected, ErrBrokerLost))
	case m.state == stateConnecting && !internal:
		return nil, "", nil, opErr(op, channel, fmt.Errorf("%w: connect in progress", ErrNotConnected))
	}
	id, ch := m.pend.add()
	return m.sess, id, ch, nil
}

// session returns the current session if requests may be sent on it.
func (m *Messenger) currentSession(op, channel string) (*session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return nil, opErr(op, channel, ErrClosed)
	case m.sess == nil || m.state == stateConnecting:
		return nil, opErr(op, channel, ErrNotConnected)
	case m.state == stateLost:
		return nil, opErr(op, channel, fmt.Errorf("%w: %w", ErrNotConnected, ErrBrokerLost))
	}
	return m.sess, nil
}

func opErr(op, channel string, err error) error {
	if channel != "" {
		return fmt.Errorf("%s %q: %w", op, channel, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// call sends req and waits for its reply (matched by correlation id) until ctx
// ends (or RequestTimeout when ctx has no deadline). An ERROR reply becomes a
// *BrokerError; a reply that does not decode is ErrBadReply.
func (m *Messenger) call(ctx context.Context, req proto.Request, internal bool) (proto.Reply, error) {
	op := string(req.MsgType())
	channel := proto.ChannelOf(req)
	s, id, ch, err := m.begin(op, channel, internal)
	if err != nil {
		return nil, err
	}
	proto.Stamp(req, id)
	frames, err := proto.Encode(req)
	if err != nil {
		m.pend.remove(id)
		return nil, opErr(op, channel, err)
	}
	if err := s.send(frames); err != nil {
		m.pend.remove(id)
		return nil, opErr(op, channel, err)
	}
	// Without a deadline in ctx, RequestTimeout bounds the wait (a plain timer:
	// cheaper than a derived context on this hot path).
	var timeout <-chan time.Time
	if _, ok := ctx.Deadline(); !ok {
		t := time.NewTimer(m.cfg.RequestTimeout)
		defer t.Stop()
		timeout = t.C
	}
	var r reply
	select {
	case r = <-ch:
	case <-ctx.Done():
		m.pend.remove(id)
		return nil, opErr(op, channel, ctxErr(ctx))
	case <-timeout:
		m.pend.remove(id)
		return nil, opErr(op, channel, fmt.Errorf("%w: no reply within %v", ErrTimeout, m.cfg.RequestTimeout))
	}
	if r.err != nil {
		return nil, opErr(op, channel, r.err)
	}
	return decodeReply(op, channel, r)
}

// ctxErr turns an ended context into ErrTimeout (deadline) or its cause.
func ctxErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
	}
	return ctx.Err()
}

func decodeReply(op, channel string, r reply) (proto.Reply, error) {
	msg, err := proto.Decode(proto.Type(r.typ), r.body)
	if err != nil {
		return nil, opErr(op, channel, fmt.Errorf("%w: %s: %w", ErrBadReply, r.typ, err))
	}
	rep, ok := proto.AsReply(msg)
	if !ok {
		return nil, opErr(op, channel, fmt.Errorf("%w: %s is not a reply", ErrBadReply, r.typ))
	}
	if err := proto.Err(rep); err != nil {
		be := &BrokerError{Op: op, Channel: channel, Message: err.Error()}
		var re *proto.RemoteError
		if errors.As(err, &re) {
			be.Code, be.Message = string(re.Code), re.Message
		}
		return nil, be
	}
	return rep, nil
}

// expect type-asserts a success reply.
func expect[T proto.Reply](op, channel string, rep proto.Reply) (T, error) {
	v, ok := rep.(T)
	if !ok {
		var zero T
		return zero, opErr(op, channel, fmt.Errorf("%w: unexpected reply %s", ErrBadReply, rep.MsgType()))
	}
	return v, nil
}

// oneWay stamps and sends a fire-and-forget request on s.
func (m *Messenger) oneWay(s *session, req proto.Request) error {
	proto.Stamp(req, m.pend.newID())
	frames, err := proto.Encode(req)
	if err != nil {
		return err
	}
	return s.send(frames)
}
