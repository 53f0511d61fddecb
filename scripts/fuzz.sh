#!/usr/bin/env bash
# Runs every Fuzz target of the module for a short, bounded budget (FUZZTIME,
# default 50000 executions each). Targets are found by name, so a new Fuzz function
# is picked up with no edit here.
#
# The budget is a count ("Nx"), not a duration: with a duration, Go 1.26's fuzz
# coordinator can report a spurious "context deadline exceeded" failure when the
# deadline fires while a worker is mid-run on a loaded machine (golang/go#75804,
# fixed in Go 1.27). A count has no deadline to race.
set -euo pipefail
FUZZTIME=${FUZZTIME:-50000x}
cd "$(dirname "$0")/.."
found=0
while IFS=: read -r file fn; do
  pkg="./$(dirname "${file#./}")"
  echo "fuzz: $pkg $fn ($FUZZTIME)"
  go test -run='^$' -fuzz="^${fn}\$" -fuzztime="$FUZZTIME" "$pkg"
  found=$((found + 1))
done < <(grep -rHoE '^func (Fuzz[A-Za-z0-9_]+)' --include='*_test.go' . | sed -E 's/func //' | grep -v '^./suites/' | sort)
echo "fuzz: $found targets"
