package wire

import (
	"log"
	"log/slog"
	"strings"
)

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug("zmq4: " + strings.TrimSpace(string(p)))
	return len(p), nil
}

// newStdLogger routes zmq4's own log lines into our logger at debug level.
func newStdLogger(l *slog.Logger) *log.Logger {
	return log.New(slogWriter{l}, "", 0)
}
