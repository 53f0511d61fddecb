package main

// The scale row of plh-bench broker (issue "the broker under hostile and heavy
// clients"): a hub child process (broker_hubproc.go) measured over loopback TCP.
//
//   - registry: the registry is filled to 100, 10,000 and 100,000 channels (REG_REQs
//     pipelined, not measured); at each size, probe REG_REQs of new channels are
//     timed one round trip at a time (then deregistered), and the hub's VmRSS
//     growth over its empty state is divided by the channels held. Then the whole
//     registry is listed with CHANNEL_LIST, following next_cursor page by page.
//   - sweep: PING round trips while the /proc liveness sweep checks 20,000
//     consumer entries (a fresh hub, LivenessInterval 5 s, the default).
//   - half-open: new clients (dial, handshake, one PING) while 1,000 TCP
//     connections that never finish a greeting are held open (see holdHalfOpen
//     for the attacker: every connection the hub closes is re-opened at once).

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/proc"
)

// scaleOpts are the sizes of the scale row; --quick shrinks the samples, never
// the registry sizes (so the figures keep their names).
type scaleOpts struct {
	levels       []int // registry sizes
	probes       int   // timed REG_REQs per size
	sweepRounds  int   // liveness sweeps measured
	consumers    int   // consumer entries per sweep
	halfOpen     int   // half-open connections held
	newClients   int   // new clients timed with and without them
	probeTimeout time.Duration
}

func newScaleOpts(quick bool) scaleOpts {
	o := scaleOpts{levels: []int{100, 10_000, 100_000}, probes: 1000, sweepRounds: 3, consumers: 20_000,
		halfOpen: 1000, newClients: 50, probeTimeout: 10 * time.Second}
	if quick {
		o.probes, o.sweepRounds, o.newClients = 300, 1, 20
	}
	return o
}

// scaleResult holds the figures of the RESULT line.
type scaleResult struct {
	regP50, regP99         map[int]float64 // µs by registry size
	rssPerChannel          map[int]float64 // bytes by registry size
	listMs                 float64
	listed                 int
	pingSweepP99, sweepMax float64 // ms
	pingSweepN             int
	halfP99, halfNullP99   float64 // ms, the bench's security and NULL
	halfFailed             int
}

func scaleBench(quick bool) (*scaleResult, error) {
	o := newScaleOpts(quick)
	note := "quick: 300 probe REG_REQs per size (full: 1,000), 1 sweep (full: 3), 20 new clients (full: 50); registry sizes unchanged"
	if !quick {
		note = "full run (--quick: fewer probes, sweeps and new clients; same registry sizes)"
	}
	fmt.Printf("\nscale: hub as its own process (plh-hub's main, re-executed), %s security, loopback TCP; %s\n", securityName(), note)
	res := &scaleResult{regP50: map[int]float64{}, regP99: map[int]float64{}, rssPerChannel: map[int]float64{}}
	if err := registryScale(o, res); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	if err := sweepScale(o, res); err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	if err := halfOpenScale(o, res); err != nil {
		return nil, fmt.Errorf("half-open: %w", err)
	}
	res.printTargets()
	return res, nil
}

// scaleReg is the REG_REQ of channel name: realistic field sizes, this process.
func scaleReg(name string) *proto.RegReq {
	return &proto.RegReq{ChannelName: name, ShmName: name, SchemaHash: fmt.Sprintf("%064x", 0), SchemaVersion: 1,
		ProducerPID: uint64(os.Getpid()), HasSharedMemory: true, ChannelPattern: "PubSub",
		ZmqCtrlEndpoint: "tcp://127.0.0.1:41235", ZmqDataEndpoint: "tcp://127.0.0.1:41236"}
}

func registryScale(o scaleOpts, res *scaleResult) error {
	top := o.levels[len(o.levels)-1]
	h, err := startHubProc(fmt.Sprintf(`{"hub":{"admin_endpoint":""},"broker":{"max_channels":%d}}`, 2*top),
		"--channel-timeout", "1h")
	if err != nil {
		return err
	}
	defer h.stop()
	c, err := h.dial(10 * time.Second)
	if err != nil {
		return err
	}
	defer c.close()
	if _, err := c.call(&proto.PingReq{}); err != nil {
		return err
	}
	base, err := h.rss()
	if err != nil {
		return err
	}
	fmt.Printf("%-28s %10s %10s %10s %14s\n", "registry size (channels)", "REG p50", "REG p99", "REG max", "RSS/channel")
	held := 0
	for _, n := range o.levels {
		reqs := make([]proto.Request, 0, n-held)
		for i := held; i < n; i++ {
			reqs = append(reqs, scaleReg(fmt.Sprintf("plh_scale_%07d", i)))
		}
		if err := c.pipeline(reqs); err != nil {
			return fmt.Errorf("fill to %d: %w", n, err)
		}
		held = n
		rss, err := h.rss()
		if err != nil {
			return err
		}
		lat, err := probeRegs(c, n, o.probes)
		if err != nil {
			return err
		}
		res.regP50[n], res.regP99[n] = pct(lat, 50)*1000, pct(lat, 99)*1000
		res.rssPerChannel[n] = float64(rss-base) / float64(n)
		fmt.Printf("%-28d %8.0f µs %7.0f µs %7.0f µs %12.0f B\n", n, res.regP50[n], res.regP99[n], pct(lat, 100)*1000, res.rssPerChannel[n])
	}
	t0 := time.Now()
	listed, pages, err := listAll(c)
	if err != nil {
		return err
	}
	res.listMs, res.listed = float64(time.Since(t0).Microseconds())/1000, listed
	if listed != top {
		return fmt.Errorf("CHANNEL_LIST gave %d channels, want %d", listed, top)
	}
	fmt.Printf("CHANNEL_LIST of all %d channels: %.0f ms (%d pages, following next_cursor)\n", listed, res.listMs, pages)
	return nil
}

// probeRegs times probes REG_REQs of new channels, one round trip each, at
// registry size n, then deregisters them; it returns the round trips in ms.
func probeRegs(c *rawClient, n, probes int) ([]float64, error) {
	lat := make([]float64, 0, probes)
	deregs := make([]proto.Request, 0, probes)
	for i := range probes {
		name := fmt.Sprintf("plh_probe_%d_%05d", n, i)
		t0 := time.Now()
		if _, err := c.call(scaleReg(name)); err != nil {
			return nil, fmt.Errorf("probe at %d: %w", n, err)
		}
		lat = append(lat, float64(time.Since(t0).Microseconds())/1000)
		deregs = append(deregs, &proto.DeregReq{ChannelName: name, ProducerPID: uint64(os.Getpid())})
	}
	return lat, c.pipeline(deregs)
}

// listAll follows CHANNEL_LIST's next_cursor from the first page to the last.
func listAll(c *rawClient) (channels, pages int, err error) {
	cursor := ""
	for {
		r, err := c.call(&proto.ChannelListReq{Cursor: cursor})
		if err != nil {
			return 0, 0, err
		}
		ack, ok := r.(*proto.ChannelListAck)
		if !ok {
			return 0, 0, fmt.Errorf("CHANNEL_LIST answered with %T", r)
		}
		channels, pages = channels+len(ack.Channels), pages+1
		if ack.NextCursor == "" {
			return channels, pages, nil
		}
		cursor = ack.NextCursor
	}
}

// deadPid returns a pid no process holds (above the kernel's pid_max when it
// can): a consumer with it cannot be watched by a pidfd, so the sweep checks it.
func deadPid() (uint64, error) {
	for p := 4_000_000; p > 1000; p-- {
		if !proc.AlivePid(p) {
			return uint64(p), nil
		}
	}
	return 0, errors.New("no free pid")
}

// sweepEvery is the hub's liveness interval in the sweep run (the default).
const sweepEvery = 5 * time.Second

// sweepScale measures PING round trips while the liveness sweep checks
// o.consumers entries. Over the wire a consumer of a live local process is
// always watched by a pidfd (never swept), so the entries the sweep must check
// are those of a process that does not exist: consumer_hostname is this host,
// consumer_pid is free. Each sweep checks all of them in /proc and removes
// them (CONSUMER_DIED_NOTIFY to the producer); each round registers them again
// right after a sweep, so the next sweep finds them all.
func sweepScale(o scaleOpts, res *scaleResult) error {
	h, err := startHubProc(`{"hub":{"admin_endpoint":""}}`, "--channel-timeout", "1h", "--consumer-timeout", "1h",
		"--liveness-interval", sweepEvery.String())
	if err != nil {
		return err
	}
	defer h.stop()
	host, err := os.Hostname()
	if err != nil {
		return err
	}
	pid, err := deadPid()
	if err != nil {
		return err
	}
	prod, reg, ping := mustDial3(h)
	if prod == nil {
		return errors.New("cannot connect three clients")
	}
	defer prod.close()
	defer reg.close()
	defer ping.close()
	const perChannel = 1000
	nch := o.consumers / perChannel
	names := make([]string, nch)
	for i := range names {
		names[i] = fmt.Sprintf("plh_sweep_%02d", i)
		if _, err := prod.call(scaleReg(names[i])); err != nil {
			return err
		}
	}
	stopDrain := drain(prod) // from now on prod only receives notifications
	defer stopDrain()
	entry := func(ch string, i int) proto.Request {
		return &proto.ConsumerRegReq{ChannelName: ch, ConsumerPID: pid, ConsumerHostname: host, ConsumerID: strconv.Itoa(i)}
	}
	var rtts, whole []float64
	for round, tries := 0, 0; round < o.sweepRounds; tries++ {
		if tries > 3*o.sweepRounds {
			return errors.New("sweeps keep interrupting the registrations")
		}
		// A sweep has run once the sentinel entry is gone: the next one is a full interval away.
		if err := reg.pipeline([]proto.Request{entry(names[0], -1)}); err != nil {
			return err
		}
		if err := waitConsumers(reg, 0, 15*time.Second); err != nil {
			return err
		}
		due := time.Now().Add(sweepEvery - 100*time.Millisecond) // the next sweep starts about then
		reqs := make([]proto.Request, 0, o.consumers)
		for i := range o.consumers {
			reqs = append(reqs, entry(names[i/perChannel], i))
		}
		if err := reg.pipeline(reqs); err != nil {
			return err
		}
		if n, err := countConsumers(reg); err != nil || n != o.consumers {
			continue // a sweep ran during the registrations: not a full sweep, again
		}
		all, during, err := pingUntilSwept(ping, reg, due)
		if err != nil {
			return err
		}
		rtts, whole = append(rtts, during...), append(whole, all...)
		round++
	}
	res.pingSweepP99, res.sweepMax, res.pingSweepN = pct(rtts, 99), pct(rtts, 100), len(rtts)
	fmt.Printf("PING during liveness sweeps of %d consumers (%d sweeps, %d PINGs from 100 ms before each sweep's due time to its end): p50 %.2f ms  p99 %.2f ms  max %.2f ms\n",
		o.consumers, o.sweepRounds, len(rtts), pct(rtts, 50), res.pingSweepP99, res.sweepMax)
	fmt.Printf("  whole interval between sweeps (%d PINGs): p50 %.2f ms  p99 %.2f ms\n", len(whole), pct(whole, 50), pct(whole, 99))
	fmt.Printf("  (entries of consumer_hostname %q, pid %d: no such process, so no pidfd; each sweep checks and removes all)\n", host, pid)
	return nil
}

func mustDial3(h *hubProc) (a, b, c *rawClient) {
	var cs [3]*rawClient
	for i := range cs {
		var err error
		if cs[i], err = h.dial(10 * time.Second); err != nil {
			for _, x := range cs[:i] {
				x.close()
			}
			return nil, nil, nil
		}
	}
	return cs[0], cs[1], cs[2]
}

// drain reads and discards what arrives at c (the producer's
// CONSUMER_DIED_NOTIFYs) until the returned stop is called.
func drain(c *rawClient) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-quit:
				return
			default:
			}
			_, _ = c.reply("", 50*time.Millisecond)
		}
	}()
	return func() { close(quit); wg.Wait() }
}

// countConsumers sums consumer_count over every channel (CHANNEL_LIST).
func countConsumers(c *rawClient) (int, error) {
	r, err := c.call(&proto.ChannelListReq{})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, ch := range r.(*proto.ChannelListAck).Channels {
		n += int(ch.ConsumerCount)
	}
	return n, nil
}

// waitConsumers polls until the hub holds want consumer entries.
func waitConsumers(c *rawClient, want int, timeout time.Duration) error {
	end := time.Now().Add(timeout)
	for time.Now().Before(end) {
		n, err := countConsumers(c)
		if err != nil || n == want {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%d consumer entries not reached within %v", want, timeout)
}

// pingUntilSwept sends PINGs one round trip at a time on ping until list sees
// the sweep remove every entry. It returns the round trips in ms: all, and
// those sent from due on (the sweep's own).
func pingUntilSwept(ping, list *rawClient, due time.Time) (all, during []float64, err error) {
	swept := make(chan error, 1)
	go func() { swept <- waitConsumers(list, 0, 30*time.Second) }()
	for {
		select {
		case err := <-swept:
			return all, during, err
		default:
		}
		t0 := time.Now()
		if _, err := ping.call(&proto.PingReq{}); err != nil {
			<-swept
			return nil, nil, err
		}
		ms := float64(time.Since(t0).Microseconds()) / 1000
		all = append(all, ms)
		if !t0.Before(due) {
			during = append(during, ms)
		}
	}
}

// halfOpenScale times new clients (dial + handshake + PING) on a fresh hub,
// first alone, then while o.halfOpen connections that send nothing or only a
// part of the ZMTP greeting are held open (re-opened at once when the hub
// drops them; see holdHalfOpen).
func halfOpenScale(o scaleOpts, res *scaleResult) error {
	p99, failed, err := halfOpenRun(o)
	if err != nil {
		return err
	}
	res.halfP99, res.halfFailed, res.halfNullP99 = p99, failed, p99
	if !benchNull { // the same over NULL, whose handshakes issue 12 measured
		benchNull = true
		res.halfNullP99, _, err = halfOpenRun(o)
		benchNull = false
	}
	return err
}

// halfOpenRun is one half-open measurement on a fresh hub of the current
// security; it returns the p99 with the connections held and the clients that
// got no answer.
func halfOpenRun(o scaleOpts) (float64, int, error) {
	h, err := startHubProc(`{"hub":{"admin_endpoint":""}}`)
	if err != nil {
		return 0, 0, err
	}
	defer h.stop()
	base, failed := newClientPings(h, o.newClients, o.probeTimeout)
	if failed > 0 {
		return 0, 0, fmt.Errorf("%d new clients failed without half-open connections", failed)
	}
	logged := h.logs.count()
	stop, held := holdHalfOpen(h.endpoint[len("tcp://"):], o.halfOpen)
	half, failed := newClientPings(h, o.newClients, o.probeTimeout)
	open, reopened := held()
	stop()
	fmt.Printf("new client (dial + handshake + PING), %s, %d clients one after another: alone p50 %.2f ms p99 %.2f ms; with %d half-open connections (%d open at the end, %d re-opened after the hub closed them): p50 %.2f ms p99 %.2f ms max %.2f ms, %d not answered within %v; hub log %d lines meanwhile\n",
		securityName(), o.newClients, pct(base, 50), pct(base, 99), o.halfOpen, open, reopened, pct(half, 50), pct(half, 99), pct(half, 100),
		failed, o.probeTimeout, h.logs.count()-logged)
	return pct(half, 99), failed, nil
}

// newClientPings connects n new clients one after another, each sending one
// PING; it returns the times to PING_ACK in ms (a failure counts as timeout).
func newClientPings(h *hubProc, n int, timeout time.Duration) ([]float64, int) {
	var out []float64
	failed := 0
	for range n {
		t0 := time.Now()
		c, err := h.dial(timeout)
		if err == nil {
			_, err = c.call(&proto.PingReq{})
			c.close()
		}
		el := time.Since(t0)
		if err != nil {
			failed++
			el = max(el, timeout)
		}
		out = append(out, float64(el.Microseconds())/1000)
	}
	return out, failed
}

// holdHalfOpen is the attacker: it keeps n TCP connections to addr open that
// never finish the ZMTP greeting: even ones send nothing, odd ones the 10-byte
// signature and the major version only (what a libzmq peer sends before it
// waits for ours). Each is held, reading whatever the hub sends, until the hub
// closes it, and then opened again at once: the attacker never gives a slot
// back, and costs the hub an accept for every close. (Before, it closed a
// connection as soon as the hub sent its greeting, which the CURVE hub does at
// once and the NULL one after the signature: that was a reconnect flood of up
// to n loops, not n half-open connections.) held reports how many are open
// now and how many were re-opened so far; stop closes them all.
func holdHalfOpen(addr string, n int) (stop func(), held func() (open, reopened int)) {
	quit := make(chan struct{})
	var mu sync.Mutex // guards conns, reopens and stopped
	conns := map[net.Conn]bool{}
	reopens, stopped := 0, false
	var wg sync.WaitGroup
	partial := []byte{0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 3}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first := true; ; first = false {
				select {
				case <-quit:
					return
				default:
				}
				conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				if i%2 == 1 {
					_, _ = conn.Write(partial)
				}
				mu.Lock()
				if stopped {
					mu.Unlock()
					conn.Close()
					return
				}
				conns[conn] = true
				if !first {
					reopens++
				}
				mu.Unlock()
				_, _ = io.Copy(io.Discard, conn) // until the hub closes it, or stop does
				mu.Lock()
				delete(conns, conn)
				mu.Unlock()
				conn.Close()
			}
		}()
	}
	// Wait (up to 10 s) until all are connected before measuring.
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		k := len(conns)
		mu.Unlock()
		if k >= n {
			break
		}
	}
	stop = func() {
		close(quit)
		mu.Lock()
		stopped = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
	held = func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return len(conns), reopens
	}
	return stop, held
}

// printTargets prints the two targets as target/actual.
func (r *scaleResult) printTargets() {
	lo, hi := r.regP99[100], r.regP99[100_000]
	fmt.Printf("target: REG p99 at 100,000 channels within 2x of p99 at 100: %.2fx (%.0f µs / %.0f µs) %s\n",
		hi/lo, hi, lo, verdict(hi <= 2*lo))
	fmt.Printf("target: PING p99 under a liveness sweep ≤ 5 ms: %.2f ms %s\n", r.pingSweepP99, verdict(r.pingSweepP99 <= 5))
}

// fields is the scale row's part of the RESULT line.
func (r *scaleResult) fields() string {
	return fmt.Sprintf("reg_p50_100_us=%.0f reg_p99_100_us=%.0f reg_p50_100k_us=%.0f reg_p99_10k_us=%.0f reg_p99_100k_us=%.0f "+
		"rss_per_channel_b=%.0f list_100k_ms=%.0f ping_p99_sweep_ms=%.2f ping_p99_halfopen_ms=%.2f ping_p99_halfopen_null_ms=%.2f halfopen_unanswered=%d",
		r.regP50[100], r.regP99[100], r.regP50[100_000], r.regP99[10_000], r.regP99[100_000],
		r.rssPerChannel[100_000], r.listMs, r.pingSweepP99, r.halfP99, r.halfNullP99, r.halfFailed)
}

func verdict(ok bool) string {
	if ok {
		return "(met)"
	}
	return "(NOT met)"
}
