package hub

import (
	"encoding/hex"
	"fmt"

	"github.com/pylabhub/plh/broker/proto"
)

// MaxGroupBytes bounds a consumer group name (ConsumerOptions.Group, HELLO
// "group"), as the broker bounds channel names by default.
const MaxGroupBytes = 256

// validGroup reports why name cannot be a consumer group name ("" is no group
// and valid): the rules of a channel name (proto.ValidName), at most
// MaxGroupBytes.
func validGroup(name string) error {
	if len(name) > MaxGroupBytes {
		return fmt.Errorf("group name of %d bytes (at most %d)", len(name), MaxGroupBytes)
	}
	if err := proto.ValidName(name); err != nil {
		return fmt.Errorf("group name: %w", err)
	}
	return nil
}

// group is one consumer group on the producer's peer link (B-7): its members
// share the channel's stream, every item going to exactly one of them (round
// robin among the members with credit). A Pipeline channel's consumers
// without a group name form the group "" (Pipeline's split); a named group
// gets every item of the channel once, whatever the pattern.
//
// Every item a member was given stays in its in-flight list until the member
// returns its credit (CREDIT n acknowledges its n oldest items: the link is
// ordered and the consumer consumes in order). A member that leaves (BYE),
// dies (CONSUMER_DIED_NOTIFY, peer heartbeat timeout) or says HELLO again
// hands its unacknowledged items back to the group (redo); they go to the
// next members with credit before any newer item. All fields are guarded by
// producerLink.mu.
type group struct {
	name    string
	members []*peerState // join order (round robin)
	rr      int
	redo    []*dataBuf // items to deliver again, oldest first; each holds a reference
}

// groupOf returns the group name a HELLO's consumer joins and whether it
// joins one at all (PubSub consumers without a name each get everything).
func (p *producerLink) groupOf(name string) (string, bool) {
	return name, name != "" || p.pat == PatternPipeline
}

// joinGroupLocked puts ps into group name (it was in none, or says HELLO
// again): a member saying HELLO again has its in-flight items handed back
// first, since its new window voids the old credit.
func (p *producerLink) joinGroupLocked(ps *peerState, name string) {
	if ps.grp != nil {
		p.leaveGroupLocked(ps)
	}
	g := p.groups[name]
	if g == nil {
		g = &group{name: name}
		p.groups[name] = g
		p.gorder = append(p.gorder, g)
	}
	g.members = append(g.members, ps)
	ps.grp = g
}

// leaveGroupLocked removes ps from its group, hands its unacknowledged items
// back to the group and delivers them to members with credit. The last
// member's departure ends the group: what it still held is dropped (counted
// in Skipped), as nobody is left to read it.
func (p *producerLink) leaveGroupLocked(ps *peerState) {
	g := ps.grp
	ps.grp = nil
	for i, m := range g.members {
		if m == ps {
			g.members = append(g.members[:i:i], g.members[i+1:]...)
			break
		}
	}
	g.redo = append(g.redo, ps.inflight...)
	ps.inflight = nil
	if len(g.members) > 0 {
		p.pumpLocked(g)
		return
	}
	if n := len(g.redo); n > 0 {
		p.skipped.Add(uint64(n))
		p.log.Warn("hub: the last member of a consumer group left holding unacknowledged items; dropped",
			"group", g.name, "items", n)
	}
	for _, pb := range g.redo {
		pb.Release()
	}
	g.redo = nil
	delete(p.groups, g.name)
	for i, o := range p.gorder {
		if o == g {
			p.gorder = append(p.gorder[:i:i], p.gorder[i+1:]...)
			break
		}
	}
}

// pickLockedIf is pickLocked when ok (nil otherwise).
func (g *group) pickLockedIf(ok bool) *peerState {
	if !ok {
		return nil
	}
	return g.pickLocked()
}

// pickLocked returns the next member with credit (round robin), or nil.
func (g *group) pickLocked() *peerState {
	for i := range g.members {
		c := g.members[(g.rr+i)%len(g.members)]
		if c.credit > 0 {
			g.rr = (g.rr + i + 1) % len(g.members)
			return c
		}
	}
	return nil
}

// deliverLocked sends pb to member ps, spending one credit and keeping pb in
// its in-flight list until acknowledged. It sends under producerLink.mu (a
// Router send never blocks) so the in-flight list is in the link's order.
func (p *producerLink) deliverLocked(ps *peerState, pb *dataBuf) error {
	if err := p.sendPayload(ps.id.ID, pb); err != nil {
		return err
	}
	ps.credit--
	pb.refs.Add(1)
	ps.inflight = append(ps.inflight, pb)
	return nil
}

// pumpLocked delivers g's handed-back items to members with credit, oldest
// first.
func (p *producerLink) pumpLocked(g *group) {
	for len(g.redo) > 0 {
		ps := g.pickLocked()
		if ps == nil {
			return
		}
		pb := g.redo[0]
		if err := p.deliverLocked(ps, pb); err != nil {
			p.log.Debug("hub: redelivery to a group member failed (kept for the next)", "group", g.name,
				"identity", hex.EncodeToString(ps.id.ID), "err", err)
			return
		}
		g.redo[0] = nil
		g.redo = g.redo[1:]
		pb.Release() // the in-flight list holds it now
		p.redelivered.Add(1)
	}
}

// ackLocked drops the n oldest in-flight items of a member (its CREDIT).
func (ps *peerState) ackLocked(n int) {
	n = min(n, len(ps.inflight))
	for i := range n {
		ps.inflight[i].Release()
		ps.inflight[i] = nil
	}
	ps.inflight = ps.inflight[n:]
}

// sendGroups gives pb to one member of every group, waiting (until w's
// deadline) for a member with credit: a group never skips an item. Items
// handed back by departed members go first. With needOne (Pipeline) and no
// group at all it waits for a consumer to join, as a Pipeline Send did.
func (p *producerLink) sendGroups(w *creditWait, pb *dataBuf, needOne bool) error {
	done := map[*group]bool{}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return fmt.Errorf("send %q: %w", p.name, ErrClosed)
		}
		waiting := 0
		for _, g := range p.gorder {
			if done[g] {
				continue
			}
			p.pumpLocked(g)
			if ps := g.pickLockedIf(len(g.redo) == 0); ps != nil {
				if err := p.deliverLocked(ps, pb); err != nil {
					// Kept for the group's next member with credit: never lost.
					pb.refs.Add(1)
					g.redo = append(g.redo, pb)
					p.log.Debug("hub: send to a group member failed (kept for the next)", "group", g.name, "err", err)
				}
				done[g] = true
				continue
			}
			waiting++
		}
		none := needOne && len(done) == 0 && len(p.gorder) == 0
		wake := p.wake
		p.mu.Unlock()
		if waiting == 0 && !none {
			return nil
		}
		if !w.wait(wake) {
			if none {
				return fmt.Errorf("send %q: %w: %w", p.name, ErrNoConsumers, w.err())
			}
			return fmt.Errorf("send %q: %w: %d group(s) without credit: %w", p.name, ErrBackpressure, waiting, w.err())
		}
	}
}

// groupsPendingLocked reports whether a group still has items to deliver.
func (p *producerLink) groupsPendingLocked() bool {
	for _, g := range p.gorder {
		if len(g.redo) > 0 {
			return true
		}
	}
	return false
}
