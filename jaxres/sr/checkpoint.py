"""Loading a trained SR model from a training workdir, refusing the wrong architecture or scale.

Built on `jaxres.inference.load_run`, with the checks `jaxres upscale` needs: the run must hold a
super-resolution model, and the name and scale the caller expects.

Example:
  >>> loaded = load_sr_model("runs/sr_edsr", expect_scale=4)
  >>> loaded.model.apply(loaded.variables, lr, train=False)
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Optional

import ml_collections

from jaxres import models, weights
from jaxres.inference import pretrained
from jaxres.inference import runs as run_lib


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


def load_sr_model(
  workdir: str,
  *,
  config: Optional[ml_collections.ConfigDict] = None,
  expect_model: Optional[str] = None,
  expect_scale: Optional[int] = None,
  step: Optional[int] = None,
) -> LoadedModel:
  """Rebuilds the SR model of a training workdir and restores its parameters.

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
  workdir = os.path.abspath(workdir)
  if os.path.basename(workdir) == "checkpoints" and config is None:
    workdir = os.path.dirname(workdir)
  config = config if config is not None else run_lib.read_config(workdir)
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
  run = run_lib.load_run(workdir, config=config, step=step)
  return LoadedModel(
    model=run.model,
    variables=run.variables,
    name=name,
    scale=scale,
    clip_model=spec.input_rank == 5,
    step=run.step,
  )


def load_sr_weights(
  name: str,
  *,
  expect_model: Optional[str] = None,
  expect_scale: Optional[int] = None,
  progress: bool = True,
) -> LoadedModel:
  """A published SR model by its weights name (`jaxres weights list`), checked like a run's.

  Args:
    name: a `jaxres.weights` entry, e.g. `"basicvsr.reds4"`.
    expect_model: refuse weights of another architecture (registry name).
    expect_scale: refuse weights of another scale.
    progress: show a progress bar while downloading.

  Returns:
    A `LoadedModel` (its `step` is 0).

  Raises:
    KeyError: no such entry.
    ValueError: not an SR model, another architecture or scale.
    jaxres.weights.WeightsError: the file cannot be had or does not check out.

  Example:
    >>> loaded = load_sr_weights("basicvsr.reds4", expect_scale=4)
  """
  entry = weights.get(name)
  spec = models.spec(entry.arch)
  if spec.task != "super_resolution":
    raise ValueError(
      f"{name} are {spec.task} weights ({entry.arch}), not a super-resolution model."
    )
  if expect_model is not None and expect_model != entry.arch:
    raise ValueError(f"{name} are weights of {entry.arch}, not {expect_model}.")
  model, variables, _ = pretrained.load_pretrained(name, progress=progress)
  scale = int(getattr(model, "scale", entry.model_kwargs.get("scale", 4)))
  if expect_scale is not None and expect_scale != scale:
    raise ValueError(
      f"{name} are weights of an x{scale} model ({entry.arch}), not x{expect_scale}."
    )
  return LoadedModel(
    model=model,
    variables=variables,
    name=entry.arch,
    scale=scale,
    clip_model=spec.input_rank == 5,
    step=0,
  )
