// Command plh-msgconsumer is a test helper of suites/messenger: a process that
// connects a Messenger to a broker, registers as a consumer of one channel, emits
// a "registered" event on stdout and then waits to be killed (SIGTERM/SIGINT end
// it cleanly). The suite SIGKILLs it to prove the producer hears CONSUMER_DIED_NOTIFY.
// $PLH_HEARTBEAT (a duration) sets the Messenger's heartbeat interval; the
// Messenger's broker_lost and broker_reconnected are events too.
//
//	plh-msgconsumer ENDPOINT CHANNEL
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/internal/event"
)

func main() {
	if len(os.Args) != 3 && len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: plh-msgconsumer ENDPOINT CHANNEL [BROKER_KEY]")
		os.Exit(2)
	}
	key := ""
	if len(os.Args) == 4 {
		key = os.Args[3]
	}
	os.Exit(run(os.Args[1], os.Args[2], key))
}

func run(endpoint, channel, key string) int {
	ev := event.NewWriter(os.Stdout, "msgconsumer")
	var cfg hub.MessengerConfig
	if hb := os.Getenv("PLH_HEARTBEAT"); hb != "" {
		d, err := time.ParseDuration(hb)
		if err != nil {
			_ = ev.Emit("error", map[string]any{"op": "PLH_HEARTBEAT", "error": err.Error()})
			return 2
		}
		cfg.HeartbeatInterval = d
	}
	m, err := hub.NewMessenger(cfg)
	if err != nil {
		_ = ev.Emit("error", map[string]any{"op": "new", "error": err.Error()})
		return 1
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.Connect(ctx, endpoint, key); err != nil {
		_ = ev.Emit("error", map[string]any{"op": "connect", "error": err.Error()})
		return 1
	}
	m.OnBrokerLost(func(err error) { _ = ev.Emit("broker_lost", map[string]any{"error": err.Error()}) })
	m.OnBrokerReconnected(func(n int) { _ = ev.Emit("broker_reconnected", map[string]any{"channels": n}) })
	if err := m.RegisterConsumer(ctx, channel); err != nil {
		_ = ev.Emit("error", map[string]any{"op": "register consumer", "error": err.Error()})
		return 1
	}
	_ = ev.Emit("registered", map[string]any{"channel": channel, "pid": os.Getpid()})
	sig, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	<-sig.Done()
	return 0
}
