package hub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pylabhub/plh/broker/proto"
)

func (m *Messenger) id() procID {
	return procID{pid: uint64(m.cfg.Identity.Pid), start: m.cfg.Identity.StartTime}
}

func checkChannel(op, channel string) error {
	if channel == "" {
		return fmt.Errorf("%s: %w: empty channel name", op, ErrInvalidArgument)
	}
	return nil
}

// Ping sends PING_REQ and returns the round-trip time.
func (m *Messenger) Ping(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	if _, err := m.call(ctx, &proto.PingReq{}, false); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// ping is Connect's probe (allowed while connecting).
func (m *Messenger) ping(ctx context.Context, s *session) error {
	_, err := m.call(ctx, &proto.PingReq{}, true)
	return err
}

// RegisterProducer registers channel with the broker (REG_REQ), sends one
// HEARTBEAT_REQ at once so the channel is Ready for a Discover that follows, and
// keeps heartbeating it every HeartbeatInterval until UnregisterChannel,
// Disconnect or Close. After a broker restart it is registered again by itself.
// A channel registered by someone else with another schema hash gives
// ErrSchemaMismatch.
func (m *Messenger) RegisterProducer(ctx context.Context, channel string, info ProducerInfo) error {
	const op = "register producer"
	if err := checkChannel(op, channel); err != nil {
		return err
	}
	rep, err := m.call(ctx, info.regReq(channel, m.id()), false)
	if err != nil {
		return err
	}
	if _, err := expect[*proto.RegAck](op, channel, rep); err != nil {
		return err
	}
	m.owned.addProducer(channel, info)
	if s, err := m.currentSession(op, channel); err == nil {
		_ = m.oneWay(s, &proto.HeartbeatReq{ChannelName: channel, ProducerPID: m.id().pid})
	}
	return nil
}

// UnregisterChannel stops heartbeating channel (even when not connected) and
// removes it from the broker (DEREG_REQ with our pid). ErrNotRegistered when the
// broker does not hold it under our pid.
func (m *Messenger) UnregisterChannel(ctx context.Context, channel string) error {
	const op = "unregister channel"
	if err := checkChannel(op, channel); err != nil {
		return err
	}
	m.owned.removeProducer(channel)
	rep, err := m.call(ctx, &proto.DeregReq{ChannelName: channel, ProducerPID: m.id().pid}, false)
	if err != nil {
		return err
	}
	_, err = expect[*proto.DeregAck](op, channel, rep)
	return err
}

// Discover returns the connection details of channel (DISC_REQ). While the
// channel is registered but not yet Ready (CHANNEL_NOT_READY) it retries every
// DiscoverRetry, each attempt waiting at most DiscoverAttempt, until ctx ends (or
// RequestTimeout when ctx has no deadline). Any other error returns at once
// (ErrChannelNotFound, ErrNotConnected, ...).
func (m *Messenger) Discover(ctx context.Context, channel string) (ChannelInfo, error) {
	const op = "discover"
	if err := checkChannel(op, channel); err != nil {
		return ChannelInfo{}, err
	}
	ctx, cancel := m.withTimeout(ctx)
	defer cancel()
	var notReady error // the last CHANNEL_NOT_READY, reported if time runs out
	for {
		actx, acancel := context.WithTimeout(ctx, m.cfg.DiscoverAttempt)
		rep, err := m.call(actx, &proto.DiscReq{ChannelName: channel}, false)
		acancel()
		if err == nil {
			ack, err := expect[*proto.DiscAck](op, channel, rep)
			if err != nil {
				return ChannelInfo{}, err
			}
			return channelInfo(channel, ack), nil
		}
		switch {
		case errors.Is(err, ErrChannelNotReady):
			notReady = err
		case errors.Is(err, ErrTimeout) && ctx.Err() == nil:
			// This attempt's slice ended: try again within the overall deadline.
		case ctx.Err() != nil && notReady != nil:
			return ChannelInfo{}, fmt.Errorf("%w (last refusal: %w)", err, notReady)
		default:
			m.log.Debug("messenger: discover failed", "channel", channel, "err", err)
			return ChannelInfo{}, err
		}
		if notReady != nil {
			t := time.NewTimer(m.cfg.DiscoverRetry)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ChannelInfo{}, opErr(op, channel, fmt.Errorf("%w (last refusal: %w)", ctxErr(ctx), notReady))
			}
		}
	}
}

// RegisterConsumer registers this process as a consumer of channel
// (CONSUMER_REG_REQ with our pid and start time, so a broker on this host can
// watch the exact process), then heartbeats it (CONSUMER_HEARTBEAT_REQ) every
// HeartbeatInterval and registers it again after a broker restart. Each call adds
// one registration (the broker does not de-duplicate).
func (m *Messenger) RegisterConsumer(ctx context.Context, channel string) error {
	const op = "register consumer"
	if err := checkChannel(op, channel); err != nil {
		return err
	}
	id := m.id()
	rep, err := m.call(ctx, &proto.ConsumerRegReq{ChannelName: channel, ConsumerPID: id.pid, ConsumerStartTime: id.start}, false)
	if err != nil {
		return err
	}
	if _, err := expect[*proto.ConsumerRegAck](op, channel, rep); err != nil {
		return err
	}
	m.owned.addConsumer(channel)
	return nil
}

// DeregisterConsumer removes one consumer registration of this process from
// channel (CONSUMER_DEREG_REQ) and stops heartbeating it when none is left.
func (m *Messenger) DeregisterConsumer(ctx context.Context, channel string) error {
	const op = "deregister consumer"
	if err := checkChannel(op, channel); err != nil {
		return err
	}
	m.owned.removeConsumer(channel)
	rep, err := m.call(ctx, &proto.ConsumerDeregReq{ChannelName: channel, ConsumerPID: m.id().pid}, false)
	if err != nil {
		return err
	}
	_, err = expect[*proto.ConsumerDeregAck](op, channel, rep)
	return err
}

// ReportChecksumError tells the broker that slot slotIndex of channel failed its
// checksum (CHECKSUM_ERROR_REPORT, fire-and-forget; never blocks).
func (m *Messenger) ReportChecksumError(channel string, slotIndex int32, description string) error {
	const op = "report checksum error"
	if err := checkChannel(op, channel); err != nil {
		return err
	}
	s, err := m.currentSession(op, channel)
	if err != nil {
		return err
	}
	if err := m.oneWay(s, &proto.ChecksumErrorReport{ChannelName: channel, SlotIndex: slotIndex, Error: description, ReporterPID: m.id().pid}); err != nil {
		return opErr(op, channel, err)
	}
	return nil
}

// ListChannels returns every channel the broker holds (CHANNEL_LIST_REQ).
func (m *Messenger) ListChannels(ctx context.Context) ([]ChannelSummary, error) {
	const op = "list channels"
	rep, err := m.call(ctx, &proto.ChannelListReq{}, false)
	if err != nil {
		return nil, err
	}
	ack, err := expect[*proto.ChannelListAck](op, "", rep)
	if err != nil {
		return nil, err
	}
	out := make([]ChannelSummary, len(ack.Channels))
	for i, c := range ack.Channels {
		out[i] = ChannelSummary{
			Name: c.Name, SchemaHashHex: c.SchemaHash, ConsumerCount: c.ConsumerCount,
			ProducerPid: c.ProducerPID, Status: c.Status, Pattern: patternOf(c.Pattern),
			HasSharedMemory: c.HasSharedMemory,
		}
	}
	return out, nil
}

// CloseChannel asks the broker to close channel (CHANNEL_CLOSE_REQ): its
// consumers and producer get CHANNEL_CLOSING_NOTIFY with reason "explicit_close".
func (m *Messenger) CloseChannel(ctx context.Context, channel string) error {
	const op = "close channel"
	if err := checkChannel(op, channel); err != nil {
		return err
	}
	rep, err := m.call(ctx, &proto.ChannelCloseReq{ChannelName: channel}, false)
	if err != nil {
		return err
	}
	_, err = expect[*proto.ChannelCloseAck](op, channel, rep)
	return err
}
