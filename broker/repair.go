package broker

import (
	"context"
	"fmt"

	"github.com/pylabhub/plh/broker/proto"
)

// repairQueue bounds the CHECKSUM_ERROR_REPORTs waiting for a repair; a report
// beyond it is answered at once with repair_failed ("repair queue full").
const repairQueue = 64

// RepairRequest is one repair for Config.RepairSlot: the reported slot of a
// channel's segment, and who the registry says produces it.
type RepairRequest struct {
	Channel     string
	ShmName     string // the segment, as the producer registered it (shm_name)
	SlotIndex   int32  // as reported; not checked against the ring
	ProducerPID uint64 // the registered producer_pid: RepairSlot checks the segment is its own
	ReporterPID uint64
	Error       string // the reporter's description
}

// RepairResult is what Config.RepairSlot did.
type RepairResult struct {
	Repaired bool   // the slot's stored hash was recomputed (broker_action "repaired")
	Detail   string // broker_detail: why nothing was repaired, or what was
}

// queueRepair hands report r of channel c to the repair goroutine (s.mu held),
// or tells the parties at once why it cannot be repaired here.
func (s *Service) queueRepair(c *channel, r *proto.ChecksumErrorReport) {
	req := RepairRequest{Channel: c.name, ShmName: c.reg.ShmName, SlotIndex: r.SlotIndex,
		ProducerPID: c.reg.ProducerPID, ReporterPID: r.ReporterPID, Error: r.Error}
	var why string
	switch {
	case !c.reg.HasSharedMemory || c.reg.ShmName == "":
		why = "the channel has no shared memory"
	case c.reg.ProducerHostname != "" && c.reg.ProducerHostname != s.hostname:
		why = fmt.Sprintf("the producer runs on host %q, not on the hub's %q", c.reg.ProducerHostname, s.hostname)
	default:
		select {
		case s.repairs <- req:
			return
		default:
			why = "repair queue full"
		}
	}
	s.cnt.inc(&s.cnt.repairsFailed)
	s.notifyParties(c, repairNotice(req, proto.ActionRepairFailed, why))
}

// repairLoop runs Config.RepairSlot for each queued report, one at a time and
// without s.mu, then tells the channel's parties the outcome.
func (s *Service) repairLoop(ctx context.Context) {
	defer s.wg.Done()
	for {
		select {
		case <-s.quit:
			return
		case req := <-s.repairs:
			res, err := s.cfg.RepairSlot(ctx, req)
			action, detail := proto.ActionNotRepaired, res.Detail
			switch {
			case err != nil:
				action, detail = proto.ActionRepairFailed, err.Error()
				s.cnt.inc(&s.cnt.repairsFailed)
				s.log.warn("checksum repair failed", "channel", req.Channel, "slot_index", req.SlotIndex, "err", err)
			case res.Repaired:
				action = proto.ActionRepaired
				s.cnt.inc(&s.cnt.repaired)
				s.cfg.Logger.Warn("checksum repaired: the slot's hash now vouches for its current bytes",
					"channel", req.Channel, "segment", req.ShmName, "slot_index", req.SlotIndex, "reporter_pid", req.ReporterPID)
			}
			s.mu.Lock()
			if c, ok := s.channels[req.Channel]; ok {
				s.notifyParties(c, repairNotice(req, action, detail))
			}
			s.mu.Unlock()
		}
	}
}

func repairNotice(req RepairRequest, action, detail string) *proto.ChannelEventNotify {
	return &proto.ChannelEventNotify{ChannelName: req.Channel, SlotIndex: req.SlotIndex, Error: req.Error,
		ReporterPID: req.ReporterPID, BrokerAction: action, BrokerDetail: detail}
}
