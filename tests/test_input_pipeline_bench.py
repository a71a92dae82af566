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
  # This checkout against itself: both sides run, each importing the checkout named (the new
  # side resizing in the decoder).
  compare = ["--compare-with", root, "--resize-in-decoder"]
  subprocess.run(
    [sys.executable, "-m", "benchmarks.input_pipeline", *tiny, *compare],
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
  assert set(record["clips_per_s"]) == {
    "raw videos (decode per clip)",
    "raw videos, resize_in_decoder",
    "prepared shards",
  }
  assert record["resize_in_decoder_over_raw"] > 0
  assert record["model_clips_per_s"] > 0


@pytest.mark.parametrize("in_decoder", [[], ["--resize-in-decoder"]])
def test_input_pipeline_stages_name_each_stage_for_both_checkouts(tmp_path, in_decoder):
  out = tmp_path / "stages.json"
  root = __file__.rsplit("/tests/", 1)[0]
  tiny = ["--smoke", "--workdir", str(tmp_path / "w"), "--json", str(out), *in_decoder]
  subprocess.run(
    [sys.executable, "-m", "benchmarks.input_pipeline", *tiny, "--stages", "--compare-with", root],
    cwd=root,
    check=True,
    capture_output=True,
  )
  stages = json.loads(out.read_text())["stages_cpu_ms_per_clip"]
  assert set(stages) == {"old", "new"}
  for side in stages.values():
    assert set(side) == {"decode", "hand-off", "resize+crop", "view+normalise"}
    assert all(ms > 0 for ms in side.values())


def test_swscale_exact_rounding_gives_the_same_bytes_without_simd(tmp_path):
  # What benchmarks/swscale_exact.py reports: swscale's ACCURATE_RND makes RGB frames independent
  # of FFmpeg's SIMD; with POINT and BITEXACT they are the C code's default ones.
  out = tmp_path / "swscale.json"
  root = __file__.rsplit("/tests/", 1)[0]
  subprocess.run(
    [sys.executable, "-m", "benchmarks.swscale_exact", "--frames", "3", "--json", str(out)],
    cwd=root,
    check=True,
    capture_output=True,
  )
  settings = json.loads(out.read_text())["settings"]
  assert settings["ACCURATE_RND|BITEXACT"]["same_without_simd"]
  assert settings["POINT|ACCURATE_RND|BITEXACT"]["same_without_simd"]
  assert settings["POINT|ACCURATE_RND|BITEXACT"]["equals_default_without_simd"]
  assert settings["default (today)"]["max_diff_to_today"] == 0
