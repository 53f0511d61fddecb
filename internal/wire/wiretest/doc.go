// Package wiretest holds what tests of code built on internal/wire share, as
// net/http/httptest does for net/http: today the one list of zmq4's known
// goroutine leaks (GoleakIgnores) that every goleak check passes. Only tests
// and suites import it, so no binary links goleak; it imports no plh package.
package wiretest
