package support

import (
	"time"

	. "github.com/onsi/gomega" //nolint:revive // Gomega DSL
)

// DefaultWait is every suite's Eventually timeout where a spec sets none.
// Gomega's own default (1 s) is a timing assertion in disguise: on a loaded
// 2-core machine under -race an event that usually takes milliseconds can take
// seconds. Specs assert that things happen, and benchmarks measure how fast.
const DefaultWait = 10 * time.Second

// UseDefaultWaits sets DefaultWait as the suite's Eventually timeout. Each
// suite's Test function calls it before RunSpecs.
func UseDefaultWaits() { SetDefaultEventuallyTimeout(DefaultWait) }
