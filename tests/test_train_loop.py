"""The loop's outputs (metrics log, TensorBoard events, curve PNG, best/last checkpoints), `jaxres eval`
on its checkpoint, and the CLI's error for a misspelt config key."""

import json
import os

import pytest

from jaxres import cli
from jaxres.train import default_config, read_metrics, train_and_evaluate
from jaxres.train.loop import evaluate_checkpoint, synthetic_data
from jaxres.train.run import read_config


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


@pytest.mark.slow  # trains with every writer on (~9 s)
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
  assert {
    "loss",
    "accuracy",
    "learning_rate",
    "grad_norm",
    "param_norm",
    "clips_per_second",
  } <= set(summary["train"])
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
    train_and_evaluate(
      _config(), str(tmp_path / "bad"), train_data=lambda start_step: bad, eval_data=eval_data
    )
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


def _metric_rows(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f if line.strip()]


@pytest.mark.slow
def test_resume_past_a_damaged_checkpoint_without_duplicate_rows_and_with_skip_counts(
  tmp_path, capsys
):
  from jaxres.data.skips import SKIPPED
  from jaxres.train.run import RunLockedError, lock_run

  workdir = str(tmp_path)
  c = _config()
  c.num_train_steps, c.checkpoint.every_steps, c.checkpoint.keep = 4, 2, 3
  c.eval_every_steps, c.log_every_steps, c.plot, c.tensorboard = 0, 1, False, False
  train, eval_data = synthetic_data(c)

  def train_data(start_step):  # a pipeline that skips one file
    SKIPPED.record("/videos/a/cut.mp4", "corrupt", "truncated")
    return train(start_step)

  SKIPPED.reset()
  try:
    summary = train_and_evaluate(c, workdir, train_data=train_data, eval_data=eval_data)
  finally:
    SKIPPED.reset()
  assert summary["skipped"] == {"corrupt": 1}
  rows = _metric_rows(workdir)
  assert all(r["data/skipped_corrupt"] == 1 and r["data/skipped_total"] == 1 for r in rows)

  # A second training in the same folder is refused while the first holds it.
  with lock_run(workdir):
    with pytest.raises(RunLockedError, match=f"{workdir} is in use .*process {os.getpid()}"):
      train_and_evaluate(c, workdir, train_data=train, eval_data=eval_data)

  # Fault injection: the newest checkpoint (step 4) loses its arrays.
  for root, _, files in os.walk(os.path.join(workdir, "checkpoints", "4")):
    for name in files:
      if os.path.basename(root) == "d":
        os.remove(os.path.join(root, name))
  c.num_train_steps = 6
  capsys.readouterr()
  summary = train_and_evaluate(c, workdir, train_data=train, eval_data=eval_data)
  out = capsys.readouterr().out
  assert f"{workdir}/checkpoints/4 cannot be restored" in out and "resuming from step 2" in out
  assert summary["step"] == 6 and summary["skipped"] == {}
  assert os.path.isdir(os.path.join(workdir, "checkpoints.corrupt", "4"))
  steps = [(r["split"], r["step"]) for r in _metric_rows(workdir)]
  assert sorted(steps) == sorted(set(steps))  # steps 3 and 4 ran again and are logged once
  assert [s for split, s in steps if split == "train"] == [1, 2, 3, 4, 5, 6]


def test_a_lock_held_by_a_killed_process_is_free_and_rows_after_the_resume_step_go(tmp_path):
  import signal
  import subprocess
  import sys

  from jaxres.train.run import RunLockedError, lock_run
  from jaxres.train.writers import MetricWriter

  workdir = str(tmp_path)
  holder = subprocess.Popen(
    [
      sys.executable,
      "-c",
      "import sys, time\nfrom jaxres.train.run import lock_run\n"
      "with lock_run(sys.argv[1]):\n  print('locked', flush=True)\n  time.sleep(600)",
      workdir,
    ],
    stdout=subprocess.PIPE,
    text=True,
    env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
  )
  try:
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(RunLockedError, match=f"process {holder.pid}"):
      with lock_run(workdir):
        pass
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
  with lock_run(workdir):  # the OS released the dead holder's lock
    with pytest.raises(RunLockedError):
      with lock_run(workdir):
        pass

  writer = MetricWriter(workdir, tensorboard=False, enabled=True)
  for step in (1, 2, 3, 4):
    writer.write(step, {"loss": 1.0})
  with open(writer.path, "a") as f:
    f.write('{"step": 5, "spl')  # cut short by kill -9
  assert writer.truncate_after(2) == 3
  assert [r["step"] for r in _metric_rows(workdir)] == [1, 2]


def test_a_run_lists_its_data_once_and_builds_its_eval_pipeline_once(tmp_path, monkeypatch):
  """Three evaluations in a run on the demo videos: one listing per split (for the class names,
  the checks and both pipelines), one eval pipeline iterated three times, the same metrics from
  `jaxres eval` on the final checkpoint (the pipeline gives the same batches again)."""
  from jaxres.data import pipeline, sources
  from jaxres.train import load_config

  config = load_config(
    "demo",
    [
      f"--config.data.path={tmp_path / 'demo'}",
      "--config.data.demo.videos_per_class=2",
      "--config.data.demo.num_frames=8",
      "--config.data.demo.size=24",
      "--config.data.num_frames=4",
      "--config.data.frame_stride=1",
      "--config.data.resize=20",
      "--config.data.crop_size=16",
      "--config.data.shuffle_buffer=4",
      "--config.global_batch_size=4",
      "--config.num_train_steps=3",
      "--config.eval_every_steps=1",
      "--config.log_every_steps=1",
      "--config.parallel.num_devices=1",
      "--config.progress_bar=False",
      "--config.plot=False",
      "--config.tensorboard=False",
      "--config.checkpoint.async_save=False",
    ],
  )
  listed, built = [], []
  folder_videos, build_dataset = sources.folder_videos, pipeline.build_dataset
  monkeypatch.setattr(
    sources, "folder_videos", lambda *a, **k: listed.append(k["split"]) or folder_videos(*a, **k)
  )
  monkeypatch.setattr(
    pipeline,
    "build_dataset",
    lambda c, split, **k: built.append(split) or build_dataset(c, split, **k),
  )
  workdir = str(tmp_path / "run")
  summary = train_and_evaluate(config, workdir)
  assert summary["step"] == 3
  evals = [r for r in read_metrics(os.path.join(workdir, "metrics.jsonl")) if r["split"] == "eval"]
  assert [r["step"] for r in evals] == [1, 2, 3]
  assert sorted(listed) == ["eval", "train"]  # once each, in the run
  assert built == ["train", "eval"]  # the eval pipeline at the first evaluation only
  listed.clear()
  metrics = evaluate_checkpoint(config, workdir)
  assert sorted(listed) == ["eval", "train"]
  assert metrics["accuracy"] == pytest.approx(summary["eval"]["accuracy"])
  assert metrics["loss"] == pytest.approx(summary["eval"]["loss"], rel=1e-5)
