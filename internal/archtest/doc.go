// Package archtest holds no code, only the test that keeps the package map of
// docs/architecture.md true: it reads the module's import graph with
// `go list -deps -json ./...` and fails on any forbidden import (an upward
// arrow, the library reaching harness or process code, a binary linking a test
// library). The rules are a table in arch_test.go, one line per promise of
// docs/architecture.md.
package archtest
