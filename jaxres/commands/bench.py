"""`jaxres bench`: compiled throughput of jaxres models, or `--vs torch` against torchvision.

Runs `python -m benchmarks.run ARGS` (`benchmarks.vs_torch` with `--vs torch`) in a child process,
with the source checkout this jaxres comes from on its import path; see those modules for the
arguments and what is measured. The benchmarks are not part of the installed package, and
`benchmarks.vs_torch` starts a fresh process per model, which must find them too: hence a child
with `PYTHONPATH` naming the checkout, rather than this process importing them. Relative paths
(`--out-dir`) are taken from the current directory, as in the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys


def checkout_root() -> str | None:
  """The source checkout this `jaxres` package sits in, if it has the `benchmarks` package."""
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  return root if os.path.isfile(os.path.join(root, "benchmarks", "run.py")) else None


def main(argv: list[str]) -> int:
  root = checkout_root()
  if root is None:
    print(
      "jaxres bench needs the benchmarks/ folder of a jaxres source checkout "
      "(`python -m benchmarks.run` there does the same).",
      file=sys.stderr,
    )
    return 1
  env = dict(
    os.environ,
    PYTHONUNBUFFERED="1",
    PYTHONPATH=os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])]),
  )
  # The child's output is passed on line by line, so it reaches `sys.stdout` wherever that points.
  with subprocess.Popen(
    [sys.executable, "-m", "benchmarks.run", *argv], env=env, stdout=subprocess.PIPE, text=True
  ) as child:
    for line in child.stdout:
      sys.stdout.write(line)
      sys.stdout.flush()
  return child.returncode
