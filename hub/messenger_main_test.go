package hub

import (
	"testing"

	"github.com/pylabhub/plh/internal/wire/wiretest"
	"go.uber.org/goleak"
)

// TestMain checks every test of package hub for leaked goroutines. It is the
// package's only TestMain; other test files of package hub rely on it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, wiretest.GoleakIgnores()...)
}
