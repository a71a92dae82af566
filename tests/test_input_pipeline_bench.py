"""benchmarks/input_pipeline.py at a tiny size (slow tier; a smoke test, nothing is timed)."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_input_pipeline_compares_checkouts_and_reports_raw_and_prepared(tmp_path):
  out = tmp_path / "cmp.json"
  root = __file__.rsplit("/tests/", 1)[0]
  tiny = ["--smoke", "--workdir", str(tmp_path / "w"), "--json", str(out)]
  # This checkout against itself: both sides run, each importing the checkout named.
  subprocess.run(
    [sys.executable, "-m", "benchmarks.input_pipeline", *tiny, "--compare-with", root],
    cwd=root,
    check=True,
    capture_output=True,
  )
  record = json.loads(out.read_text())
  assert len(record["rounds"]["old"]) == len(record["rounds"]["new"]) == 1
  assert all(rate > 0 for rate, _ in record["rounds"]["old"] + record["rounds"]["new"])
  subprocess.run(
    [sys.executable, "-m", "benchmarks.input_pipeline", *tiny],
    cwd=root,
    check=True,
    capture_output=True,
  )
  record = json.loads(out.read_text())
  assert set(record["clips_per_s"]) == {"raw videos (decode per clip)", "prepared shards"}
  assert record["model_clips_per_s"] > 0
