package main

import (
	"fmt"
	"os"
	"sync"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/internal/wire/curve"
)

// Security of the broker benchmark. By default it measures the default
// configuration: the broker is a CURVE server and every Messenger a CURVE client.
// --null measures NULL security instead.

// benchNull selects NULL security for the brokers started from now on.
var benchNull bool

// benchKeys is the one server key pair of this process, so a broker started
// again on the same port (reregister) keeps its public key.
var benchKeys = sync.OnceValues(curve.GenerateKeyPair)

// benchBrokerKeys maps the endpoint of each broker we started to its public key.
var benchBrokerKeys sync.Map

// benchKeyEnv hands the broker key to a --consumer-child process.
const benchKeyEnv = "PLH_BENCH_BROKER_KEY"

// benchCurve is the CurveConfig of a benchmark broker.
func benchCurve() (broker.CurveConfig, error) {
	if benchNull {
		return broker.CurveConfig{Disabled: true}, nil
	}
	kp, err := benchKeys()
	if err != nil {
		return broker.CurveConfig{}, fmt.Errorf("CURVE key pair: %w", err)
	}
	return broker.CurveConfig{Keys: kp}, nil
}

// benchKeyOf returns the key to connect to endpoint with: that of a broker we
// started, else (a consumer child) the one in benchKeyEnv, else "" (NULL, e.g.
// the scripted silent broker).
func benchKeyOf(endpoint string) string {
	if k, ok := benchBrokerKeys.Load(endpoint); ok {
		return k.(string)
	}
	return os.Getenv(benchKeyEnv)
}

// securityName names the security the next brokers use, for headings.
func securityName() string {
	if benchNull {
		return "NULL"
	}
	return "CURVE"
}

// benchRow is one line of a results table.
type benchRow struct {
	name string
	v    float64
}
