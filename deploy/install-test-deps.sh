#!/usr/bin/env bash
# System packages the tests and benchmark peers need (loopback servers only):
# Debian's redis-server and nats-server. Python packages come from pyproject.toml.
set -euo pipefail
have() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }
need=()
have redis-server || need+=(redis-server)
have nats-server || need+=(nats-server)
if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq "${need[@]}" >/dev/null || \
    echo "warning: could not install ${need[*]}; benchmark peers will be skipped" >&2
fi
