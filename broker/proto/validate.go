package proto

import (
	"fmt"
	"math"
	"unicode"
	"unicode/utf8"
)

// Limits of the protocol itself (the broker adds configurable ones).
const (
	// PidMax is the largest pid Linux can hand out (PID_MAX_LIMIT, 2^22). A
	// consumer_pid must be in 1..PidMax.
	PidMax = 1 << 22
	// MaxDepth bounds the nesting of objects and arrays in a body.
	MaxDepth = 32
)

// ValidName reports why name cannot be a channel name, or nil. A name is UTF-8
// made of letters, marks, digits, punctuation, symbols and the ASCII space
// (unicode.IsPrint). Control characters and U+FFFD are refused: U+FFFD is what
// invalid UTF-8 and lone surrogates (\ud800) decode to, so refusing it keeps two
// different byte strings from naming the same channel. Its length is bounded by
// the broker (broker.Limits.MaxNameBytes), not here.
func ValidName(name string) error {
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: channel_name is not valid UTF-8", ErrInvalid)
	}
	for i, r := range name {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return fmt.Errorf("%w: channel_name has character %U at byte %d (allowed: letters, marks, digits, punctuation, symbols, space)", ErrInvalid, r, i)
		}
	}
	return nil
}

// validPid checks a pid field of a registration against 1..limit.
func validPid(field string, pid, limit uint64) error {
	if pid == 0 || pid > limit {
		return fmt.Errorf("%w: %s %d is not a pid (1..%d)", ErrInvalid, field, pid, limit)
	}
	return nil
}

// validate checks the fields of a decoded request beyond their JSON types.
func validate(m Message) error {
	if name := ChannelOf(m); name != "" {
		if err := ValidName(name); err != nil {
			return err
		}
	}
	switch r := m.(type) {
	case *RegReq:
		// Required, but only an id for DEREG_REQ: the broker never looks a
		// producer up in /proc (its heartbeats decide), so any non-zero value.
		if err := validPid("producer_pid", r.ProducerPID, math.MaxUint64); err != nil {
			return err
		}
		return validSchema(r.Schema())
	case *RemapReq:
		if err := validPid("producer_pid", r.ProducerPID, math.MaxUint64); err != nil {
			return err
		}
		if r.ShmName == "" {
			return fmt.Errorf("%w: missing or empty shm_name", ErrInvalid)
		}
		if r.LayoutGeneration == 0 {
			return fmt.Errorf("%w: layout_generation must be at least 1", ErrInvalid)
		}
		return validSchema(r.Schema())
	case *ConsumerRegReq:
		// Judged by /proc on this host when local: a real pid or nothing.
		return validPid("consumer_pid", r.ConsumerPID, PidMax)
	}
	return nil
}

// validSchema checks a registration's schema descriptor: BLDS only with a
// name, and in the §12.1 grammar.
func validSchema(s Schema) error {
	if !s.Present() {
		if s.BLDS != "" {
			return fmt.Errorf("%w: schema_blds without schema_name", ErrInvalid)
		}
		return nil
	}
	_, err := SchemaFields(s.BLDS)
	return err
}

// tooDeep reports whether body nests objects and arrays deeper than limit. It
// scans bytes (strings skipped), so a hostile body costs one pass and no stack.
func tooDeep(body []byte, limit int) bool {
	depth, inString, escaped := 0, false, false
	for _, c := range body {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > limit {
				return true
			}
		case '}', ']':
			depth--
		}
	}
	return false
}
