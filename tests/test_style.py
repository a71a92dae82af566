"""The code is ruff-clean and ruff-formatted (the configuration is in pyproject.toml)."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATHS = ["jaxres", "tests", "benchmarks"]


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff(command):
  pytest.importorskip("ruff", reason="ruff comes with the test extra")
  out = subprocess.run(
    [sys.executable, "-m", "ruff", *command, *PATHS],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
