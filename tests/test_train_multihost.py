"""Two local processes (gloo collectives) training together with `jaxres train` end with the same
parameters as one process training alone on the same global batches: the launch line of a pod
worker, on a two-axis mesh (data across the processes, 2-way FSDP within each).

Both runs train in float64. In float32 the two layouts sum in other orders, and a ReLU whose input
lies within that rounding (~1e-7) of zero can take the other side in one run: its unit's whole
gradient then flows or not, and the layers below it differ by ~1e-3 after a step. Which unit, if
any, depends on the CPU's code generation (seen on an AVX-512 Xeon, not on an EPYC). In float64 the
rounding is ~1e-16 and such a tie is never met: the runs agree to ~1e-15, where unsynchronised
BatchNorm or a wrong sharding moves them by more than 1e-3."""

import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
from train_configs import SYNTHETIC_TRAIN_CONFIG
from xla_env import xla_flags

from jaxres.train import Checkpointer, build_engine, load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

STEPS = 3


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
  config_path = tmp_path / "config.py"
  config_path.write_text(
    SYNTHETIC_TRAIN_CONFIG.replace(
      "  return c", '  c.model.dtype = c.model.param_dtype = "float64"\n  return c'
    )
  )
  port = _free_port()
  env = dict(os.environ, PYTHONPATH=ROOT, XLA_FLAGS=xla_flags(2), JAX_ENABLE_X64="1")
  common = [
    sys.executable,
    "-m",
    "jaxres.cli",
    "train",
    "--config",
    str(config_path),
    f"--config.num_train_steps={STEPS}",
  ]
  pod = [
    common
    + [
      "--workdir",
      str(tmp_path / "run"),
      "--coordinator-address",
      f"127.0.0.1:{port}",
      "--num-processes",
      "2",
      "--process-id",
      str(i),
      "--config.parallel.num_devices=-1",
      "--config.parallel.mesh.data=2",
      "--config.parallel.mesh.fsdp=2",
      "--config.parallel.fsdp_min_size=64",
    ]
    for i in range(2)
  ]
  # The same steps on one device, with the loop's seeds and data.
  alone = common + ["--workdir", str(tmp_path / "alone"), "--config.parallel.num_devices=1"]
  procs = [
    subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for args in pod + [alone]
  ]
  try:
    outs = [p.communicate(timeout=600)[0] for p in procs]
  finally:
    for p in procs:  # one that failed to start leaves the other waiting for it
      p.kill()
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out
  assert "on 4 cpu device(s) (2 process(es))" in outs[0]

  # The checkpoints the two processes wrote together and the one process alone, both restored
  # onto this process's one device, in float64.
  with jax.enable_x64(True):
    config = load_config(
      str(config_path), [f"--config.num_train_steps={STEPS}", "--config.parallel.num_devices=1"]
    )
    engine, _, _ = build_engine(config)
    abstract = engine.abstract_state((8, 4, 16, 16, 3))
    saved = {}
    for run in ("run", "alone"):
      ckpt = Checkpointer(str(tmp_path / run / "checkpoints"), async_save=False)
      assert ckpt.latest_step() == STEPS
      saved[run] = ckpt.restore(abstract)
      ckpt.close()
  assert int(saved["run"].step) == int(saved["alone"].step) == STEPS
  for name in ("params", "batch_stats", "opt_state"):
    for a, b in zip(
      jax.tree.leaves(getattr(saved["run"], name)),
      jax.tree.leaves(getattr(saved["alone"], name)),
      strict=True,
    ):
      assert a.dtype == b.dtype and (a.dtype == np.float64 or a.dtype.kind == "i"), (
        a.dtype,
        b.dtype,
      )
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-12, rtol=0)
