# plh — build, test, benchmark, demo. Every target works on a fresh machine:
# Go tools come from go.mod (go tool ginkgo), Debian packages are installed on demand.

GO        ?= go
REPORTS   ?= .reports
FUZZTIME  ?= 50000x
GINKGO    := $(GO) tool ginkgo
UNIT_PKGS  = $(shell $(GO) list ./... | grep -v /suites/)

.PHONY: all build test vet unit suites fuzz deps bench demo clean soak

all: build

build:
	$(GO) build ./...

## test: everything CI runs: vet, unit tests with -race, every Ginkgo suite with
## -race (JUnit under $(REPORTS)/), and a short bounded fuzz of every Fuzz target.
test: deps vet unit suites fuzz
	@echo "make test: all green"

deps:
	@scripts/deps.sh

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 8m $(UNIT_PKGS)

# The scenario and explore suites wait on scenario clocks far more than they
# compute (50 scenarios: 42 s of CPU in 100 s of wall time with 4 processes), so
# they run 4 specs at once; the others 2, one per core.
suites:
	@mkdir -p $(REPORTS)
	$(GINKGO) -r --race --procs=2 --timeout=15m --label-filter='!soak' --skip-package=scenarios,explore \
		--junit-report=junit.xml --output-dir=$(REPORTS) --keep-separate-reports suites
	$(GINKGO) -r --race --procs=4 --timeout=15m --label-filter='!soak' \
		--junit-report=junit.xml --output-dir=$(REPORTS) --keep-separate-reports suites/scenarios suites/explore

fuzz:
	@FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

## soak: long stress runs kept out of make test.
soak:
	$(GINKGO) -r --race --label-filter='soak' --timeout=60m suites

bench:
	$(GO) run ./cmd/plh-bench all --quick

demo:
	@scripts/demo.sh

clean:
	rm -rf $(REPORTS) bin runs
	$(GO) clean -testcache
