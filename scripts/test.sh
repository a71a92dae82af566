#!/usr/bin/env bash
# Sets up .venv with the test and torch extras and runs the whole test suite on 2 workers.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh test,torch
exec .venv/bin/python -m pytest -n 2 -q -m "slow or not slow" --durations=15 "$@"
