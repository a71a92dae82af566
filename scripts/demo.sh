#!/usr/bin/env bash
# Sets up .venv with the video extra and runs the main job: `jaxres train` with no arguments trains
# the demo config (r3d_tiny learning motion direction on generated videos) in runs/demo. Extra args
# are passed on, e.g. scripts/demo.sh --config demo_2d for the per-frame 2D baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh video
exec .venv/bin/jaxres train "$@"
