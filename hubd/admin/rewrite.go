package admin

import (
	"go.starlark.net/syntax"
)

// Names of the guard builtins the rewriter calls. They contain '$', which the
// Starlark scanner never accepts in an identifier, so admin code can neither call
// nor rebind them.
const (
	guardBinary   = "plh$binary"   // plh$binary(op, x, y)
	guardInplace  = "plh$inplace"  // plh$inplace(op, x, y): x op= y for a name
	guardAugIndex = "plh$augindex" // plh$augindex(op, a, i, y): a[i] op= y
	guardMethod   = "plh$method"   // plh$method(recv, name, args...)
	guardCharge   = "plh$charge"   // plh$charge(v): accounts a call's or slice's result
)

// guardedOps are the binary operators whose result can be much larger than its
// operands' total (repeat, concatenation, formatting, integer product).
var guardedOps = map[syntax.Token]string{
	syntax.STAR:    "*",
	syntax.PLUS:    "+",
	syntax.PERCENT: "%",
}

var augToOp = map[syntax.Token]syntax.Token{
	syntax.STAR_EQ:    syntax.STAR,
	syntax.PLUS_EQ:    syntax.PLUS,
	syntax.PERCENT_EQ: syntax.PERCENT,
}

// rewriteFile replaces, before resolution, every size-growing operation of f by a
// call to a guard builtin that checks the result size first (guard.go). It is the
// allocation half of the runaway-script defence; the step, time and heap limits
// (engine.go) are the other half.
func rewriteFile(f *syntax.File) {
	f.Stmts = rewriteStmts(f.Stmts)
}

func rewriteStmts(stmts []syntax.Stmt) []syntax.Stmt {
	for i, s := range stmts {
		stmts[i] = rewriteStmt(s)
	}
	return stmts
}

func rewriteStmt(s syntax.Stmt) syntax.Stmt {
	switch s := s.(type) {
	case *syntax.AssignStmt:
		s.RHS = rewriteExpr(s.RHS)
		op, aug := augToOp[s.Op]
		if !aug {
			s.LHS = rewriteExpr(s.LHS)
			return s
		}
		switch lhs := s.LHS.(type) {
		case *syntax.Ident:
			// x op= y  →  x = plh$inplace("op", x, y) (lists are still extended in place).
			id := *lhs
			s.Op = syntax.EQ
			s.RHS = call(guardInplace, opLiteral(op), &id, s.RHS)
			return s
		case *syntax.IndexExpr:
			// a[i] op= y  →  plh$augindex("op", a, i, y): a and i evaluated once.
			return &syntax.ExprStmt{X: call(guardAugIndex, opLiteral(op),
				rewriteExpr(lhs.X), rewriteExpr(lhs.Y), s.RHS)}
		default:
			s.LHS = rewriteExpr(s.LHS)
			return s
		}
	case *syntax.DefStmt:
		for i, p := range s.Params {
			s.Params[i] = rewriteExpr(p)
		}
		s.Body = rewriteStmts(s.Body)
	case *syntax.ExprStmt:
		s.X = rewriteExpr(s.X)
	case *syntax.IfStmt:
		s.Cond = rewriteExpr(s.Cond)
		s.True = rewriteStmts(s.True)
		s.False = rewriteStmts(s.False)
	case *syntax.ForStmt:
		s.X = rewriteExpr(s.X)
		s.Body = rewriteStmts(s.Body)
	case *syntax.WhileStmt:
		s.Cond = rewriteExpr(s.Cond)
		s.Body = rewriteStmts(s.Body)
	case *syntax.ReturnStmt:
		if s.Result != nil {
			s.Result = rewriteExpr(s.Result)
		}
	}
	return s
}

func rewriteExprs(es []syntax.Expr) {
	for i, e := range es {
		es[i] = rewriteExpr(e)
	}
}

func rewriteExpr(e syntax.Expr) syntax.Expr {
	switch e := e.(type) {
	case nil:
		return nil
	case *syntax.BinaryExpr:
		e.X = rewriteExpr(e.X)
		e.Y = rewriteExpr(e.Y)
		if _, ok := guardedOps[e.Op]; ok {
			return call(guardBinary, opLiteral(e.Op), e.X, e.Y)
		}
	case *syntax.CallExpr:
		rewriteExprs(e.Args)
		if dot, ok := e.Fn.(*syntax.DotExpr); ok && isGuardedMethod(dot.Name.Name) {
			args := append([]syntax.Expr{rewriteExpr(dot.X), strLiteral(dot.Name.Name)}, e.Args...)
			e.Fn = &syntax.Ident{NamePos: dot.NamePos, Name: guardMethod}
			e.Args = args
			return e
		}
		e.Fn = rewriteExpr(e.Fn)
		return call(guardCharge, e)
	case *syntax.ParenExpr:
		e.X = rewriteExpr(e.X)
	case *syntax.DotExpr:
		e.X = rewriteExpr(e.X)
	case *syntax.Comprehension:
		e.Body = rewriteExpr(e.Body)
		for _, c := range e.Clauses {
			switch c := c.(type) {
			case *syntax.ForClause:
				c.X = rewriteExpr(c.X)
			case *syntax.IfClause:
				c.Cond = rewriteExpr(c.Cond)
			}
		}
	case *syntax.DictExpr:
		rewriteExprs(e.List)
	case *syntax.DictEntry:
		e.Key = rewriteExpr(e.Key)
		e.Value = rewriteExpr(e.Value)
	case *syntax.LambdaExpr:
		rewriteExprs(e.Params)
		e.Body = rewriteExpr(e.Body)
	case *syntax.ListExpr:
		rewriteExprs(e.List)
	case *syntax.CondExpr:
		e.Cond = rewriteExpr(e.Cond)
		e.True = rewriteExpr(e.True)
		e.False = rewriteExpr(e.False)
	case *syntax.TupleExpr:
		rewriteExprs(e.List)
	case *syntax.UnaryExpr:
		e.X = rewriteExpr(e.X)
	case *syntax.SliceExpr:
		e.X = rewriteExpr(e.X)
		e.Lo = rewriteExpr(e.Lo)
		e.Hi = rewriteExpr(e.Hi)
		e.Step = rewriteExpr(e.Step)
		return call(guardCharge, e)
	case *syntax.IndexExpr:
		e.X = rewriteExpr(e.X)
		e.Y = rewriteExpr(e.Y)
	}
	return e
}

// isGuardedMethod reports whether a method call .name(...) is routed through
// plh$method so its result size is checked before it runs.
func isGuardedMethod(name string) bool {
	switch name {
	case "join", "replace", "format", "extend":
		return true
	}
	return false
}

func call(fn string, args ...syntax.Expr) *syntax.CallExpr {
	pos := syntax.Start(args[len(args)-1])
	return &syntax.CallExpr{Fn: &syntax.Ident{NamePos: pos, Name: fn}, Lparen: pos, Args: args, Rparen: pos}
}

func opLiteral(op syntax.Token) syntax.Expr { return strLiteral(guardedOps[op]) }

func strLiteral(s string) syntax.Expr {
	return &syntax.Literal{Token: syntax.STRING, Value: s, Raw: syntax.Quote(s, false)}
}
