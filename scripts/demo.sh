#!/usr/bin/env bash
# make demo: runs the quickstart scenario (a real hub, producer and consumers) with
# plh-sim and prints where its report and timeline are. Before the scenario engine
# existed it ran the multi-process ring demo; that one stays reachable as
# `go run ./cmd/plh-bench demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f scenarios/quickstart.toml ] && [ -d cmd/plh-sim ]; then
  exec go run ./cmd/plh-sim run --out runs scenarios/quickstart.toml
fi
exec go run ./cmd/plh-bench demo
