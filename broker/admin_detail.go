package broker

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pylabhub/plh/broker/proto"
)

// This file is the admin shell's view of one channel (hubd/admin: plh.channel).
// It only reads the registry (and the entry's counters) under s.mu.

// ChannelDetail is one channel's full state.
type ChannelDetail struct {
	proto.ChannelInfo
	Producer  ProducerDetail   `json:"producer"`
	Consumers []ConsumerDetail `json:"consumers"`
	Counters  ChannelCounters  `json:"counters"`
}

// ProducerDetail describes a channel's producer as registered.
type ProducerDetail struct {
	PID              uint64  `json:"pid"`
	Hostname         string  `json:"hostname"`
	ShmName          string  `json:"shm_name"`
	SchemaVersion    uint32  `json:"schema_version"`
	CtrlEndpoint     string  `json:"zmq_ctrl_endpoint"`
	DataEndpoint     string  `json:"zmq_data_endpoint"`
	HeartbeatAgeSecs float64 `json:"last_heartbeat_age_s"`
}

// ConsumerDetail describes one consumer entry.
type ConsumerDetail struct {
	PID              uint64  `json:"pid"`
	Hostname         string  `json:"hostname"`
	Watched          bool    `json:"pidfd_watched"`
	Heartbeats       bool    `json:"heartbeats"`
	HeartbeatAgeSecs float64 `json:"last_heartbeat_age_s"`
}

// ChannelDetail returns the state of channel name, or ErrChannelNotFound.
func (s *Service) ChannelDetail(name string) (ChannelDetail, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.channels[proto.LogicalName(name)]
	if !ok {
		return ChannelDetail{}, fmt.Errorf("%w: %q", ErrChannelNotFound, name)
	}
	now := time.Now()
	d := ChannelDetail{
		ChannelInfo: c.info(),
		Producer: ProducerDetail{
			PID: c.reg.ProducerPID, Hostname: c.reg.ProducerHostname, ShmName: c.reg.ShmName,
			SchemaVersion: c.reg.SchemaVersion, CtrlEndpoint: c.reg.ZmqCtrlEndpoint,
			DataEndpoint: c.reg.ZmqDataEndpoint, HeartbeatAgeSecs: now.Sub(c.lastHeartbeat).Seconds(),
		},
		Consumers: make([]ConsumerDetail, 0, len(c.consumers)),
		Counters:  c.cnt.snapshot(now),
	}
	for _, k := range c.consumers {
		cd := ConsumerDetail{PID: k.pid, Hostname: k.hostname, Watched: k.watched, Heartbeats: k.heartbeats}
		if k.heartbeats {
			cd.HeartbeatAgeSecs = now.Sub(k.lastHeartbeat).Seconds()
		}
		d.Consumers = append(d.Consumers, cd)
	}
	return d, nil
}

// SchemaEntry is one channel's schema as registered (B-9; plh.schemas()).
type SchemaEntry struct {
	Channel    string `json:"channel"`
	SchemaHash string `json:"schema_hash"`
	proto.Schema
	// VersionText is Version as "major.minor.patch".
	VersionText string `json:"version_text"`
	// Fields is the number of BLDS members.
	Fields int `json:"fields"`
}

// Schemas returns the schema of every channel, by channel name (channels
// registered without a descriptor have an empty Name).
func (s *Service) Schemas() []SchemaEntry {
	s.mu.Lock()
	out := make([]SchemaEntry, 0, len(s.channels))
	for _, c := range s.channels {
		sc := c.reg.Schema()
		f, _ := proto.SchemaFields(sc.BLDS) // validated at registration
		out = append(out, SchemaEntry{Channel: c.name, SchemaHash: c.reg.SchemaHash, Schema: sc,
			VersionText: proto.VersionString(sc.Version), Fields: len(f)})
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b SchemaEntry) int { return strings.Compare(a.Channel, b.Channel) })
	return out
}
