package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"
)

const (
	promptFirst = ">>> "
	promptMore  = "... "
	historyMax  = 500
)

// repl reads blocks of code and sends each one. On a terminal it edits lines
// (arrows, history; Ctrl-D or Ctrl-C on an empty line quits) and prints errors
// in red; otherwise it reads plain lines without prompts and returns 1 if any
// request failed.
func (sh *shell) repl(stdin *os.File) int {
	fd := int(stdin.Fd())
	if term.IsTerminal(fd) {
		return sh.replTerminal(stdin, fd)
	}
	return sh.replLines(stdin)
}

// block accumulates the lines of one request: a line ending in ':' opens an
// indented block that ends at an empty line; open brackets or a trailing
// backslash continue the statement.
type block struct{ lines []string }

func (b *block) add(line string) { b.lines = append(b.lines, line) }

func (b *block) empty() bool { return len(b.lines) == 0 }

func (b *block) code() string { return strings.Join(b.lines, "\n") + "\n" }

func (b *block) reset() { b.lines = b.lines[:0] }

// complete reports whether the block can be sent.
func (b *block) complete() bool {
	if len(b.lines) == 0 {
		return false
	}
	last := b.lines[len(b.lines)-1]
	if strings.HasSuffix(strings.TrimRight(b.lines[0], " \t"), ":") {
		return len(b.lines) > 1 && strings.TrimSpace(last) == ""
	}
	if strings.HasSuffix(last, "\\") {
		return false
	}
	return bracketDepth(b.code()) <= 0 || strings.TrimSpace(last) == ""
}

// bracketDepth counts open brackets outside string literals and comments.
func bracketDepth(src string) int {
	depth := 0
	var quote byte
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			depth--
		}
	}
	return depth
}

func isQuit(line string) bool {
	switch strings.TrimSpace(line) {
	case ":quit", ":exit", ":q":
		return true
	}
	return false
}

// replLines is the plain line mode (stdin is a pipe or file).
func (sh *shell) replLines(in io.Reader) int {
	status := 0
	var b block
	flush := func() bool {
		if b.empty() {
			return true
		}
		ok, err := sh.send(b.code())
		b.reset()
		if !ok {
			status = 1
		}
		return err == nil
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if b.empty() && isQuit(line) {
			return status
		}
		if b.empty() && strings.TrimSpace(line) == "" {
			continue
		}
		b.add(line)
		if b.complete() && !flush() {
			return 1
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(sh.errOut, "plh-admin: read input:", err)
		return 1
	}
	if !flush() {
		return 1
	}
	return status
}

// replTerminal is the interactive mode on a terminal.
func (sh *shell) replTerminal(stdin *os.File, fd int) int {
	old, err := term.MakeRaw(fd)
	if err != nil {
		return sh.replLines(stdin)
	}
	defer term.Restore(fd, old) //nolint:errcheck // best effort on exit
	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{stdin, sh.out}, promptFirst)
	if w, h, err := term.GetSize(fd); err == nil {
		_ = t.SetSize(w, h)
	}
	sh.out, sh.errOut, sh.color = t, t, true
	hist := openHistory(t)
	defer hist.close()

	fmt.Fprintln(t, "plh admin shell (Starlark). :help for help, :quit to leave.")
	var b block
	for {
		line, err := t.ReadLine()
		if errors.Is(err, io.EOF) {
			fmt.Fprintln(t)
			return 0
		}
		if err != nil && !errors.Is(err, term.ErrPasteIndicator) {
			sh.printErr("plh-admin: " + err.Error())
			return 1
		}
		hist.add(line)
		if b.empty() && isQuit(line) {
			return 0
		}
		if b.empty() && strings.TrimSpace(line) == "" {
			continue
		}
		b.add(line)
		if !b.complete() {
			t.SetPrompt(promptMore)
			continue
		}
		t.SetPrompt(promptFirst)
		_, _ = sh.send(b.code()) // errors are printed; the REPL goes on
		b.reset()
	}
}

// history persists REPL lines in $PLH_ADMIN_HISTORY (default
// ~/.plh_admin_history; "-" disables) and preloads the terminal's history.
type history struct{ f *os.File }

func openHistory(t *term.Terminal) *history {
	path := os.Getenv("PLH_ADMIN_HISTORY")
	if path == "-" {
		return &history{}
	}
	if path == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return &history{}
		}
		path = filepath.Join(home, ".plh_admin_history")
	}
	if data, err := os.ReadFile(path); err == nil {
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > historyMax {
			lines = lines[len(lines)-historyMax:]
		}
		for _, l := range lines {
			if l != "" {
				t.History.Add(l)
			}
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return &history{}
	}
	return &history{f: f}
}

func (h *history) add(line string) {
	if h.f != nil && strings.TrimSpace(line) != "" {
		_, _ = fmt.Fprintln(h.f, line)
	}
}

func (h *history) close() {
	if h.f != nil {
		_ = h.f.Close()
	}
}
