#!/usr/bin/env bash
# Creates .venv (if missing) and installs jaxres (editable) with the given extras, at the exact
# versions of requirements/constraints.txt, e.g. `scripts/setup.sh video` or `scripts/setup.sh test,torch`.
# CPU-only torch (no CUDA libraries): pip also reads PyTorch's CPU index when given it, and the pins
# (torch==X) accept its X+cpu wheels:
#   PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu scripts/setup.sh video,torch
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ -n "$extras" ]; then
  .venv/bin/python -m pip install -q -c requirements/constraints.txt -e ".[${extras}]"
else
  .venv/bin/python -m pip install -q -c requirements/constraints.txt -e .
fi
