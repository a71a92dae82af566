#!/usr/bin/env bash
# Creates .venv (if missing) and installs jaxres (editable) with the given extras, at the exact
# versions of requirements/constraints.txt, e.g. `scripts/setup.sh video` or `scripts/setup.sh test,torch`.
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
