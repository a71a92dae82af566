"""What `jaxres train` ends with."""

import types

from jaxres.commands.train import closing_lines


def test_closing_lines_name_the_baseline_and_the_run_folder():
  config = types.SimpleNamespace(model={"num_classes": 4}, tensorboard=True)
  lines = closing_lines({"eval": {"accuracy": 0.96875}, "plot": "runs/demo/curves.png"}, config,
                        "runs/demo")
  assert lines[0] == "eval accuracy 0.9688 (chance 0.25)"
  assert "runs/demo" in lines[1]
  assert "tensorboard --logdir runs/demo/tensorboard" in lines[2]
  assert "runs/demo/curves.png" in lines[3]
  sr = closing_lines({"eval": {"psnr_y": 30.5, "psnr_y_bicubic": 29.0}},
                     types.SimpleNamespace(model={}, tensorboard=False), "runs/sr")
  assert sr[0].endswith("gain +1.50 dB over bicubic")
  assert sr[1:] == ["run folder: runs/sr"]
