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
	"github.com/pylabhub/plh/internal/trace"
	"github.com/pylabhub/plh/internal/wire"
)

// Service is a running broker.
type Service struct {
	cfg      Config
	router   *wire.Router
	watch    *proc.Watch
	cnt      *counters
	log      *limitedLog // rate-limited WARN/ERROR lines that clients can provoke
	hostname string
	trace    *trace.Tracer // protocol trace (B-13), off unless configured

	quit       chan struct{}
	wg         sync.WaitGroup
	repairs    chan RepairRequest // policy Repair: reports waiting for repairLoop (repair.go)
	stopRepair context.CancelFunc

	mu       sync.Mutex // guards channels, chanGen, listed, watched; never held while blocking
	channels map[string]*channel
	chanGen  uint64                // bumped whenever a channel is added or removed
	listed   sortedNames           // channel names in order, as of generation listed.gen
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
	s := &Service{cfg: cfg, cnt: newCounters(), log: newLimitedLog(cfg.Logger), hostname: host, quit: make(chan struct{}),
		channels: map[string]*channel{}, watched: map[proc.Identity]int{}, trace: trace.New("broker"),
		repairs: make(chan RepairRequest, repairQueue)}
	if cfg.Trace.On {
		if err := s.SetTrace(cfg.Trace); err != nil {
			return nil, err
		}
	}
	s.watch, err = proc.NewWatch(s.onProcessExit)
	if err != nil {
		s.trace.Close()
		return nil, fmt.Errorf("broker: %w", err)
	}
	s.router, err = wire.Listen(cfg.Wire, cfg.Endpoint)
	if err != nil {
		s.watch.Close()
		s.trace.Close()
		return nil, fmt.Errorf("broker: bind %s: %w", cfg.Endpoint, err)
	}
	cfg.Logger.Info("broker ready", "endpoint", s.router.Endpoint(), "pubkey", s.router.PublicKey())
	if cfg.OnReady != nil {
		cfg.OnReady(s.router.Endpoint(), s.router.PublicKey())
	}
	s.wg.Add(2)
	go s.recvLoop()
	go s.sweepLoop()
	if cfg.LivenessInterval > 0 {
		s.wg.Add(1)
		go s.livenessLoop()
	}
	if cfg.Checksum == ChecksumRepair {
		rctx, cancel := context.WithCancel(context.Background())
		s.stopRepair = cancel
		s.wg.Add(1)
		go s.repairLoop(rctx)
	}
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
		if s.stopRepair != nil {
			s.stopRepair()
		}
		s.closeErr = s.router.Close()
		s.wg.Wait()
		s.watch.Close()
		s.trace.Close()
		s.log.flush()
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
	c, ok := s.channels[proto.LogicalName(name)]
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

// sweepLoop runs the timeout sweeps on their own goroutine, so a burst of
// requests never delays them (B-18); handlers never block while holding s.mu
// (sends are non-blocking queue appends).
func (s *Service) sweepLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case now := <-t.C:
			s.mu.Lock()
			s.sweepChannels(now)
			s.sweepConsumerHeartbeats(now)
			s.mu.Unlock()
		}
	}
}

// livenessLoop runs the /proc liveness sweep every LivenessInterval on its own
// goroutine: a sweep of many consumers takes long (a /proc read each) and must
// delay neither requests nor the timeout sweeps.
func (s *Service) livenessLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.LivenessInterval)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
			s.sweepLiveness()
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
	// Counted before the send: a peer that has the reply finds it counted.
	if e, ok := m.(*proto.ErrorReply); ok {
		s.cnt.add(s.cnt.errors, string(e.ErrorCode))
	} else if proto.IsNotify(m.MsgType()) {
		s.cnt.add(s.cnt.notifications, string(m.MsgType()))
	}
	// Traced before the send too, so a peer that has the reply finds it in the
	// trace (a send that then fails is counted in sendFailures).
	s.trace.Message(trace.Out, peer, frames)
	if err := s.router.Send(peer, frames...); err != nil {
		s.cnt.inc(&s.cnt.sendFailures)
		s.log.warn("broker: send failed", "type", m.MsgType(), "err", err)
		return false
	}
	return true
}

// notify sends notification m about channel c to peer and counts it on c.
// Caller holds s.mu.
func (s *Service) notify(c *channel, peer []byte, m proto.Message) {
	if len(peer) == 0 {
		return
	}
	c.cnt.countNotify(m.MsgType()) // before the send, like send's own counters
	s.send(peer, m)
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
	delete(s.channels, c.key)
	s.chanGen++
}

func (s *Service) sweepChannels(now time.Time) {
	if s.cfg.ChannelTimeout < 0 {
		return
	}
	for _, c := range s.channels {
		if now.Sub(c.lastHeartbeat) >= s.cfg.ChannelTimeout {
			s.log.warn("Cat1 channel timed out", "channel", c.name, "timeout", s.cfg.ChannelTimeout)
			s.cnt.inc(&s.cnt.chTimeouts)
			s.closeChannelLocked(c, proto.ReasonHeartbeatTimeout)
		}
	}
}

// sweepConsumerHeartbeats removes consumers silent past ConsumerTimeout, and
// entries that never heartbeat once they are older than Limits.StaleConsumerAge.
func (s *Service) sweepConsumerHeartbeats(now time.Time) {
	timeout, stale := s.cfg.ConsumerTimeout, s.cfg.Limits.StaleConsumerAge
	for _, c := range s.channels {
		s.removeConsumersLocked(c, func(k *consumer) bool {
			if k.heartbeats {
				return timeout >= 0 && now.Sub(k.lastHeartbeat) > timeout
			}
			return stale >= 0 && now.Sub(k.lastHeartbeat) > stale
		}, proto.ReasonHeartbeatTimeout)
	}
}

// sweepLiveness checks the consumers judged by /proc that no pidfd watches
// (spec §7.3). The /proc reads (tens of microseconds each) run without s.mu:
// the candidates are copied under the lock, checked without it, and the dead
// ones removed under it again if their entry is still the same registration.
// So a sweep over 20,000 consumers never holds the request path.
func (s *Service) sweepLiveness() {
	type candidate struct {
		c *channel
		k *consumer
	}
	var cands []candidate
	s.mu.Lock()
	for _, c := range s.channels {
		for _, k := range c.consumers {
			if !k.watched && s.procJudged(k) {
				cands = append(cands, candidate{c, k})
			}
		}
	}
	s.mu.Unlock()
	dead := map[*consumer]bool{}
	chans := map[*channel]bool{}
	for _, cd := range cands {
		if !livenessCheck(cd.k) {
			dead[cd.k], chans[cd.c] = true, true
		}
	}
	for c := range chans {
		s.removeDeadInChunks(c, dead)
	}
	s.cnt.inc(&s.cnt.sweeps)
}

// sweepChunk bounds how many dead consumers one hold of the registry lock
// removes (and notifies), so that a sweep finding thousands dead lets requests
// in between.
const sweepChunk = 500

// removeDeadInChunks removes channel c's consumers found dead by a sweep, at
// most sweepChunk per hold of the lock.
func (s *Service) removeDeadInChunks(c *channel, dead map[*consumer]bool) {
	for {
		removed := 0
		s.mu.Lock()
		if s.channels[c.key] == c {
			s.removeConsumersLocked(c, func(k *consumer) bool {
				if removed < sweepChunk && dead[k] && !k.watched && s.procJudged(k) {
					removed++
					return true
				}
				return false
			}, proto.ReasonProcessDead)
		}
		s.mu.Unlock()
		if removed < sweepChunk {
			return
		}
	}
}

// livenessCheck is alive; tests hold a sweep in the middle through it.
var livenessCheck = alive

// alive checks a consumer's process in /proc: the exact process when its
// start time was registered, else any process with the pid.
func alive(k *consumer) bool {
	if k.startTime != 0 {
		return proc.Identity{Pid: int(k.pid), StartTime: k.startTime}.Alive()
	}
	return proc.AlivePid(int(k.pid))
}

// procJudged reports whether the liveness of consumer k is judged by /proc on
// this host (docs/protocol.md "Consumer liveness"): its consumer_hostname is
// the broker's hostname, or it is empty and the consumer never heartbeats (an
// original client, whose liveness the original judged by pid). A consumer that
// heartbeats with an empty hostname may run on any host: its heartbeats decide.
func (s *Service) procJudged(k *consumer) bool {
	return k.hostname == s.hostname || (k.hostname == "" && !k.heartbeats)
}

// removeConsumersLocked removes every consumer of c for which dead is true and
// tells the producer with CONSUMER_DIED_NOTIFY.
func (s *Service) removeConsumersLocked(c *channel, dead func(*consumer) bool, reason string) {
	kept := c.consumers[:0]
	for _, k := range c.consumers {
		if !dead(k) {
			kept = append(kept, k)
			continue
		}
		s.log.warn("Cat2 dead consumer", "channel", c.name, "consumer_pid", k.pid, "reason", reason)
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

// watchLocked watches consumer k's process with a pidfd when its liveness is
// judged by /proc (procJudged), or when it gave an empty hostname and a start
// time that names a live process here exactly (pid and start time): such a
// consumer is taken as local, and its exit is certain evidence. Anything else is
// left to the liveness sweep (procJudged) or to its heartbeats.
func (s *Service) watchLocked(k *consumer, startTime uint64) {
	exact := k.hostname == "" && startTime != 0
	if !s.procJudged(k) && !exact {
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
