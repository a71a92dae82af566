"""The commands explain themselves: defaults in --help, shipped configs listed, the files each
writes named at the end, no TensorFlow start-up noise; `upscale --start/--duration`."""

import os
import re
import subprocess
import sys

import jax
import numpy as np
import pytest
from model_init import init_variables

from jaxres import cli, configs, models
from jaxres.commands.train import closing_lines
from jaxres.data import video
from jaxres.sr import upscale
from jaxres.train import default_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _help(name, capsys):
  try:
    code = cli.main([name, "--help"])  # `bench` runs its module in a child: its exit code
  except SystemExit as exit_:  # argparse in this process
    code = exit_.code
  assert code == 0
  return capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_help_shows_every_default(name, capsys):
  text = _help(name, capsys)
  options = text[text.index("options:") :]
  blocks = re.split(r"\n(?=  -)", options)[1:]
  for block in blocks:
    flag = re.match(r"  (-\S+)(, --\S+)?( \S+)?", block)
    takes_value = flag.group(3) is not None and not block.startswith("  -h")
    if takes_value and "required" not in block:
      assert "default" in block or re.search(r"\((None|0|\w+):", block), (name, block)


def test_specific_defaults_and_configs_are_in_the_help(capsys):
  train = " ".join(_help("train", capsys).split())
  for config in configs.names():
    assert config in train
  assert "(default: 16)" in _help("upscale", capsys)
  bench = " ".join(_help("bench", capsys).split())
  assert (
    "(default: benchmarks/results)" in bench
    and "--batch BATCH clips per step (default: 4)" in bench
  )
  assert "(default: 5)" in _help("predict", capsys)


def test_train_ends_naming_the_files_it_wrote(tmp_path):
  for name in ("config.json", "classes.txt", "metrics.jsonl", "summary.json"):
    (tmp_path / name).write_text("{}")
  (tmp_path / "checkpoints").mkdir()
  lines = closing_lines({"eval": {"accuracy": 0.5}}, default_config(), str(tmp_path))
  assert lines[-1] == "  files: config.json, classes.txt, metrics.jsonl, summary.json, checkpoints/"


@pytest.mark.slow  # a subprocess that imports TensorFlow
def test_no_tensorflow_start_up_lines_unless_verbose(tmp_path):
  run = lambda *extra: subprocess.run(
    [
      sys.executable,
      "-m",
      "jaxres.cli",
      "predict",
      "x.mp4",
      "--checkpoint",
      str(tmp_path / "no"),
      *extra,
    ],
    capture_output=True,
    text=True,
    timeout=300,
    cwd=REPO,
    env={**os.environ, "PYTHONPATH": REPO, "JAXRES_RETAIN_MEMORY": "0"},
  )
  quiet = run()
  assert quiet.returncode == 1 and quiet.stdout == ""
  assert quiet.stderr.strip().splitlines() == [f"jaxres predict: No run folder {tmp_path / 'no'}."]


def test_upscale_takes_a_time_range(tmp_path):
  frames = (np.arange(20, dtype=np.uint8)[:, None, None, None] * 12 + 8).repeat(3, -1)
  frames = np.broadcast_to(frames, (20, 12, 12, 3)).copy()
  src = video.write_video(str(tmp_path / "in.mp4"), frames, 10.0)
  model = models.get("edsr_bicubic_tiny", scale=2)
  variables = init_variables(model, np.zeros((1, 12, 12, 3), np.float32), train=False)
  variables = jax.tree.map(lambda x: x * 0, variables)  # the bicubic upsampling alone
  out = str(tmp_path / "part.mp4")
  result = upscale.upscale_video(
    src, out, model, variables, scale=2, clip_model=False, progress=False, start=0.5, duration=0.8
  )
  assert result["frames"] == 8
  got = video.read_video(out)
  assert got.frames.shape == (8, 24, 24, 3)
  # Frames 5..12 of the input (each a flat grey of its own level), from time 0 on.
  np.testing.assert_allclose(
    got.frames.mean(axis=(1, 2, 3)), frames[5:13].mean(axis=(1, 2, 3)), atol=3
  )
  with pytest.raises(ValueError, match="no frames from 5 s"):
    upscale.upscale_video(
      src, out, model, variables, scale=2, clip_model=False, progress=False, start=5.0
    )
  with pytest.raises(ValueError, match="--duration must be a number of seconds > 0"):
    upscale.upscale_video(
      src, out, model, variables, scale=2, clip_model=False, progress=False, duration=0
    )


def test_prepare_ends_naming_what_it_wrote(tmp_path, capsys):
  frames = np.full((4, 16, 16, 3), 100, np.uint8)
  for name in ("a", "b"):
    (tmp_path / "src" / name).mkdir(parents=True)
    video.write_video(str(tmp_path / "src" / name / f"{name}.mp4"), frames, 10.0)
  out = tmp_path / "out"
  assert (
    cli.main(["prepare", str(tmp_path / "src"), str(out), "--shards", "1", "--workers", "1"]) == 0
  )
  last = capsys.readouterr().out.strip().splitlines()[-1]
  assert last == f"wrote 1 shard(s), manifest.json and classes.txt in {out}"
  assert (out / "manifest.json").exists() and (out / "classes.txt").read_text() == "a\nb\n"
