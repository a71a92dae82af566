#!/usr/bin/env bash
# Sets up .venv and runs the main job (extra args are passed on).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# Until training lands the main job is a timed forward pass of r3d_18 on a generated clip.
exec .venv/bin/jaxres forward "$@"
