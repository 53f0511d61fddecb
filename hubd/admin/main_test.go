package admin

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/pylabhub/plh/internal/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, wire.GoleakIgnores()...) }
