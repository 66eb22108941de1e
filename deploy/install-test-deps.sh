#!/usr/bin/env bash
# System packages the tests and benchmark peers need (loopback servers only).
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v nats-server >/dev/null || need+=(nats-server)
if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq "${need[@]}" >/dev/null || \
    echo "warning: could not install ${need[*]}; benchmark peers will be skipped" >&2
fi
