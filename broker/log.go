package broker

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// This file keeps the broker's logs bounded under a flood: every warning or
// error that a client can provoke goes through limitedLog, which lets a burst of
// each kind through per window and then only counts; the count is logged
// ("suppressed=N") with the next line of that kind after the window, or at
// Close. Input quoted in a log line or an error message is cut by quote.

const (
	logBurst  = 10               // lines of one kind per window
	logWindow = 10 * time.Second // rate-limit window
	quoteMax  = 128              // bytes of client input quoted in a line
)

type limitedLog struct {
	l     *slog.Logger
	mu    sync.Mutex
	kinds map[string]*logKind // keyed by the fixed message text, never by input
}

type logKind struct {
	level      slog.Level
	start      time.Time
	n          int
	suppressed int
}

func newLimitedLog(l *slog.Logger) *limitedLog {
	return &limitedLog{l: l, kinds: map[string]*logKind{}}
}

// warn logs msg at WARN unless this kind of line is over its burst.
func (g *limitedLog) warn(msg string, args ...any) { g.log(slog.LevelWarn, msg, args...) }

// errorLine logs msg at ERROR unless this kind of line is over its burst.
func (g *limitedLog) errorLine(msg string, args ...any) { g.log(slog.LevelError, msg, args...) }

func (g *limitedLog) log(level slog.Level, msg string, args ...any) {
	now := time.Now()
	g.mu.Lock()
	k, ok := g.kinds[msg]
	if !ok {
		k = &logKind{level: level, start: now}
		g.kinds[msg] = k
	}
	suppressed := 0
	if now.Sub(k.start) >= logWindow {
		suppressed, k.suppressed, k.n, k.start = k.suppressed, 0, 0, now
	}
	k.n++
	if k.n > logBurst {
		k.suppressed++
		g.mu.Unlock()
		return
	}
	g.mu.Unlock()
	if suppressed > 0 {
		g.l.Log(context.Background(), level, "suppressed similar lines", "line", msg, "suppressed", suppressed, "window", logWindow)
	}
	g.l.Log(context.Background(), level, msg, args...)
}

// flush logs the counts still suppressed (at Close).
func (g *limitedLog) flush() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for msg, k := range g.kinds {
		if k.suppressed > 0 {
			g.l.Log(context.Background(), k.level, "suppressed similar lines", "line", msg, "suppressed", k.suppressed)
			k.suppressed = 0
		}
	}
}

// quote cuts client input for a log line or a reply message: at most quoteMax
// bytes (on a rune boundary), then how many bytes were cut.
func quote(s string) string {
	if len(s) <= quoteMax {
		return s
	}
	cut := quoteMax
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(+" + strconv.Itoa(len(s)-cut) + " bytes)"
}
