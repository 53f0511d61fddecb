package nodeevent

import (
	"fmt"
	"os"
	"strconv"
)

// Env is what plh-sim tells a program it runs as a node, from the PLH_*
// environment variables (docs/events.md, "Your own program as a node").
// Empty or zero fields were not set by the scenario.
type Env struct {
	Name       string // PLH_NAME: the node's name
	Role       string // PLH_ROLE: producer or consumer
	Broker     string // PLH_BROKER: the broker endpoint to connect to
	BrokerKey  string // PLH_BROKER_KEY: the broker's CURVE public key ("" = NULL)
	Channel    string // PLH_CHANNEL: the actual channel name of this run
	StatusFile string // PLH_STATUS_FILE: where plh-node would keep its counters (optional)
	Pattern    string // PLH_PATTERN: PubSub, Pipeline, Bidir
	Policy     string // PLH_POLICY: latest, single, sync
	Endpoint   string // PLH_ENDPOINT: where a producer on a host binds
	Schema     string // PLH_SCHEMA
	Shm        bool   // PLH_SHM
	Rate       float64
	Messages   int
	SlotSize   int
	Slots      int
	Secret     uint64
}

// LoadEnv reads the environment of the current process. Name, Role, Broker
// and Channel are required.
func LoadEnv() (Env, error) { return parseEnv(os.Getenv) }

func parseEnv(get func(string) string) (Env, error) {
	e := Env{Name: get("PLH_NAME"), Role: get("PLH_ROLE"), Broker: get("PLH_BROKER"), BrokerKey: get("PLH_BROKER_KEY"),
		Channel: get("PLH_CHANNEL"), StatusFile: get("PLH_STATUS_FILE"), Pattern: get("PLH_PATTERN"),
		Policy: get("PLH_POLICY"), Endpoint: get("PLH_ENDPOINT"), Schema: get("PLH_SCHEMA")}
	for k, v := range map[string]string{"PLH_NAME": e.Name, "PLH_ROLE": e.Role, "PLH_BROKER": e.Broker, "PLH_CHANNEL": e.Channel} {
		if v == "" {
			return e, fmt.Errorf("%w: %s is not set (is the program run by plh-sim?)", ErrEnv, k)
		}
	}
	var err error
	num := func(k string, parse func(string) error) {
		if v := get(k); v != "" && err == nil {
			if perr := parse(v); perr != nil {
				err = fmt.Errorf("%w: %s=%q: %v", ErrEnv, k, v, perr)
			}
		}
	}
	num("PLH_SHM", func(v string) (e2 error) { e.Shm, e2 = strconv.ParseBool(v); return })
	num("PLH_RATE", func(v string) (e2 error) { e.Rate, e2 = strconv.ParseFloat(v, 64); return })
	num("PLH_COUNT", func(v string) (e2 error) { e.Messages, e2 = strconv.Atoi(v); return })
	num("PLH_SLOT_SIZE", func(v string) (e2 error) { e.SlotSize, e2 = strconv.Atoi(v); return })
	num("PLH_SLOTS", func(v string) (e2 error) { e.Slots, e2 = strconv.Atoi(v); return })
	num("PLH_SECRET", func(v string) (e2 error) { e.Secret, e2 = strconv.ParseUint(v, 10, 64); return })
	return e, err
}
