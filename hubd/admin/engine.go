package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Limits bound one request's execution. Zero fields take the defaults below.
type Limits struct {
	// MaxSteps is the number of Starlark interpreter steps one request may run
	// (default 10,000,000: a few seconds of pure looping).
	MaxSteps uint64
	// Timeout is the wall-clock time one request may run (default 5 s).
	Timeout time.Duration
	// MaxHeapGrowth is how much the Go heap may grow during one request before it
	// is cancelled (default 256 MiB). Checked every 1,000 steps, before every
	// size-growing operation by the size it would produce, and after every call
	// and slice (memory.go).
	MaxHeapGrowth uint64
	// MaxValueLen bounds the result of one size-growing operation: elements of a
	// list, tuple, dict or set, bytes of a string (default 4 Mi). Integer
	// products are limited to 1 Mibit.
	MaxValueLen int
	// MaxOutput bounds the captured print output of one request (default 1 MiB);
	// the rest is dropped and "[output truncated]" appended.
	MaxOutput int
	// MaxGlobals bounds the estimated size of what the persistent globals hold
	// after a request (default 64 MiB); a request leaving them larger fails and
	// its assignments are undone.
	MaxGlobals uint64
}

// DefaultLimits returns the limits used for zero fields.
func DefaultLimits() Limits {
	return Limits{
		MaxSteps:      10_000_000,
		Timeout:       5 * time.Second,
		MaxHeapGrowth: 256 << 20,
		MaxValueLen:   4 << 20,
		MaxOutput:     1 << 20,
		MaxGlobals:    64 << 20,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxSteps == 0 {
		l.MaxSteps = d.MaxSteps
	}
	if l.Timeout <= 0 {
		l.Timeout = d.Timeout
	}
	if l.MaxHeapGrowth == 0 {
		l.MaxHeapGrowth = d.MaxHeapGrowth
	}
	if l.MaxValueLen <= 0 {
		l.MaxValueLen = d.MaxValueLen
	}
	if l.MaxOutput <= 0 {
		l.MaxOutput = d.MaxOutput
	}
	if l.MaxGlobals == 0 {
		l.MaxGlobals = d.MaxGlobals
	}
	return l
}

// EngineConfig configures an Engine.
type EngineConfig struct {
	// HubName is returned by plh.hub_name().
	HubName string
	// Backend is the running hub; nil gives an engine whose plh functions that
	// need a hub return ErrNotAvailable (channels() returns an empty list).
	Backend Backend
	// Limits bound each request.
	Limits Limits
	// Logger receives plh.log() messages and execution failures; nil discards.
	Logger *slog.Logger
}

// Engine executes admin code in one persistent Starlark namespace. Requests are
// serialised by a mutex: globals assigned by one request are visible to the next.
type Engine struct {
	cfg   EngineConfig
	lim   Limits
	log   *slog.Logger
	guard *guard
	opts  *syntax.FileOptions

	mu      sync.Mutex          // serialises Exec; guards the fields below
	globals starlark.StringDict // persistent namespace
	base    starlark.StringDict // the built-in entries of globals (not counted by MaxGlobals)
	reset   bool                // plh.reset() called: rebuild globals after this request
}

// NewEngine returns an engine with a fresh namespace holding the plh module
// (also reachable as pylabhub, the original's name).
func NewEngine(cfg EngineConfig) *Engine {
	lim := cfg.Limits.withDefaults()
	e := &Engine{
		cfg:   cfg,
		lim:   lim,
		log:   cfg.Logger,
		guard: &guard{maxLen: lim.MaxValueLen, maxBits: 1 << 20},
		// Python-like dialect; recursion stays forbidden: deep recursion would
		// grow the Go stack without bound before any step limit triggers.
		opts: &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true},
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.resetGlobals()
	return e
}

// resetGlobals gives the engine a fresh namespace.
func (e *Engine) resetGlobals() {
	e.globals = e.freshGlobals()
	e.base = maps.Clone(e.globals)
}

func (e *Engine) freshGlobals() starlark.StringDict {
	g := e.guard.builtins()
	mod := e.module()
	g["plh"] = mod
	g["pylabhub"] = mod
	g[echoName] = starlark.NewBuiltin(echoName, echo)
	return g
}

// Exec runs code (filename names it in error messages) in the persistent
// namespace and returns what it printed. A failure returns the output printed
// before it and an error whose text is the Starlark backtrace; limits give an
// error wrapping ErrLimit. Cancelling ctx cancels the script at its next step.
func (e *Engine) Exec(ctx context.Context, filename, code string) (output string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()

	out := &capture{max: e.lim.MaxOutput}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error while executing %s: %v", filename, r)
		}
		output = out.String()
		if e.reset {
			e.reset = false
			e.resetGlobals()
		}
	}()

	f, err := e.opts.Parse(filename, code, 0)
	if err != nil {
		return "", err
	}
	rewriteFile(f)
	echoLast(f)

	prev := maps.Clone(e.globals)
	e.guard.acct = newAccount(e.lim.MaxHeapGrowth)
	defer func() { e.guard.acct = nil }()
	err = e.run(ctx, f, out)
	if gerr := e.capGlobals(prev); gerr != nil {
		err = gerr
	}
	if errors.Is(err, ErrLimit) || e.guard.acct.grew() > e.lim.MaxHeapGrowth/4 {
		// Hand what the request allocated back to the OS now rather than at
		// the next GC cycles: a few large requests in a row must not add up.
		debug.FreeOSMemory()
	}
	return "", err
}

// stepChunk is how many interpreter steps run between two checks of the step,
// time and heap limits.
const stepChunk = 1_000

// run executes the rewritten file f under the request's limits.
func (e *Engine) run(ctx context.Context, f *syntax.File, out *capture) error {
	thread := &starlark.Thread{Name: "admin", Print: func(_ *starlark.Thread, msg string) { out.line(msg) }}
	var limitErr error
	limit := func(err error) {
		if limitErr == nil {
			limitErr = err
			thread.Cancel(err.Error())
		}
	}
	deadline := time.Now().Add(e.lim.Timeout)
	thread.SetMaxExecutionSteps(stepChunk)
	thread.OnMaxSteps = func(t *starlark.Thread) {
		steps := t.ExecutionSteps()
		switch heapErr := e.guard.acct.check(0); {
		case steps >= e.lim.MaxSteps:
			limit(fmt.Errorf("%w: more than %d steps", ErrLimit, e.lim.MaxSteps))
		case time.Now().After(deadline):
			limit(fmt.Errorf("%w: ran longer than %v", ErrLimit, e.lim.Timeout))
		case heapErr != nil:
			limit(heapErr)
		default:
			t.SetMaxExecutionSteps(steps + stepChunk)
		}
	}
	// A timer catches a script parked in a built-in that takes long; the context
	// catches the hub shutting down.
	timer := time.AfterFunc(e.lim.Timeout, func() {
		thread.Cancel(fmt.Sprintf("%v: ran longer than %v", ErrLimit, e.lim.Timeout))
	})
	defer timer.Stop()
	stopCtx := context.AfterFunc(ctx, func() { thread.Cancel("request cancelled: " + context.Cause(ctx).Error()) })
	defer stopCtx()

	err := starlark.ExecREPLChunk(f, thread, e.globals)
	if err == nil {
		return nil
	}
	if limitErr != nil {
		return fmt.Errorf("%s: %w", backtrace(err), limitErr)
	}
	if strings.Contains(err.Error(), ErrLimit.Error()) {
		return fmt.Errorf("%s: %w", backtrace(err), ErrLimit)
	}
	return errors.New(backtrace(err))
}

// Reset clears the user's names from the namespace, keeping the plh module and
// built-ins (plh.reset() does the same after the current request).
func (e *Engine) Reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.resetGlobals()
}

func backtrace(err error) string {
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		return ee.Backtrace()
	}
	return err.Error()
}

// heapBytes returns the bytes of heap objects (live and not yet swept).
func heapBytes() uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return sample[0].Value.Uint64()
}

// capture collects print output up to max bytes.
type capture struct {
	b         strings.Builder
	max       int
	truncated bool
}

func (c *capture) line(msg string) {
	if c.truncated {
		return
	}
	if c.b.Len()+len(msg)+1 > c.max {
		c.truncated = true
		c.b.WriteString("[output truncated]\n")
		return
	}
	c.b.WriteString(msg)
	c.b.WriteByte('\n')
}

func (c *capture) String() string { return c.b.String() }

// echoName is the builtin that prints the value of a trailing expression.
const echoName = "plh$echo"

// echoLast makes a chunk whose last statement is an expression print that
// expression's value unless it is None, as an interactive interpreter does.
func echoLast(f *syntax.File) {
	if len(f.Stmts) == 0 {
		return
	}
	last, ok := f.Stmts[len(f.Stmts)-1].(*syntax.ExprStmt)
	if !ok {
		return
	}
	last.X = call(echoName, last.X)
}

func echo(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
	if len(args) == 1 && args[0] != starlark.None && thread.Print != nil {
		thread.Print(thread, args[0].String())
	}
	return starlark.None, nil
}
