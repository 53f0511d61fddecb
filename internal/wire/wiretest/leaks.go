package wiretest

import "go.uber.org/goleak"

// GoleakIgnores is the one list of goroutines zmq4 v0.17.0 is known to leak
// (notes/zmq4.md trap 7). Every test package and suite passes it to goleak; no
// other ignore of zmq4 code is allowed anywhere.
//
//   - pubMWriter.run: every PUB socket leaks its writer goroutine after Close.
func GoleakIgnores() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreAnyFunction("github.com/go-zeromq/zmq4.(*pubMWriter).run"),
	}
}
