"""The loop's outputs (metrics log, TensorBoard events, curve PNG, best/last checkpoints), `jaxres eval`
on its checkpoint, and the CLI's error for a misspelt config key."""

import json
import os

import pytest

from jaxres import cli
from jaxres.train.run import read_config
from jaxres.train import default_config, evaluate, read_metrics, train_and_evaluate
from jaxres.train.loop import evaluate_checkpoint, synthetic_data


def _config():
  c = default_config()
  c.model.num_classes = 4
  c.data.num_frames, c.data.resize, c.data.crop_size = 4, 16, 16
  c.synthetic_data = True
  c.global_batch_size = 8
  c.num_train_steps = 12
  c.optimizer.learning_rate = 0.05
  c.parallel.num_devices = 1
  c.checkpoint.every_steps = 4
  c.eval_every_steps = 6
  c.eval_steps = 2
  c.log_every_steps = 3
  c.progress_bar = False
  return c


class _Closeable:
  """Batches that record whether the loop closed them (an endless pipeline left open at exit
  hangs the process: tests/test_train_exit.py)."""

  def __init__(self, batches):
    self.batches, self.closed = iter(batches), False

  def __iter__(self):
    return self

  def __next__(self):
    return next(self.batches)

  def close(self):
    self.closed = True


def test_loop_writes_logs_curves_and_checkpoints(tmp_path):
  workdir = str(tmp_path)
  train, eval_data = synthetic_data(_config())  # what the loop uses by default, made closeable
  opened = []

  def train_data(start_step):
    opened.append(_Closeable(train(start_step)))
    return opened[-1]

  summary = train_and_evaluate(_config(), workdir, train_data=train_data, eval_data=eval_data)
  assert len(opened) == 1 and opened[0].closed
  assert summary["step"] == 12 and not summary["stopped_early"]
  assert {"loss", "accuracy", "learning_rate", "grad_norm", "param_norm",
          "clips_per_second"} <= set(summary["train"])
  assert {"accuracy", "loss", "video_accuracy"} <= set(summary["eval"])
  records = read_metrics(os.path.join(workdir, "metrics.jsonl"))
  assert [r["step"] for r in records if r["split"] == "train"] == [3, 6, 9, 12]
  assert [r["step"] for r in records if r["split"] == "eval"] == [6, 12]
  for split in ("train", "eval"):
    files = os.listdir(os.path.join(workdir, "tensorboard", split))
    assert files and files[0].startswith("events.out.tfevents")
  assert os.path.getsize(os.path.join(workdir, "curves.png")) > 1000
  saved = read_config(workdir)  # the model is rebuilt from it by `jaxres upscale` / `eval`
  assert saved.model.name == _config().model.name
  steps = sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints")) if s.isdigit())
  assert steps[-1] == 12 and len(steps) <= 3  # keep 2 + the best

  # Running again resumes at the end and does nothing more.
  again = train_and_evaluate(_config(), workdir)
  assert again["step"] == 12 and again["already_finished"]
  # A config that does not fit the checkpoints is refused and leaves config.json as it was.
  changed = _config()
  changed.model.num_classes = 5
  with pytest.raises(ValueError):
    train_and_evaluate(changed, workdir)
  assert read_config(workdir).model.num_classes == 4

  # A failure before the first step (here a batch without "video") also closes the batches.
  bad = _Closeable([{"label": [0] * 8}])
  with pytest.raises(KeyError, match="video"):
    train_and_evaluate(_config(), str(tmp_path / "bad"), train_data=lambda start_step: bad,
                       eval_data=eval_data)
  assert bad.closed

  # Evaluating the final checkpoint gives the loop's last evaluation.
  metrics = evaluate_checkpoint(_config(), workdir)
  assert metrics["step"] == 12
  assert metrics["accuracy"] == pytest.approx(summary["eval"]["accuracy"])


def test_cli_names_misspelt_keys(capsys):
  assert cli.main(["train", "--config", "demo", "--config.optimizer.learning_rat=0.1"]) == 2
  err = capsys.readouterr().err
  assert "optimizer.learning_rat" in err and "optimizer.learning_rate" in err
  assert cli.main(["eval", "--config", "nope_not_a_config"]) == 2
