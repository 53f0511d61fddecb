#!/usr/bin/env bash
# Installs what the tests need beyond Go: Debian's python3-zmq (pyzmq on libzmq,
# the independent peer of the interop tests). Go tools come from go.mod.
set -euo pipefail
if ! /usr/bin/python3 -c 'import zmq' >/dev/null 2>&1; then
  echo "deps: installing python3-zmq"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-zmq >/dev/null
fi
/usr/bin/python3 -c 'import zmq; assert zmq.has("curve")'
