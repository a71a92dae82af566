"""Checkpoints: save on 8 devices and restore on 1 and 4; SIGTERM leaves a checkpoint at the step it
stopped at; after a kill -9 and a damaged newest checkpoint, resuming from the one before ends with
the parameters of an uninterrupted run; a NaN loss stops the run with a clear message and leaves
the last good checkpoint."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from train_configs import SYNTHETIC_TRAIN_CONFIG
from xla_env import xla_flags

from jaxres.train import Checkpointer, build_engine, default_config
from jaxres.train.checkpoint import CheckpointError

SHAPE = (8, 4, 16, 16, 3)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _leaves_equal(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_save_on_eight_restore_on_one_and_four(tmp_path):
  c = default_config()
  c.model.num_classes = 4
  c.parallel.fsdp, c.parallel.fsdp_min_size = True, 256
  c.ema_decay = 0.99
  engine, _, _ = build_engine(c)
  assert engine.num_devices == 8
  state = engine.init(jax.random.key(3), SHAPE)
  ckpt = Checkpointer(str(tmp_path), keep=1)
  ckpt.save(7, state)
  ckpt.wait()
  for n, fsdp in ((1, False), (4, True), (4, False)):
    c.parallel.num_devices, c.parallel.fsdp = n, fsdp
    other, _, _ = build_engine(c)
    restored = ckpt.restore(other.abstract_state(SHAPE))
    _leaves_equal(state, restored)
    kernel = restored.params["layer4_0"]["conv1"]["kernel"]
    assert len(kernel.sharding.device_set) == n
    assert kernel.addressable_shards[0].data.shape[-1] == (64 // n if fsdp else 64)
  ckpt.close()


def test_keeps_last_n_and_best(tmp_path):
  ckpt = Checkpointer(str(tmp_path), keep=2, keep_best=1, best_metric="accuracy", async_save=False)
  tree = {"w": np.zeros(3, np.float32)}
  for step, acc in ((1, 0.9), (2, None), (3, 0.1), (4, 0.2), (5, None)):
    ckpt.save(step, tree, metrics=None if acc is None else {"accuracy": acc})
  assert ckpt.all_steps() == [1, 4, 5]
  ckpt.close()


def _damage(step_dir, how):
  """Fault injection on an orbax step folder: what a full disk or a kill mid-copy leaves."""
  files = glob.glob(os.path.join(step_dir, "default", "**", "d", "*"), recursive=True)
  if how == "truncated_array":
    with open(max(files, key=os.path.getsize), "r+b") as f:
      f.truncate(100)
  elif how == "missing_array":
    for path in files:
      os.remove(path)
  elif how == "missing_metadata":
    os.remove(os.path.join(step_dir, "default", "_METADATA"))


@pytest.mark.parametrize("how", ["truncated_array", "missing_array", "missing_metadata"])
def test_a_damaged_latest_checkpoint_is_named_moved_aside_and_the_previous_one_restored(
  tmp_path, how
):
  directory = str(tmp_path / "checkpoints")
  ckpt = Checkpointer(directory, keep=3, async_save=False)
  tree = {"w": np.arange(1000, dtype=np.float32), "b": np.ones(3, np.float32)}
  for step in (1, 2, 3):
    ckpt.save(step, jax.tree.map(lambda x: x + step, tree))
  _damage(os.path.join(directory, "3"), how)
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tree)
  with pytest.raises(CheckpointError, match=os.path.join(directory, "3")):
    ckpt.restore(abstract)
  reports = []
  step, state = ckpt.restore_newest_intact(abstract, report=reports.append)
  assert step == 2 and float(state["b"][0]) == 3.0
  assert len(reports) == 1 and os.path.join(directory, "3") in reports[0]
  assert "resuming from step 2" in reports[0]
  assert os.path.isdir(str(tmp_path / "checkpoints.corrupt" / "3"))  # kept for the user
  assert ckpt.all_steps() == [1, 2] and ckpt.latest_step() == 2
  ckpt.save(3, tree)  # the step can be written again
  assert ckpt.restore(abstract, 3)["b"][0] == 1.0
  ckpt.close()


def test_futures_left_over_by_a_failed_restore_log_nothing_and_other_errors_still_do(caplog):
  import asyncio
  import gc

  from jaxres.train.checkpoint import _ignore_reads_finishing_after_a_failed_restore

  _ignore_reads_finishing_after_a_failed_restore()

  async def gather_and_drop(error):  # asyncio logs "_GatheringFuture exception was never retrieved"
    async def fail():
      raise error

    asyncio.gather(fail())
    await asyncio.sleep(0.01)

  asyncio.run(gather_and_drop(Exception("Encountered error while reading array index: (0,)")))
  gc.collect()
  assert not caplog.records
  asyncio.run(gather_and_drop(ValueError("a real bug")))
  gc.collect()
  assert "a real bug" in caplog.text


def test_checkpoints_that_do_not_fit_are_refused_without_moving_anything(tmp_path):
  ckpt = Checkpointer(str(tmp_path), keep=3, async_save=False)
  for step in (1, 2):
    ckpt.save(step, {"w": np.zeros(4, np.float32)})
  other = {"w": jax.ShapeDtypeStruct((4,), np.float32), "v": jax.ShapeDtypeStruct((4,), np.float32)}
  with pytest.raises(CheckpointError, match="cannot be restored"):
    ckpt.restore_newest_intact(other, report=pytest.fail)
  assert ckpt.all_steps() == [1, 2]
  with pytest.raises(FileNotFoundError, match="No checkpoint of step 123 .* its steps are 1, 2"):
    ckpt.restore({"w": np.zeros(4, np.float32)}, 123)
  ckpt.close()


# --- subprocess runs of the `jaxres train` command on synthetic data -----------------------------


def _start(workdir, *overrides):
  env = dict(os.environ, PYTHONPATH=ROOT, XLA_FLAGS=xla_flags(2))
  config = os.path.join(os.path.dirname(workdir), "config.py")
  with open(config, "w") as f:
    f.write(SYNTHETIC_TRAIN_CONFIG)
  return subprocess.Popen(
    [
      sys.executable,
      "-m",
      "jaxres.cli",
      "train",
      "--config",
      config,
      "--workdir",
      workdir,
      *overrides,
    ],
    env=env,
    stdout=subprocess.PIPE,
    stderr=subprocess.STDOUT,
    text=True,
  )


def _logged_step(workdir):
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return 0
  with open(path) as f:
    steps = [json.loads(line)["step"] for line in f if line.strip()]
  return max(steps, default=0)


def _wait_for_step(proc, workdir, step, timeout=240):
  start = time.time()
  while _logged_step(workdir) < step:
    assert proc.poll() is None, proc.stdout.read()
    assert time.time() - start < timeout
    time.sleep(0.05)


def _final_params(workdir, step):
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), async_save=False)
  assert ckpt.latest_step() == step
  # Restored without a target: plain numpy trees of whatever was saved.
  restored = ckpt._manager.restore(step)
  ckpt.close()
  return restored["params"], restored["batch_stats"], restored["opt_state"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("full") / "run")
  proc = _start(workdir)
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out
  return _final_params(workdir, 16)


@pytest.mark.slow  # `jaxres train` processes: their exits and their output are the point
def test_sigterm_then_kill9_then_a_damaged_checkpoint_then_resume_matches_uninterrupted(
  tmp_path, uninterrupted
):
  workdir = str(tmp_path / "run")
  # SIGTERM: stops at the next step boundary with a checkpoint of that step, exit code 0.
  proc = _start(workdir)
  _wait_for_step(proc, workdir, 3)
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate(timeout=120)
  assert proc.returncode == 0, out
  stopped = _logged_step(workdir)
  assert "Stop requested" in out and f"stopped early at step {stopped}" in out
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"))
  assert ckpt.latest_step() == stopped
  ckpt.close()

  # kill -9 mid-run after resuming: no chance to save; the next run resumes from the last checkpoint.
  proc = _start(workdir)
  _wait_for_step(proc, workdir, stopped + 5)
  proc.kill()
  proc.wait()
  # ... unless that one is damaged too (a full disk): it is named, and the one before it is used.
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"))
  *_, before, latest = sorted(ckpt.all_steps())
  ckpt.close()
  _damage(os.path.join(workdir, "checkpoints", str(latest)), "truncated_array")
  proc = _start(workdir)
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out
  assert f"{workdir}/checkpoints/{latest} cannot be restored" in out, out
  assert f"Resumed from the checkpoint of step {before}." in out and "finished at step 16" in out
  assert "Traceback" not in out and "Event loop is closed" not in out, out
  for a, b in zip(_final_params(workdir, 16), uninterrupted):
    _leaves_equal(a, b)
  # The steps between the checkpoint used and the kill ran twice but are logged once.
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [(r["split"], r["step"]) for r in map(json.loads, f)]
  assert sorted(rows) == sorted(set(rows)) and len(rows) == 16 + 1  # train 1..16, eval 16


@pytest.mark.slow  # `jaxres train` processes
def test_nan_loss_stops_with_message_and_keeps_last_checkpoint(tmp_path):
  workdir = str(tmp_path / "run")
  # Warm-up to an absurd learning rate: step 1 has lr 0, step 2 makes the weights huge (the
  # checkpoint of step 2 is still finite), and the loss of step 3 overflows.
  proc = _start(
    workdir,
    "--config.optimizer.learning_rate=1e30",
    "--config.schedule.warmup_steps=8",
    "--config.optimizer.momentum=0.0",
  )
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 1, out
  assert "Training loss is nan" in out or "Training loss is inf" in out, out
  bad_step = int(out.split(" at step ")[1].split(";")[0])
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), async_save=False)
  last = ckpt.latest_step()
  assert last is not None and last < bad_step and f"checkpoint is step {last}" in out
  params = ckpt._manager.restore(last)["params"]
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(params))
  ckpt.close()
