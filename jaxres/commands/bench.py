"""`jaxres bench`: compiled throughput of jaxres models, or `--vs torch` against torchvision.

Runs `benchmarks/run.py` (or `benchmarks/vs_torch.py` with `--vs torch`) from a source checkout;
see those files for the arguments and what is measured.
"""

from __future__ import annotations

import importlib
import os
import sys


def _benchmarks():
  """Imports the `benchmarks` package of the checkout this jaxres comes from."""
  try:
    return importlib.import_module("benchmarks.run")
  except ImportError:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if os.path.isdir(os.path.join(root, "benchmarks")):
      sys.path.insert(0, root)
      return importlib.import_module("benchmarks.run")
    raise


def main(argv: list[str]) -> int:
  try:
    run = _benchmarks()
  except ImportError:
    print("jaxres bench needs the benchmarks/ folder of a jaxres source checkout.", file=sys.stderr)
    return 1
  return run.main(argv)
