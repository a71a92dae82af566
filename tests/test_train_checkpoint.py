"""Checkpoints: save on 8 devices and restore on 1 and 4; kill -9 and resume ends with the
parameters of an uninterrupted run; SIGTERM leaves a checkpoint at the step it stopped at; a NaN
loss stops the run with a clear message and leaves the last good checkpoint."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from jaxres.train import Checkpointer, build_engine, default_config

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


# --- subprocess runs of the `jaxres train` command on synthetic data -----------------------------

CONFIG = """
from jaxres.train.config import default_config

def get_config():
  c = default_config()
  c.model.num_classes = 4
  c.data.num_frames, c.data.resize, c.data.crop_size = 4, 16, 16
  c.synthetic_data = True
  c.global_batch_size = 8
  c.num_train_steps = 16
  c.optimizer.learning_rate = 0.05
  c.parallel.num_devices = 2
  c.checkpoint.every_steps = 2
  c.checkpoint.keep = 2
  c.checkpoint.keep_best = 0
  c.eval_every_steps = 0
  c.eval_steps = 1
  c.log_every_steps = 1
  c.progress_bar = False
  c.tensorboard = False
  c.plot = False
  return c
"""


def _start(workdir, *overrides):
  env = dict(os.environ, PYTHONPATH=ROOT, XLA_FLAGS="--xla_force_host_platform_device_count=2")
  config = os.path.join(os.path.dirname(workdir), "config.py")
  with open(config, "w") as f:
    f.write(CONFIG)
  return subprocess.Popen(
      [sys.executable, "-m", "jaxres.cli", "train", "--config", config, "--workdir", workdir,
       *overrides], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


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


@pytest.mark.slow  # `jaxres train` processes
def test_sigterm_then_kill9_then_resume_matches_uninterrupted(tmp_path, uninterrupted):
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
  proc = _start(workdir)
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out
  assert "Resumed from the checkpoint of step" in out
  for a, b in zip(_final_params(workdir, 16), uninterrupted):
    _leaves_equal(a, b)


@pytest.mark.slow  # `jaxres train` processes
def test_nan_loss_stops_with_message_and_keeps_last_checkpoint(tmp_path):
  workdir = str(tmp_path / "run")
  # Warm-up to an absurd learning rate: step 1 has lr 0, step 2 makes the weights huge (the
  # checkpoint of step 2 is still finite), and the loss of step 3 overflows.
  proc = _start(workdir, "--config.optimizer.learning_rate=1e30", "--config.schedule.warmup_steps=8",
                "--config.optimizer.momentum=0.0")
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
