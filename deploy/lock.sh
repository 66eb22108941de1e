#!/usr/bin/env bash
# Refresh requirements.lock: the newest versions pyproject.toml's ranges admit, for every
# dependency (runtime, test, bench) and the build backend. Then install them, regenerate the
# wire code with the locked grpcio-tools and run the README's test command, so an upgrade is
# one deliberate commit whose suite has passed. Give package names to upgrade only those:
#   deploy/lock.sh              # everything
#   deploy/lock.sh grpcio-tools # one package (and what it needs)
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.8
tool="$(mktemp -d)"
trap 'rm -rf "$tool"' EXIT
python -m venv "$tool"
"$tool/bin/pip" install -q "uv==$UV_VERSION"
upgrade=(--upgrade)
if [ $# -gt 0 ]; then
  upgrade=()
  for name in "$@"; do upgrade+=(--upgrade-package "$name"); done
fi
UV_CUSTOM_COMPILE_COMMAND="deploy/lock.sh" "$tool/bin/uv" pip compile pyproject.toml \
  --all-extras --universal --python-version 3.11 "${upgrade[@]}" -o requirements.lock
setuptools="$(grep -E '^setuptools==' requirements.lock | cut -d' ' -f1)"
sed -i -E "s/^requires = \[\"setuptools[^\"]*\"\]/requires = [\"$setuptools\"]/" pyproject.toml
python -m pip install -q -c requirements.lock -e '.[test]'
python proto/generate.py
ruff check . && ruff format --check . && mypy && python -m pytest -q
