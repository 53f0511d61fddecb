package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/internal/wire"
)

// Service is a running broker.
type Service struct {
	cfg      Config
	router   *wire.Router
	watch    *proc.Watch
	cnt      *counters
	hostname string

	quit chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex // guards channels, watched; never held while blocking
	channels map[string]*channel
	watched  map[proc.Identity]int // consumer entries per watched process

	closeOnce sync.Once
	closeErr  error
}

// Start binds the ROUTER, calls cfg.OnReady and starts serving. The broker runs
// until Close (ctx only bounds start-up; its lifetime belongs to Close).
func Start(ctx context.Context, cfg Config) (*Service, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	s := &Service{cfg: cfg, cnt: newCounters(), hostname: host, quit: make(chan struct{}),
		channels: map[string]*channel{}, watched: map[proc.Identity]int{}}
	s.watch, err = proc.NewWatch(s.onProcessExit)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	s.router, err = wire.Listen(cfg.Wire, cfg.Endpoint)
	if err != nil {
		s.watch.Close()
		return nil, fmt.Errorf("broker: bind %s: %w", cfg.Endpoint, err)
	}
	cfg.Logger.Info("broker ready", "endpoint", s.router.Endpoint(), "pubkey", s.router.PublicKey())
	if cfg.OnReady != nil {
		cfg.OnReady(s.router.Endpoint(), s.router.PublicKey())
	}
	s.wg.Add(2)
	go s.recvLoop()
	go s.sweepLoop()
	return s, nil
}

// Endpoint returns the bound endpoint (real port).
func (s *Service) Endpoint() string { return s.router.Endpoint() }

// PublicKey returns the broker's public key ("" without CURVE).
func (s *Service) PublicKey() string { return s.router.PublicKey() }

// Close stops serving and waits for every goroutine. Idempotent, nil-safe.
func (s *Service) Close() error {
	if s == nil {
		return nil
	}
	s.closeOnce.Do(func() {
		close(s.quit)
		s.closeErr = s.router.Close()
		s.wg.Wait()
		s.watch.Close()
		s.cfg.Logger.Info("broker stopped")
	})
	return s.closeErr
}

// Done is closed when Close has started.
func (s *Service) Done() <-chan struct{} { return s.quit }

// Stats returns a snapshot of the counters.
func (s *Service) Stats() Stats {
	st := s.cnt.snapshot()
	s.mu.Lock()
	st.Channels = len(s.channels)
	for _, c := range s.channels {
		st.Consumers += len(c.consumers)
	}
	s.mu.Unlock()
	st.Wire = s.router.Stats()
	return st
}

// Channels returns a snapshot of the registry sorted by name (B-10).
func (s *Service) Channels() []proto.ChannelInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.channelsLocked()
}

func (s *Service) channelsLocked() []proto.ChannelInfo {
	out := make([]proto.ChannelInfo, 0, len(s.channels))
	for _, c := range s.channels {
		out = append(out, c.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// CloseChannel closes a channel: CHANNEL_CLOSING_NOTIFY "explicit_close" to its
// consumers, then its producer, and the entry is removed.
func (s *Service) CloseChannel(name string) error {
	select {
	case <-s.quit:
		return ErrClosed
	default:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.channels[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrChannelNotFound, name)
	}
	s.closeChannelLocked(c, proto.ReasonExplicitClose)
	s.cnt.inc(&s.cnt.closed)
	return nil
}

func (s *Service) recvLoop() {
	defer s.wg.Done()
	// Router.Recv returns ErrClosed once Close has closed the router, so no
	// context (and no goroutine to cancel one) is needed; an untracked helper
	// goroutine here could outlive Close and show up as a leak.
	for {
		m, err := s.router.Recv(context.Background())
		if err != nil {
			if errors.Is(err, wire.ErrClosed) {
				return
			}
			continue
		}
		s.handle(m)
	}
}

// sweepLoop runs the timeout and liveness sweeps on their own goroutine, so a
// burst of requests never delays them (B-18); handlers never block while
// holding s.mu (sends are non-blocking queue appends).
func (s *Service) sweepLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	lastLiveness := time.Time{}
	for {
		select {
		case <-s.quit:
			return
		case now := <-t.C:
			s.mu.Lock()
			s.sweepChannels(now)
			s.sweepConsumerHeartbeats(now)
			if s.cfg.LivenessInterval > 0 && now.Sub(lastLiveness) >= s.cfg.LivenessInterval {
				lastLiveness = now
				s.sweepLiveness()
			}
			s.mu.Unlock()
		}
	}
}

// send encodes m and queues it for peer; false when it was not queued. Caller
// may hold s.mu (never blocks).
func (s *Service) send(peer []byte, m proto.Message) bool {
	frames, err := proto.Encode(m)
	if err != nil {
		s.cfg.Logger.Error("broker: encode", "type", m.MsgType(), "err", err)
		return false
	}
	if err := s.router.Send(peer, frames...); err != nil {
		s.cnt.inc(&s.cnt.sendFailures)
		s.cfg.Logger.Warn("broker: send failed", "type", m.MsgType(), "err", err)
		return false
	}
	if e, ok := m.(*proto.ErrorReply); ok {
		s.cnt.add(s.cnt.errors, string(e.ErrorCode))
	} else if proto.IsNotify(m.MsgType()) {
		s.cnt.add(s.cnt.notifications, string(m.MsgType()))
	}
	return true
}

// notify sends notification m about channel c to peer and counts it on c.
// Caller holds s.mu.
func (s *Service) notify(c *channel, peer []byte, m proto.Message) {
	if len(peer) == 0 {
		return
	}
	if s.send(peer, m) {
		c.cnt.countNotify(m.MsgType())
	}
}

// closeChannelLocked notifies consumers (in order) then the producer, and removes c.
func (s *Service) closeChannelLocked(c *channel, reason string) {
	c.status = closing
	n := &proto.ChannelClosingNotify{ChannelName: c.name, Reason: reason}
	for _, k := range c.consumers {
		s.notify(c, k.identity, n)
	}
	s.notify(c, c.producer, n)
	for _, k := range c.consumers {
		s.unwatchLocked(k)
	}
	delete(s.channels, c.name)
}

func (s *Service) sweepChannels(now time.Time) {
	if s.cfg.ChannelTimeout < 0 {
		return
	}
	for _, c := range s.channels {
		if now.Sub(c.lastHeartbeat) >= s.cfg.ChannelTimeout {
			s.cfg.Logger.Warn(fmt.Sprintf("Cat1 channel '%s' timed out", c.name), "channel", c.name, "timeout", s.cfg.ChannelTimeout)
			s.cnt.inc(&s.cnt.chTimeouts)
			s.closeChannelLocked(c, proto.ReasonHeartbeatTimeout)
		}
	}
}

func (s *Service) sweepConsumerHeartbeats(now time.Time) {
	if s.cfg.ConsumerTimeout < 0 {
		return
	}
	for _, c := range s.channels {
		s.removeConsumersLocked(c, func(k *consumer) bool {
			return k.heartbeats && now.Sub(k.lastHeartbeat) > s.cfg.ConsumerTimeout
		}, proto.ReasonHeartbeatTimeout)
	}
}

// sweepLiveness checks consumers that are not watched by a pidfd (spec §7.3).
func (s *Service) sweepLiveness() {
	for _, c := range s.channels {
		s.removeConsumersLocked(c, func(k *consumer) bool {
			return !k.watched && s.isLocal(k.hostname) && !proc.AlivePid(int(k.pid))
		}, proto.ReasonProcessDead)
	}
}

func (s *Service) isLocal(host string) bool { return host == "" || host == s.hostname }

// removeConsumersLocked removes every consumer of c for which dead is true and
// tells the producer with CONSUMER_DIED_NOTIFY.
func (s *Service) removeConsumersLocked(c *channel, dead func(*consumer) bool, reason string) {
	kept := c.consumers[:0]
	for _, k := range c.consumers {
		if !dead(k) {
			kept = append(kept, k)
			continue
		}
		s.cfg.Logger.Warn("Cat2 dead consumer", "channel", c.name, "consumer_pid", k.pid, "reason", reason)
		if reason == proto.ReasonHeartbeatTimeout {
			s.cnt.inc(&s.cnt.consTimeouts)
		} else {
			s.cnt.inc(&s.cnt.dead)
		}
		c.cnt.died[reasonIndex(reason)]++
		s.unwatchLocked(k)
		s.notify(c, c.producer, &proto.ConsumerDiedNotify{ChannelName: c.name, ConsumerPID: k.pid, ConsumerHostname: k.hostname, Reason: reason})
	}
	for i := len(kept); i < len(c.consumers); i++ {
		c.consumers[i] = nil
	}
	c.consumers = kept
}

func (s *Service) watchLocked(k *consumer, startTime uint64) {
	if !s.isLocal(k.hostname) || k.pid == 0 || k.pid > 1<<22 {
		return
	}
	id, err := proc.Lookup(int(k.pid))
	if err != nil || (startTime != 0 && id.StartTime != startTime) {
		return // not a live local process: left to the liveness sweep
	}
	if err := s.watch.Add(id); err != nil {
		return
	}
	k.proc, k.watched = id, true
	s.watched[id]++
}

func (s *Service) unwatchLocked(k *consumer) {
	if !k.watched {
		return
	}
	k.watched = false
	s.watched[k.proc]--
	if s.watched[k.proc] <= 0 {
		delete(s.watched, k.proc)
		s.watch.Remove(k.proc)
	}
}

// onProcessExit runs on the Watch's goroutine when a watched consumer exits.
func (s *Service) onProcessExit(id proc.Identity) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.watched, id)
	for _, c := range s.channels {
		s.removeConsumersLocked(c, func(k *consumer) bool {
			if k.watched && k.proc == id {
				k.watched = false // the Watch forgot it already
				return true
			}
			return false
		}, proto.ReasonProcessDead)
	}
}
