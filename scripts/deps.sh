#!/usr/bin/env bash
# Installs what the tests need beyond Go: Debian's python3-zmq (pyzmq on libzmq,
# the independent peer of the interop tests) and tmux (the admin REPL's
# terminal spec drives it; it is skipped without). Go tools come from go.mod.
set -euo pipefail
missing=()
/usr/bin/python3 -c 'import zmq' >/dev/null 2>&1 || missing+=(python3-zmq)
[ -x /usr/bin/tmux ] || missing+=(tmux)
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
/usr/bin/python3 -c 'import zmq; assert zmq.has("curve")'
[ -x /usr/bin/tmux ]
