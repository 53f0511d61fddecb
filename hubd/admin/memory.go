package admin

import (
	"fmt"
	"maps"
	"unsafe"

	"go.starlark.net/starlark"
)

// This file bounds memory: what one request may allocate (an account checked
// against the Go heap before and after every size-growing operation), and what
// the persistent globals may hold (an estimate taken after every request).

// checkEvery is how many bytes of charged allocations may pass between two
// heap readings; any single operation at least this large is checked at once.
const checkEvery = 1 << 20

// account is one request's memory account: the heap at its start and the bytes
// charged since the last heap reading.
type account struct {
	heap0   uint64
	limit   uint64
	pending uint64
}

func newAccount(limit uint64) *account { return &account{heap0: heapBytes(), limit: limit} }

// charge records n bytes about to be allocated (before: true) or just
// allocated (before: false) and reads the heap when enough has been charged.
// It fails when the heap, plus n when the allocation is still to come, would
// exceed the request's allowance.
func (a *account) charge(n uint64, before bool) error {
	if a == nil {
		return nil
	}
	a.pending += n
	if n < checkEvery && a.pending < checkEvery {
		return nil
	}
	a.pending = 0
	if !before {
		n = 0
	}
	return a.check(n)
}

// check fails when the heap plus extra exceeds the allowance.
func (a *account) check(extra uint64) error {
	if heapBytes()+extra > a.heap0+a.limit {
		return fmt.Errorf("%w: heap grew by more than %d MiB", ErrLimit, a.limit>>20)
	}
	return nil
}

// grew reports how much the heap grew since the request started.
func (a *account) grew() uint64 { return max(heapBytes(), a.heap0) - a.heap0 }

// chargeResult implements plh$charge(v): every call and slice result passes
// through it, so an operation the size guards do not know (a method such as
// split or items, a slice, a user function) is still accounted.
func (g *guard) chargeResult(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("internal guard called with %d arguments", len(args))
	}
	if err := g.acct.charge(shallowSize(args[0]), false); err != nil {
		return nil, err
	}
	return args[0], nil
}

// reserve charges n bytes an operation is about to allocate.
func (g *guard) reserve(n int) error { return g.acct.charge(uint64(max(n, 0)), true) }

// Estimated sizes of the parts of Starlark values (64-bit Go).
const (
	slotBytes     = 16 // one interface value in a list or tuple
	hashEntry     = 64 // one dict or set entry with its share of the table
	headerBytes   = 48 // a list, dict, set or function object
	sharedStrings = 64 // strings at least this long are counted once
)

// shallowSize estimates the bytes of v itself, not of the values it refers to.
func shallowSize(v starlark.Value) uint64 {
	switch v := v.(type) {
	case starlark.String:
		return uint64(len(v))
	case starlark.Bytes:
		return uint64(len(v))
	case starlark.Tuple:
		return uint64(len(v)) * slotBytes
	case *starlark.List:
		return uint64(v.Len()) * slotBytes
	case *starlark.Dict:
		return uint64(v.Len()) * hashEntry
	case *starlark.Set:
		return uint64(v.Len()) * hashEntry
	}
	return 0
}

// sizer estimates the memory a set of values holds, counting shared containers
// and long strings once, and stops as soon as the total exceeds max. Scalars are
// counted as they are met; only containers wait on the stack.
type sizer struct {
	seen  map[unsafe.Pointer]bool
	stack []starlark.Value
	total uint64
	max   uint64
}

// globalsSize returns the estimated size of the values of g that are not the
// built-in entries of base, or a value above max as soon as it is exceeded.
func globalsSize(g, base starlark.StringDict, max uint64) uint64 {
	s := &sizer{seen: map[unsafe.Pointer]bool{}, max: max}
	for name, v := range g {
		if b, ok := base[name]; !ok || b != v {
			s.add(v)
		}
	}
	for len(s.stack) > 0 && s.total <= s.max {
		v := s.stack[len(s.stack)-1]
		s.stack = s.stack[:len(s.stack)-1]
		s.expand(v)
	}
	return s.total
}

// once reports whether p is seen for the first time.
func (s *sizer) once(p unsafe.Pointer) bool {
	if s.seen[p] {
		return false
	}
	s.seen[p] = true
	return true
}

// add counts v: a scalar at once (beyond the slot that holds it), a container
// the first time it is met, its elements later (expand).
func (s *sizer) add(v starlark.Value) {
	switch v := v.(type) {
	case starlark.String:
		s.addBytes(string(v))
	case starlark.Bytes:
		s.addBytes(string(v))
	case starlark.Int:
		if _, small := v.Int64(); !small {
			s.total += uint64(v.BigInt().BitLen()/8) + slotBytes
		}
	case starlark.Tuple:
		if len(v) > 0 && s.once(unsafe.Pointer(&v[0])) {
			s.total += shallowSize(v) + headerBytes
			s.stack = append(s.stack, v)
		}
	case *starlark.List, *starlark.Dict, *starlark.Set, *starlark.Function, *starlark.Builtin:
		if s.once(pointerOf(v)) {
			s.total += shallowSize(v) + headerBytes
			s.stack = append(s.stack, v)
		}
	}
}

func (s *sizer) addBytes(b string) {
	if len(b) < sharedStrings || s.once(unsafe.Pointer(unsafe.StringData(b))) {
		s.total += uint64(len(b)) + slotBytes
	}
}

// pointerOf returns the address of a pointer-shaped value.
func pointerOf(v starlark.Value) unsafe.Pointer {
	switch v := v.(type) {
	case *starlark.List:
		return unsafe.Pointer(v)
	case *starlark.Dict:
		return unsafe.Pointer(v)
	case *starlark.Set:
		return unsafe.Pointer(v)
	case *starlark.Function:
		return unsafe.Pointer(v)
	case *starlark.Builtin:
		return unsafe.Pointer(v)
	}
	return nil
}

// expand counts what container v refers to, stopping once over max.
func (s *sizer) expand(v starlark.Value) {
	switch v := v.(type) {
	case *starlark.Dict:
		s.each(v, func(k starlark.Value) {
			val, _, _ := v.Get(k)
			s.add(val)
		})
	case starlark.Iterable: // tuple, list, set
		s.each(v, nil)
	case *starlark.Function:
		for i := range v.NumFreeVars() {
			_, fv := v.FreeVar(i)
			s.add(fv)
		}
		for i := range v.NumParams() {
			s.add(v.ParamDefault(i))
		}
	case *starlark.Builtin:
		s.add(v.Receiver())
	}
}

// each adds every element of v (and calls also on it), stopping once over max.
func (s *sizer) each(v starlark.Iterable, also func(starlark.Value)) {
	it := v.Iterate()
	defer it.Done()
	var e starlark.Value
	for s.total <= s.max && it.Next(&e) {
		s.add(e)
		if also != nil {
			also(e)
		}
	}
}

// capGlobals enforces Limits.MaxGlobals after a request: over the cap, the
// names the request bound go back to prev; if a value kept from before grew in
// place and the globals are still over, the user's names are cleared.
func (e *Engine) capGlobals(prev starlark.StringDict) error {
	limit := e.lim.MaxGlobals
	size := globalsSize(e.globals, e.base, limit)
	if size <= limit {
		return nil
	}
	e.globals = maps.Clone(prev)
	if globalsSize(e.globals, e.base, limit) <= limit {
		return fmt.Errorf("%w: globals would hold more than %d MiB; this request's assignments were undone",
			ErrLimit, limit>>20)
	}
	e.resetGlobals()
	return fmt.Errorf("%w: globals hold more than %d MiB; all user globals were cleared", ErrLimit, limit>>20)
}
