#!/usr/bin/env bash
# What the tests need besides Tandem: Debian's etcd-server (the engine of the sequencer's
# replica set), redis-server and nats-server (the benchmark peers), all run on loopback by
# the tests themselves; then Python's test dependencies at the versions of requirements.lock.
set -euo pipefail
cd "$(dirname "$0")/.."
have() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }
need=()
have redis-server || need+=(redis-server)
have nats-server || need+=(nats-server)
have etcd || need+=(etcd-server)
if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq "${need[@]}" >/dev/null || \
    echo "warning: could not install ${need[*]}: benchmark peers are skipped without them, the etcd tests fail" >&2
fi
python -m pip install -q -c requirements.lock -e '.[test]'
