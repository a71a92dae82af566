"""A run folder: the config a training run saved, and the model and variables it trained.

`jaxres train` writes `config.json` (the whole config; the model's registry name and constructor
arguments among it) and orbax checkpoints under `checkpoints/`. `load_run` rebuilds the model
from that config and restores the parameters into its shapes, so a checkpoint that does not fit
the configured model is refused with a clear error.

Example:
  >>> run = load_run("runs/demo")
  >>> logits = run.model.apply(run.variables, clips, train=False)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from typing import Any, Iterator, Optional

try:
  import fcntl
except ImportError:  # Windows: no advisory locks, so run folders are not locked there.
  fcntl = None

import jax
import ml_collections

from jaxres.atomic_files import write_atomic

CONFIG_FILE = "config.json"
LOCK_FILE = ".lock"


class RunLockedError(RuntimeError):
  """Another live process is training in the same run folder."""


@dataclasses.dataclass(frozen=True)
class Run:
  """A trained model rebuilt from its run folder.

  Attributes:
    model: the flax module.
    variables: `{"params", "batch_stats"}` (EMA parameters when the run kept them).
    config: the run's config.
    step: the checkpoint's step.
  """

  model: Any
  variables: Any
  config: ml_collections.ConfigDict
  step: int


def save_config(config: ml_collections.ConfigDict, workdir: str) -> str:
  """Writes `config` as `workdir/config.json` (what `read_config` reads); returns the path.

  Args:
    config: a training config.
    workdir: the run folder (created if missing).

  Returns:
    The path written (atomically: a temporary file renamed over it).

  Example:
    >>> save_config(config, "runs/demo")
  """
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, CONFIG_FILE)
  return write_atomic(path, config.to_json_best_effort(indent=2))


@contextlib.contextmanager
def lock_run(workdir: str) -> Iterator[str]:
  """Holds `workdir/.lock` exclusively while the block runs: one training per run folder.

  The lock is `fcntl.flock` on the open file, so the OS releases it when the holder exits in any
  way (kill -9 included): a dead process never keeps a folder locked, and a stale `.lock` file left
  behind is simply locked again. The holder's pid is written into the file for the error message.

  Args:
    workdir: the run folder (created if missing).

  Yields:
    The lock file's path.

  Raises:
    RunLockedError: another process holds the lock.

  Example:
    >>> with lock_run("runs/demo"):
    ...   train(...)
  """
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, LOCK_FILE)
  if fcntl is None:
    yield path
    return
  with open(path, "a+") as f:
    try:
      fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      f.seek(0)
      holder = f.read().strip() or "another process"
      raise RunLockedError(
          f"{workdir} is in use by a training run (process {holder}); wait for it to end or "
          "use another --workdir.") from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    try:
      yield path
    finally:
      f.truncate(0)  # the lock itself goes with the file's closing
      fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a training run saved in `workdir` (`config.json`).

  Args:
    workdir: the run folder.

  Returns:
    The config (unlocked).

  Raises:
    FileNotFoundError: the folder or its config is missing.

  Example:
    >>> read_config("runs/demo").model.name
  """
  if not os.path.isdir(workdir):
    raise FileNotFoundError(f"No run folder {workdir}.")
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"{workdir} has no {CONFIG_FILE}: is it the workdir of `jaxres train`? "
        "(pass the config file with --config to rebuild the model otherwise)")
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def load_run(workdir: str, *, config: Optional[ml_collections.ConfigDict] = None,
             step: Optional[int] = None) -> Run:
  """Rebuilds the model of a training run and restores its parameters on one device.

  Args:
    workdir: the `jaxres train` workdir (or its `checkpoints/` folder).
    config: the run's config, if not the one saved in `workdir`.
    step: checkpoint step (default: the latest).

  Returns:
    A `Run`.

  Raises:
    FileNotFoundError: no such workdir, config or checkpoint.
    CheckpointError (a ValueError): parameters that do not fit the configured model, or a damaged
      checkpoint.

  Example:
    >>> run = load_run("runs/demo"); run.step
  """
  from jaxres.train.build import build_engine  # the engine needs the whole training stack
  from jaxres.train.checkpoint import Checkpointer, CheckpointError
  from jaxres import models

  workdir = os.path.abspath(workdir)
  if os.path.basename(workdir) == "checkpoints" and config is None:
    workdir = os.path.dirname(workdir)
  config = config if config is not None else read_config(workdir)
  config = ml_collections.ConfigDict(config.to_dict())  # an unlocked copy
  config.parallel.mode, config.parallel.fsdp, config.parallel.num_devices = "jit", False, 1
  if "mesh" in config.parallel:
    config.parallel.mesh = {"data": -1, "fsdp": 1}
  engine, model, _ = build_engine(config, devices=jax.local_devices()[:1])
  clips = models.spec(config.model.name).input_rank == 5
  input_shape = (1, 2, 32, 32, 3) if clips else (1, 32, 32, 3)  # parameter shapes don't depend on it
  if not os.path.isdir(os.path.join(workdir, "checkpoints")):  # not created by looking for it
    raise FileNotFoundError(f"No checkpoints in {workdir}: is it the workdir of `jaxres train`?")
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), async_save=False)
  try:
    step = ckpt.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"No checkpoint in {ckpt.directory}.")
    try:
      state = ckpt.restore(engine.abstract_state(input_shape), step=step)
    except CheckpointError as e:
      raise CheckpointError(
          f"The checkpoint of step {step} in {workdir} does not fit the configured "
          f"{config.model.name} (another architecture or size?) or is damaged: "
          f"{e.reason}", e.reason) from None
  finally:
    ckpt.close()
  return Run(model=model, variables=state.variables, config=config, step=int(step))
