package admin

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/pylabhub/plh/internal/wire/wiretest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, wiretest.GoleakIgnores()...) }
