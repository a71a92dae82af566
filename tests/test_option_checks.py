"""Options out of range are refused before any work, with one line naming the option and its
range (`jaxres prepare`, `jaxres forward`); a prepare that would write no usable example fails."""

import os

import numpy as np
import pytest
from PIL import Image

from jaxres import cli


def _one_line(capsys, prog):
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and err.startswith(f"{prog}: "), err
  return err


def _frames(folder, size, count=2):
  os.makedirs(folder, exist_ok=True)
  for i in range(count):
    Image.fromarray(np.full((size, size, 3), 100, np.uint8)).save(f"{folder}/{i:08d}.png")


@pytest.fixture
def garbage_videos(tmp_path):
  """Two class folders, each with one 'video' that is not one."""
  src = tmp_path / "videos"
  for name in ("a", "b"):
    (src / name).mkdir(parents=True)
    (src / name / "clip.mp4").write_bytes(b"not a video")
  return str(src)


@pytest.mark.parametrize(
  "option, said",
  [
    (["--resize", "-5"], "--resize must be >= 0 (0: keep the source size), got -5."),
    (["--quality", "500"], "--quality must be in 1..100, got 500."),
    (["--quality", "0"], "--quality must be in 1..100, got 0."),
    (["--workers", "-1"], "--workers must be >= 0 (0: the CPU count), got -1."),
    (["--shards", "-1"], "--shards must be >= 0 (0: automatic), got -1."),
    (["--holdout-fraction", "-0.5"], "--holdout-fraction must be in [0, 1), got -0.5."),
    (["--holdout-fraction", "1"], "--holdout-fraction must be in [0, 1), got 1.0."),
    (["--lr-scale", "0"], "--lr-scale must be >= 1, got 0."),
  ],
)
def test_prepare_refuses_options_out_of_range(garbage_videos, tmp_path, capsys, option, said):
  out = tmp_path / "out"
  assert cli.main(["prepare", garbage_videos, str(out), *option]) == 2
  assert _one_line(capsys, "jaxres prepare") == f"jaxres prepare: {said}"
  assert not out.exists()


def test_prepare_refuses_an_output_inside_the_source(garbage_videos, capsys):
  out = os.path.join(garbage_videos, "prepared")
  assert cli.main(["prepare", garbage_videos, out]) == 2
  assert "is inside the source" in _one_line(capsys, "jaxres prepare")
  assert not os.path.exists(out)  # it would have become a third class


def test_prepare_refuses_a_missing_or_mismatched_lr_folder(tmp_path, capsys):
  for seq in ("000", "001"):
    _frames(tmp_path / "hr" / seq, 32)
    _frames(tmp_path / "lr" / seq, 8)  # x4
  frames = ["--layout", "sequences", "--resize", "0", "--workers", "1"]
  out = tmp_path / "out"
  hr = str(tmp_path / "hr")
  assert cli.main(["prepare", hr, str(out), *frames, "--lr", str(tmp_path / "MISSING")]) == 2
  assert "--lr" in _one_line(capsys, "jaxres prepare")
  lr = ["--lr", str(tmp_path / "lr"), "--lr-scale", "2"]
  assert cli.main(["prepare", hr, str(out), *frames, *lr]) == 1
  line = _one_line(capsys, "jaxres prepare")
  assert "--lr-scale 2 does not fit" in line and "32x32 and its LR frame 8x8" in line, line
  assert not out.exists()  # refused before the output folder was made


def test_prepare_with_no_usable_example_fails(garbage_videos, tmp_path, capsys):
  out = tmp_path / "out"
  assert cli.main(["prepare", garbage_videos, str(out), "--workers", "1", "--shards", "1"]) == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert err[-1] == (
    "jaxres prepare: No usable example in split 'train': all 2 were skipped (corrupt: 2); "
    "no manifest.json was written."
  ), err
  assert not (out / "manifest.json").exists()


@pytest.mark.parametrize(
  "option", [["--frames", "0"], ["--size", "-3"], ["--batch", "0"], ["--num-classes", "0"]]
)
def test_forward_refuses_sizes_below_one(capsys, option):
  assert cli.main(["forward", "--model", "r3d_tiny", *option]) == 2
  line = _one_line(capsys, "jaxres forward")
  assert line == f"jaxres forward: {option[0]} must be >= 1, got {option[1]}.", line
