"""The layers point one way (import-linter contracts in .importlinter), checked on every run."""

import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_import_contracts_hold():
  lint = shutil.which("lint-imports", path=os.path.dirname(sys.executable))
  assert lint is not None, "import-linter (the test extra) is not installed next to python"
  out = subprocess.run(
    [lint, "--config", os.path.join(ROOT, ".importlinter")],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
  assert " 0 broken" in out.stdout, out.stdout[-4000:]
