package hubd

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pylabhub/plh/broker"
)

// This file holds the broker limits of the hub configuration (docs/config.md,
// docs/protocol.md "Limits"): the broker.max_* and broker.list_page* keys, and
// broker.stale_consumer_age_s, each overridable by PYLABHUB_BROKER_<KEY> in
// capitals (PYLABHUB_BROKER_MAX_CHANNELS=500).

// BrokerLimits are the limit keys of the broker section. An integer limit of 0
// takes the broker's default, a negative one removes the limit.
type BrokerLimits struct {
	MaxChannels            int     `json:"max_channels"`
	MaxConsumersPerChannel int     `json:"max_consumers_per_channel"`
	MaxNameBytes           int     `json:"max_name_bytes"`
	MaxMetadataBytes       int     `json:"max_metadata_bytes"`
	MaxFieldBytes          int     `json:"max_field_bytes"`
	MaxBodyBytes           int     `json:"max_body_bytes"`
	ListPage               int     `json:"list_page"`
	ListPageBytes          int     `json:"list_page_bytes"`
	StaleConsumerAgeS      float64 `json:"stale_consumer_age_s"`
}

// limitKeys are the integer limit keys, for the environment overrides.
var limitKeys = []string{"max_channels", "max_consumers_per_channel", "max_name_bytes", "max_metadata_bytes",
	"max_field_bytes", "max_body_bytes", "list_page", "list_page_bytes"}

// Limits maps the limit keys onto broker.Limits. stale_consumer_age_s ≤ 0
// disables the expiry, like the other *_s keys.
func (l BrokerLimits) Limits() broker.Limits {
	return broker.Limits{
		MaxChannels: l.MaxChannels, MaxConsumersPerChannel: l.MaxConsumersPerChannel,
		MaxNameBytes: l.MaxNameBytes, MaxMetadataBytes: l.MaxMetadataBytes, MaxFieldBytes: l.MaxFieldBytes,
		MaxBodyBytes: l.MaxBodyBytes, ListPage: l.ListPage, ListPageBytes: l.ListPageBytes,
		StaleConsumerAge: secs(l.StaleConsumerAgeS),
	}
}

// limitsEnv applies PYLABHUB_BROKER_<KEY> (an integer; stale_consumer_age_s a
// number of seconds) to the merged layers. A value that does not parse is an
// ErrConfig naming the variable.
func limitsEnv(merged map[string]any, getenv func(string) string) error {
	sec, _ := merged["broker"].(map[string]any)
	if sec == nil {
		sec = map[string]any{}
		merged["broker"] = sec
	}
	for _, k := range limitKeys {
		name := "PYLABHUB_BROKER_" + strings.ToUpper(k)
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%w: %s=%q: want an integer", ErrConfig, name, v)
			}
			sec[k] = n
		}
	}
	if v := getenv("PYLABHUB_BROKER_STALE_CONSUMER_AGE_S"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("%w: PYLABHUB_BROKER_STALE_CONSUMER_AGE_S=%q: want seconds", ErrConfig, v)
		}
		sec["stale_consumer_age_s"] = f
	}
	return nil
}
