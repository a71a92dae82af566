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

import dataclasses
import json
import os
from typing import Any, Optional

import jax
import ml_collections

CONFIG_FILE = "config.json"


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
  with open(path + ".tmp", "w") as f:
    f.write(config.to_json_best_effort(indent=2))
  os.replace(path + ".tmp", path)
  return path


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
    ValueError: parameters that do not fit the configured model.

  Example:
    >>> run = load_run("runs/demo"); run.step
  """
  from jaxres.train.build import build_engine  # the engine needs the whole training stack
  from jaxres.train.checkpoint import Checkpointer
  from jaxres import models

  workdir = os.path.abspath(workdir)
  if os.path.basename(workdir) == "checkpoints" and config is None:
    workdir = os.path.dirname(workdir)
  config = config if config is not None else read_config(workdir)
  config = ml_collections.ConfigDict(config.to_dict())  # an unlocked copy
  config.parallel.mode, config.parallel.fsdp, config.parallel.num_devices = "jit", False, 1
  engine, model, _ = build_engine(config, devices=jax.local_devices()[:1])
  clips = models.spec(config.model.name).input_rank == 5
  input_shape = (1, 2, 32, 32, 3) if clips else (1, 32, 32, 3)  # parameter shapes don't depend on it
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), async_save=False)
  try:
    step = ckpt.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"No checkpoint in {ckpt.directory}.")
    try:
      state = ckpt.restore(engine.abstract_state(input_shape), step=step)
    except (ValueError, KeyError, TypeError) as e:
      raise ValueError(f"The checkpoint of step {step} in {workdir} does not fit the configured "
                       f"{config.model.name} (another architecture or size?): {e}") from None
  finally:
    ckpt.close()
  return Run(model=model, variables=state.variables, config=config, step=int(step))
