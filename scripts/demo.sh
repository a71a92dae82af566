#!/usr/bin/env bash
# Sets up .venv and runs the main job: `jaxres train` on the built-in demo data (extra args are passed on).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/jaxres train "$@"
