#!/usr/bin/env bash
# Runs every Fuzz target of the module for a short, bounded time (FUZZTIME, default
# 8s each). Targets are found by name, so a new Fuzz function is picked up with no
# edit here.
set -euo pipefail
FUZZTIME=${FUZZTIME:-8s}
cd "$(dirname "$0")/.."
found=0
while IFS=: read -r file fn; do
  pkg="./$(dirname "$file")"
  echo "fuzz: $pkg $fn ($FUZZTIME)"
  go test -run='^$' -fuzz="^${fn}\$" -fuzztime="$FUZZTIME" "$pkg"
  found=$((found + 1))
done < <(grep -rHoE '^func (Fuzz[A-Za-z0-9_]+)' --include='*_test.go' . | sed -E 's/func //' | grep -v '^./suites/' | sort)
echo "fuzz: $found targets"
