package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// Version is the plh module's version string (plh.version, pylabhub.__version__).
const Version = "1.0"

// Backend is the running hub as admin code sees it. Values returned as any are
// plain Go data (structs, maps, slices, strings, numbers, bools) converted to
// Starlark through their JSON encoding. Methods are called from the engine's
// execution goroutine while a request runs; they must not block for long.
type Backend interface {
	// Channels lists the channels: name, schema_hash, consumer_count,
	// producer_pid, status, pattern.
	Channels() (any, error)
	// Channel returns one channel's detail (producer, consumers, status, pattern,
	// counters); an unknown name returns an error naming it.
	Channel(name string) (any, error)
	// CloseChannel closes a channel; its producer and consumers are notified.
	CloseChannel(name string) error
	// Config returns the effective configuration.
	Config() any
	// Metrics returns the hub's counters.
	Metrics() any
	// Shutdown requests a graceful hub shutdown (as the first SIGINT does). It
	// must not wait for the shutdown, which waits for the admin server.
	Shutdown()
	// Schemas lists every channel's schema as registered (B-9): channel,
	// schema_hash, name, version, version_text, blds, fields.
	Schemas() any
	// Trace switches the broker's protocol trace (B-13) on (to path, "" = the
	// hub's log) or off, and returns its status; Trace(nil, "") only reports.
	Trace(on *bool, path string) (any, error)
}

// module builds the plh module. Each function reaches the backend at call time.
func (e *Engine) module() *starlarkstruct.Module {
	b := e.cfg.Backend
	fn := func(name string, f func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error)) *starlark.Builtin {
		return starlark.NewBuiltin(name, func(_ *starlark.Thread, bi *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			return f(args, kwargs)
		})
	}
	noArgs := func(name string, f func() (starlark.Value, error)) *starlark.Builtin {
		return fn(name, func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			if err := starlark.UnpackArgs(name, args, kwargs); err != nil {
				return nil, err
			}
			return f()
		})
	}
	oneName := func(name string, f func(string) (starlark.Value, error)) *starlark.Builtin {
		return fn(name, func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var s string
			if err := starlark.UnpackArgs(name, args, kwargs, "name", &s); err != nil {
				return nil, err
			}
			return f(s)
		})
	}
	need := func(name string) error {
		if b == nil {
			return fmt.Errorf("%s: %w", name, ErrNotAvailable)
		}
		return nil
	}
	members := starlark.StringDict{
		"version":     starlark.String(Version),
		"__version__": starlark.String(Version),
		"hub_name": noArgs("hub_name", func() (starlark.Value, error) {
			return starlark.String(e.cfg.HubName), nil
		}),
		"channels": noArgs("channels", func() (starlark.Value, error) {
			if b == nil {
				return starlark.NewList(nil), nil
			}
			v, err := b.Channels()
			if err != nil {
				return nil, err
			}
			return fromGo(v)
		}),
		"channel": oneName("channel", func(name string) (starlark.Value, error) {
			if err := need("channel"); err != nil {
				return nil, err
			}
			v, err := b.Channel(name)
			if err != nil {
				return nil, err
			}
			return fromGo(v)
		}),
		"close": oneName("close", func(name string) (starlark.Value, error) {
			if err := need("close"); err != nil {
				return nil, err
			}
			if err := b.CloseChannel(name); err != nil {
				return nil, err
			}
			e.log.Info("admin closed channel", "channel", name)
			return starlark.None, nil
		}),
		"config": noArgs("config", func() (starlark.Value, error) {
			if err := need("config"); err != nil {
				return nil, err
			}
			return fromGo(b.Config())
		}),
		"metrics": noArgs("metrics", func() (starlark.Value, error) {
			if err := need("metrics"); err != nil {
				return nil, err
			}
			return fromGo(b.Metrics())
		}),
		"shutdown": noArgs("shutdown", func() (starlark.Value, error) {
			if err := need("shutdown"); err != nil {
				return nil, err
			}
			e.log.Info("admin requested shutdown")
			b.Shutdown()
			return starlark.None, nil
		}),
		"schemas": noArgs("schemas", func() (starlark.Value, error) {
			if b == nil {
				return starlark.NewList(nil), nil
			}
			return fromGo(b.Schemas())
		}),
		"trace": fn("trace", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			on, path := starlark.Value(starlark.None), ""
			if err := starlark.UnpackArgs("trace", args, kwargs, "on?", &on, "path?", &path); err != nil {
				return nil, err
			}
			if err := need("trace"); err != nil {
				return nil, err
			}
			var want *bool
			switch v := on.(type) {
			case starlark.NoneType:
			case starlark.Bool:
				w := bool(v)
				want = &w
			default:
				return nil, fmt.Errorf("trace: on must be True, False or None, not %s", on.Type())
			}
			st, err := b.Trace(want, path)
			if err != nil {
				return nil, err
			}
			if want != nil {
				e.log.Info("admin switched the protocol trace", "on", *want, "path", path)
			}
			return fromGo(st)
		}),
		"log": fn("log", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var msg string
			if err := starlark.UnpackArgs("log", args, kwargs, "msg", &msg); err != nil {
				return nil, err
			}
			e.log.Info(msg, "source", "admin")
			return starlark.None, nil
		}),
		"reset": noArgs("reset", func() (starlark.Value, error) {
			e.reset = true // e.mu is held by Exec; applied when the request ends
			return starlark.None, nil
		}),
	}
	return &starlarkstruct.Module{Name: "plh", Members: members}
}

// fromGo converts plain Go data to Starlark through its JSON encoding: objects
// become dicts (keys sorted), arrays lists, integral numbers ints.
func fromGo(v any) (starlark.Value, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("convert hub value: %w", err)
	}
	var tree any
	if err := unmarshalNumbers(raw, &tree); err != nil {
		return nil, fmt.Errorf("convert hub value: %w", err)
	}
	return jsonToStarlark(tree), nil
}

func unmarshalNumbers(raw []byte, out *any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(out)
}

func jsonToStarlark(v any) starlark.Value {
	switch v := v.(type) {
	case nil:
		return starlark.None
	case bool:
		return starlark.Bool(v)
	case string:
		return starlark.String(v)
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return starlark.MakeInt64(i)
		}
		if f, err := v.Float64(); err == nil && !math.IsInf(f, 0) {
			return starlark.Float(f)
		}
		return starlark.String(v.String())
	case []any:
		elems := make([]starlark.Value, len(v))
		for i, e := range v {
			elems[i] = jsonToStarlark(e)
		}
		return starlark.NewList(elems)
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		d := starlark.NewDict(len(v))
		for _, k := range keys {
			_ = d.SetKey(starlark.String(k), jsonToStarlark(v[k])) // string keys never fail
		}
		return d
	}
	return starlark.String(fmt.Sprint(v))
}
