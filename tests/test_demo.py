"""The shipped demo learns: `jaxres train` with no arguments reaches >= 90% on the motion demo.

The slow test trains the shipped `demo` config (on one device, as a user's `jaxres train` does)
for two seeds; the demo's data are written to the user cache folder on first use and reused. For
seed 0, `demo_finetune` then starts from that run and learns the four diagonal directions.
"""

import types

import pytest

from jaxres.commands.train import closing_lines
from jaxres.train.config import load_config
from jaxres.train.loop import train_and_evaluate


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_demo_reaches_90_percent(tmp_path, seed):
  config = load_config(
    "demo",
    [
      f"--config.seed={seed}",
      "--config.parallel.num_devices=1",
      "--config.plot=False",
      "--config.tensorboard=False",
      "--config.progress_bar=False",
      "--config.eval_every_steps=0",
    ],
  )
  summary = train_and_evaluate(config, str(tmp_path / "run"))
  assert summary["eval"]["accuracy"] >= 0.90, summary["eval"]
  if seed == 0:  # the fine-tuning demo starts from this run: the diagonals, from 48 videos
    tuned = load_config(
      "demo_finetune",
      [
        f"--config.init_from={tmp_path / 'run'}",
        "--config.parallel.num_devices=1",
        "--config.plot=False",
        "--config.tensorboard=False",
        "--config.progress_bar=False",
      ],
    )
    summary = train_and_evaluate(tuned, str(tmp_path / "diagonal"))
    assert summary["eval"]["accuracy"] >= 0.90, summary["eval"]


def test_closing_lines_name_the_baseline_and_the_run_folder():
  config = types.SimpleNamespace(model={"num_classes": 4}, tensorboard=True)
  lines = closing_lines(
    {"eval": {"accuracy": 0.96875}, "plot": "runs/demo/curves.png"}, config, "runs/demo"
  )
  assert lines[0] == "eval accuracy 0.9688 (chance 0.25)"
  assert "runs/demo" in lines[1]
  assert "tensorboard --logdir runs/demo/tensorboard" in lines[2]
  assert "runs/demo/curves.png" in lines[3]
  sr = closing_lines(
    {"eval": {"psnr_y": 30.5, "psnr_y_bicubic": 29.0}},
    types.SimpleNamespace(model={}, tensorboard=False),
    "runs/sr",
  )
  assert sr[0].endswith("gain +1.50 dB over bicubic")
  assert sr[1:] == ["run folder: runs/sr"]
