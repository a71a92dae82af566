"""Loading a trained SR model from a training workdir, refusing the wrong architecture or scale.

A workdir of `jaxres train` holds the run's config (`config.json`; the model's registry name and
constructor arguments, the scale among them) and orbax checkpoints under `checkpoints/`. The model
is rebuilt from the config and the parameters restored into its shapes, so a checkpoint whose
parameters do not fit the configured model is refused with a clear error, as is a model that is
not a super-resolution model or whose name/scale differ from what the caller expects.

Example:
  >>> loaded = load_sr_model("runs/sr_edsr", expect_scale=4)
  >>> loaded.model.apply(loaded.variables, lr, train=False)
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Optional

import jax
import ml_collections

from jaxres import models

CONFIG_FILES = ("config.json",)


@dataclasses.dataclass(frozen=True)
class LoadedModel:
  """A rebuilt SR model and its restored variables.

  Attributes:
    model: the flax module.
    variables: `{"params", "batch_stats"}` (EMA parameters when the run kept them).
    name: registry name.
    scale: SR factor.
    clip_model: whether it takes clips (`input_rank` 5).
    step: the checkpoint's step.
  """

  model: Any
  variables: Any
  name: str
  scale: int
  clip_model: bool
  step: int


def save_run_config(config: ml_collections.ConfigDict, workdir: str) -> str:
  """Writes `config` as `workdir/config.json` (what `read_run_config` reads); returns the path.

  Example:
    >>> save_run_config(config, workdir)   # after or before `train_and_evaluate(config, workdir)`
  """
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, CONFIG_FILES[0])
  with open(path + ".tmp", "w") as f:
    f.write(config.to_json_best_effort(indent=2))
  os.replace(path + ".tmp", path)
  return path


def read_run_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a training run saved in `workdir` (`config.json`).

  Raises:
    FileNotFoundError: the folder or its config is missing.
  """
  if not os.path.isdir(workdir):
    raise FileNotFoundError(f"No checkpoint folder {workdir}.")
  for name in CONFIG_FILES:
    path = os.path.join(workdir, name)
    if os.path.exists(path):
      with open(path) as f:
        return ml_collections.ConfigDict(json.load(f))
  raise FileNotFoundError(
      f"{workdir} has no {' or '.join(CONFIG_FILES)}: is it the workdir of `jaxres train`? "
      "(pass the config file with --config to rebuild the model otherwise)")


def load_sr_model(workdir: str, *, config: Optional[ml_collections.ConfigDict] = None,
                  expect_model: Optional[str] = None, expect_scale: Optional[int] = None,
                  step: Optional[int] = None) -> LoadedModel:
  """Rebuilds the model of a training workdir and restores its parameters.

  Args:
    workdir: the `jaxres train` workdir (or its `checkpoints/` folder).
    config: the run's config, if not the one saved in `workdir`.
    expect_model: refuse a checkpoint of another architecture (registry name).
    expect_scale: refuse a checkpoint of another scale.
    step: checkpoint step (default: the latest).

  Returns:
    A `LoadedModel`.

  Raises:
    FileNotFoundError: no such workdir, config or checkpoint.
    ValueError: not an SR model, another architecture or scale, or parameters that do not fit.

  Example:
    >>> loaded = load_sr_model("runs/sr", expect_scale=4)
  """
  from jaxres.train.build import build_engine  # pylint: disable=import-outside-toplevel
  from jaxres.train.checkpoint import Checkpointer  # pylint: disable=import-outside-toplevel

  workdir = os.path.abspath(workdir)
  if os.path.basename(workdir) == "checkpoints" and config is None:
    workdir = os.path.dirname(workdir)
  config = config if config is not None else read_run_config(workdir)
  name = config.model.name
  try:
    spec = models.spec(name)
  except KeyError as e:
    raise ValueError(str(e.args[0])) from None
  if spec.task != "super_resolution":
    raise ValueError(f"{workdir} holds a {spec.task} model ({name}), not a super-resolution model.")
  scale = int(config.model.get("scale", 4))
  if expect_model is not None and expect_model != name:
    raise ValueError(f"{workdir} holds a {name} checkpoint, not {expect_model}.")
  if expect_scale is not None and expect_scale != scale:
    raise ValueError(f"{workdir} holds an x{scale} model ({name}), not x{expect_scale}.")

  config = ml_collections.ConfigDict(config.to_dict())  # an unlocked copy
  config.parallel.mode, config.parallel.fsdp, config.parallel.num_devices = "jit", False, 1
  engine, model, _ = build_engine(config, devices=jax.local_devices()[:1])
  input_shape = (1, 2, 16, 16, 3)  # parameter shapes do not depend on it
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), async_save=False)
  try:
    step = ckpt.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"No checkpoint in {ckpt.directory}.")
    try:
      state = ckpt.restore(engine.abstract_state(input_shape), step=step)
    except (ValueError, KeyError, TypeError) as e:
      raise ValueError(f"The checkpoint of step {step} in {workdir} does not fit {name} "
                       f"x{scale} (another architecture or scale?): {e}") from None
  finally:
    ckpt.close()
  return LoadedModel(model=model, variables=state.variables, name=name, scale=scale,
                     clip_model=spec.input_rank == 5, step=int(step))
