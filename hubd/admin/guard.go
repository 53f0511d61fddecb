package admin

import (
	"fmt"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// guard holds the size limits the guard builtins enforce. One guard belongs to
// one Engine; its builtins run on the engine's execution goroutine only.
type guard struct {
	maxLen  int      // elements of a list/tuple/dict/set, bytes of a string
	maxBits int      // bits of an integer product
	acct    *account // the running request's memory account (nil between requests)
}

// errTooLarge is the error a guard builtin returns when an operation's result
// would exceed the limits; it surfaces as "interpreter error: ...".
func (g *guard) errTooLarge(what string, n int) error {
	return fmt.Errorf("%w: %s would hold %d elements/bytes (limit %d)", ErrLimit, what, n, g.maxLen)
}

// builtins returns the guard builtins the rewriter targets plus the wrapped
// universal functions that materialise or scan an iterable. They are installed
// in the globals of every request, shadowing the universal names.
func (g *guard) builtins() starlark.StringDict {
	d := starlark.StringDict{
		guardBinary:   starlark.NewBuiltin(guardBinary, g.binary),
		guardInplace:  starlark.NewBuiltin(guardInplace, g.inplace),
		guardAugIndex: starlark.NewBuiltin(guardAugIndex, g.augIndex),
		guardMethod:   starlark.NewBuiltin(guardMethod, g.method),
		guardCharge:   starlark.NewBuiltin(guardCharge, g.chargeResult),
	}
	for name, perElem := range map[string]int{"list": slotBytes, "tuple": slotBytes, "sorted": slotBytes,
		"reversed": slotBytes, "set": hashEntry, "dict": hashEntry, "enumerate": hashEntry, "zip": hashEntry,
		"any": 0, "all": 0, "min": 0, "max": 0} {
		d[name] = g.wrapIterables(name, perElem)
	}
	for _, name := range []string{"str", "repr", "print"} {
		d[name] = g.wrapRepr(name)
	}
	return d
}

// wrapIterables wraps a universal builtin so that positional arguments longer
// than maxLen are refused before the builtin walks them (a builtin never checks
// for cancellation, so list(range(1 << 60)) would otherwise run for ever), and
// what the result would hold (perElem bytes an element) is charged first.
func (g *guard) wrapIterables(name string, perElem int) *starlark.Builtin {
	real := starlark.Universe[name]
	return starlark.NewBuiltin(name, func(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		total := 0
		for _, a := range args {
			n := starlark.Len(a)
			if n > g.maxLen {
				return nil, g.errTooLarge(name+"()", n)
			}
			total += max(n, 0)
		}
		if err := g.reserve(total * perElem); err != nil {
			return nil, err
		}
		return starlark.Call(thread, real, args, kwargs)
	})
}

// wrapRepr wraps str, repr and print: the text they would build is estimated
// first (reprSize stops counting at the limit).
func (g *guard) wrapRepr(name string) *starlark.Builtin {
	real := starlark.Universe[name]
	return starlark.NewBuiltin(name, func(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		total := 0
		for _, a := range args {
			total += reprSize(a, g.maxLen-total, 0)
			if total > g.maxLen {
				return nil, g.errTooLarge(name+"()", total)
			}
		}
		if err := g.reserve(total); err != nil {
			return nil, err
		}
		return starlark.Call(thread, real, args, kwargs)
	})
}

func unpackOp(args starlark.Tuple, n int) (syntax.Token, error) {
	if len(args) != n {
		return 0, fmt.Errorf("internal guard called with %d arguments", len(args))
	}
	switch args[0] {
	case starlark.String("*"):
		return syntax.STAR, nil
	case starlark.String("+"):
		return syntax.PLUS, nil
	case starlark.String("%"):
		return syntax.PERCENT, nil
	}
	return 0, fmt.Errorf("internal guard called with operator %v", args[0])
}

// binary implements plh$binary(op, x, y): x op y after a size check, with the
// result's size charged to the request first.
func (g *guard) binary(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
	op, err := unpackOp(args, 3)
	if err != nil {
		return nil, err
	}
	return g.apply(op, args[1], args[2])
}

// apply computes x op y after check and reserve.
func (g *guard) apply(op syntax.Token, x, y starlark.Value) (starlark.Value, error) {
	size, err := g.check(op, x, y)
	if err != nil {
		return nil, err
	}
	if err := g.reserve(size); err != nil {
		return nil, err
	}
	return starlark.Binary(op, x, y)
}

// check refuses x op y when the result would exceed the limits, and returns
// an estimate of the result's bytes (0 when small or unknown).
func (g *guard) check(op syntax.Token, x, y starlark.Value) (int, error) {
	switch op {
	case syntax.STAR:
		xi, xInt := x.(starlark.Int)
		yi, yInt := y.(starlark.Int)
		switch {
		case xInt && yInt:
			bits := xi.BigInt().BitLen() + yi.BigInt().BitLen()
			if bits > g.maxBits {
				return 0, fmt.Errorf("%w: integer product of %d bits (limit %d)", ErrLimit, bits, g.maxBits)
			}
			return bits / 8, nil
		case xInt:
			return g.checkRepeat(y, xi)
		case yInt:
			return g.checkRepeat(x, yi)
		}
	case syntax.PLUS:
		if isSized(x) && isSized(y) {
			n := starlark.Len(x) + starlark.Len(y)
			if n > g.maxLen {
				return 0, g.errTooLarge("concatenation", n)
			}
			return n * elemBytes(x), nil
		}
	case syntax.PERCENT:
		if s, ok := x.(starlark.String); ok {
			n := len(s) + strings.Count(string(s), "%")*reprSize(y, g.maxLen, 0)
			if n > g.maxLen {
				return 0, g.errTooLarge("formatting", n)
			}
			return n, nil
		}
	}
	return 0, nil
}

func (g *guard) checkRepeat(seq starlark.Value, n starlark.Int) (int, error) {
	if !isSized(seq) {
		return 0, nil
	}
	count, ok := n.Int64()
	if !ok {
		return 0, g.errTooLarge("repeat", g.maxLen+1)
	}
	if count <= 0 {
		return 0, nil
	}
	l := int64(starlark.Len(seq))
	if l > 0 && count > int64(g.maxLen)/l {
		return 0, g.errTooLarge("repeat", int(min(count*l, int64(1)<<40)))
	}
	return int(l*count) * elemBytes(seq), nil
}

// elemBytes is the size of one element of a sized value (isSized).
func elemBytes(v starlark.Value) int {
	switch v.(type) {
	case *starlark.List, starlark.Tuple:
		return slotBytes
	}
	return 1
}

func isSized(v starlark.Value) bool {
	switch v.(type) {
	case starlark.String, starlark.Bytes, *starlark.List, starlark.Tuple:
		return true
	}
	return false
}

// inplace implements x op= y for a name x: a list is extended in place (as the
// interpreter's own += does), anything else is x op y.
func (g *guard) inplace(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
	op, err := unpackOp(args, 3)
	if err != nil {
		return nil, err
	}
	return g.applyInplace(op, args[1], args[2])
}

func (g *guard) applyInplace(op syntax.Token, x, y starlark.Value) (starlark.Value, error) {
	if l, ok := x.(*starlark.List); ok && op == syntax.PLUS {
		if err := g.extend(l, y); err != nil {
			return nil, err
		}
		return l, nil
	}
	return g.apply(op, x, y)
}

// extend appends the elements of iterable y to l after a size check.
func (g *guard) extend(l *starlark.List, y starlark.Value) error {
	if _, ok := y.(starlark.Iterable); !ok {
		return fmt.Errorf("unsupported operand: list += %s", y.Type())
	}
	n := starlark.Len(y)
	if n < 0 || l.Len()+n > g.maxLen {
		return g.errTooLarge("list extension", l.Len()+max(n, 0))
	}
	if err := g.reserve((l.Len() + n) * slotBytes); err != nil {
		return err
	}
	elems := make([]starlark.Value, 0, n)
	it := starlark.Iterate(y)
	var v starlark.Value
	for it.Next(&v) {
		elems = append(elems, v)
	}
	it.Done() // before appending: l may be y
	for _, v := range elems {
		if err := l.Append(v); err != nil {
			return err
		}
	}
	return nil
}

// augIndex implements a[i] op= y with a and i evaluated once.
func (g *guard) augIndex(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
	op, err := unpackOp(args, 4)
	if err != nil {
		return nil, err
	}
	a, key, y := args[1], args[2], args[3]
	switch a := a.(type) {
	case starlark.HasSetKey:
		old, found, err := a.Get(key)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, fmt.Errorf("key %v not in %s", key, a.Type())
		}
		v, err := g.applyInplace(op, old, y)
		if err != nil {
			return nil, err
		}
		return starlark.None, a.SetKey(key, v)
	case starlark.HasSetIndex:
		i, err := starlark.AsInt32(key)
		if err != nil {
			return nil, fmt.Errorf("%s index: %w", a.Type(), err)
		}
		n := a.Len()
		if i < 0 {
			i += n
		}
		if i < 0 || i >= n {
			return nil, fmt.Errorf("%s index %v out of range [0:%d]", a.Type(), key, n)
		}
		v, err := g.applyInplace(op, a.Index(i), y)
		if err != nil {
			return nil, err
		}
		return starlark.None, a.SetIndex(i, v)
	}
	return nil, fmt.Errorf("%s value does not support item assignment", a.Type())
}

// method implements recv.name(args...) for the methods whose result can outgrow
// their inputs (join, replace, format, extend).
func (g *guard) method(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(args) < 2 {
		return nil, fmt.Errorf("internal guard called with %d arguments", len(args))
	}
	recv, name := args[0], string(args[1].(starlark.String))
	rest := args[2:]
	ha, ok := recv.(starlark.HasAttrs)
	if !ok {
		return nil, fmt.Errorf("%s has no .%s field or method", recv.Type(), name)
	}
	fn, err := ha.Attr(name)
	if err != nil {
		return nil, err
	}
	if fn == nil {
		return nil, fmt.Errorf("%s has no .%s field or method", recv.Type(), name)
	}
	size, err := g.checkMethod(recv, name, rest, kwargs)
	if err != nil {
		return nil, err
	}
	if err := g.reserve(size); err != nil {
		return nil, err
	}
	v, err := starlark.Call(thread, fn, rest, kwargs)
	if err != nil || size > 0 {
		return v, err
	}
	if err := g.acct.charge(shallowSize(v), false); err != nil {
		return nil, err
	}
	return v, nil
}

// checkMethod refuses recv.name(args) when its result would exceed the limits
// and returns an estimate of the result's bytes (0 when unknown).
func (g *guard) checkMethod(recv starlark.Value, name string, args starlark.Tuple, kwargs []starlark.Tuple) (int, error) {
	if l, ok := recv.(*starlark.List); ok && name == "extend" && len(args) == 1 {
		if n := starlark.Len(args[0]); n < 0 || l.Len()+n > g.maxLen {
			return 0, g.errTooLarge("list.extend", l.Len()+max(n, 0))
		}
		return (l.Len() + starlark.Len(args[0])) * slotBytes, nil
	}
	s, ok := recv.(starlark.String)
	if !ok {
		return 0, nil
	}
	switch name {
	case "join":
		if len(args) == 1 {
			return g.checkJoin(s, args[0])
		}
	case "replace":
		if len(args) < 2 {
			return 0, nil
		}
		old, ok1 := args[0].(starlark.String)
		repl, ok2 := args[1].(starlark.String)
		if !ok1 || !ok2 || len(repl) <= len(old) {
			return len(s), nil
		}
		count := strings.Count(string(s), string(old))
		n := len(s) + count*(len(repl)-len(old))
		if n > g.maxLen {
			return 0, g.errTooLarge("str.replace", n)
		}
		return n, nil
	case "format":
		arg := 0
		for _, a := range args {
			arg = max(arg, reprSize(a, g.maxLen, 0))
		}
		for _, kv := range kwargs {
			arg = max(arg, reprSize(kv[1], g.maxLen, 0))
		}
		n := len(s) + strings.Count(string(s), "{")*arg
		if n > g.maxLen {
			return 0, g.errTooLarge("str.format", n)
		}
		return n, nil
	}
	return 0, nil
}

// checkJoin refuses sep.join(seq) when the result would exceed the limits and
// returns its length.
func (g *guard) checkJoin(sep starlark.String, seq starlark.Value) (int, error) {
	n := starlark.Len(seq)
	if n > g.maxLen {
		return 0, g.errTooLarge("str.join", n)
	}
	it := starlark.Iterate(seq)
	if it == nil {
		return 0, nil
	}
	defer it.Done()
	total := 0
	var v starlark.Value
	for it.Next(&v) {
		if e, ok := v.(starlark.String); ok {
			total += len(e) + len(sep)
		}
		if total > g.maxLen {
			return 0, g.errTooLarge("str.join", total)
		}
	}
	return total, nil
}

// reprSize estimates the length of str(v), giving up (returning a value above
// budget) as soon as the estimate exceeds budget. Aggregates nested deeper than
// maxReprDepth count as a fixed size; cycles are cut by the depth limit.
func reprSize(v starlark.Value, budget, depth int) int {
	const maxReprDepth = 8
	if depth > maxReprDepth {
		return 16
	}
	switch v := v.(type) {
	case starlark.String:
		return len(v) + 2
	case starlark.Bytes:
		return len(v) + 3
	case starlark.Int:
		return v.BigInt().BitLen()/3 + 2
	case starlark.Tuple:
		return seqSize(v, budget, depth)
	case *starlark.List:
		return seqSize(v, budget, depth)
	case *starlark.Set:
		return seqSize(v, budget, depth)
	case *starlark.Dict:
		total := 2
		for _, kv := range v.Items() {
			total += reprSize(kv[0], budget-total, depth+1) + reprSize(kv[1], budget-total, depth+1) + 4
			if total > budget {
				return total
			}
		}
		return total
	}
	return 32
}

func seqSize(v starlark.Iterable, budget, depth int) int {
	total := 2
	it := v.Iterate()
	defer it.Done()
	var e starlark.Value
	for it.Next(&e) {
		total += reprSize(e, budget-total, depth+1) + 2
		if total > budget {
			return total
		}
	}
	return total
}
