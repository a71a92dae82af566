"""A run folder for inference: its config rebuilds the model, its checkpoint gives the variables.

`jaxres train` writes `config.json` (the whole config; the model's registry name and constructor
arguments among it) and orbax checkpoints under `checkpoints/`. `load_run` rebuilds the model from
that config and reads only `params` and `batch_stats` (or the EMA parameters) of one checkpoint,
checking them against the model's own shapes, so a checkpoint that does not fit the configured
model is refused with an error naming what differs.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Optional

import jax
import ml_collections

from jaxres import models
from jaxres.configs.defaults import with_defaults
from jaxres.convert import files
from jaxres.convert.orbax_reads import ignore_reads_finishing_after_a_failed_restore
from jaxres.inference.shapes import IncompatibleCheckpointError, abstract_variables, mismatches

CONFIG_FILE = "config.json"


@dataclasses.dataclass(frozen=True)
class Run:
  """A trained model rebuilt from its run folder.

  Attributes:
    model: the flax module.
    variables: `{"params", "batch_stats"}` (EMA parameters when the run kept them), on the
      default device.
    config: the run's config.
    step: the checkpoint's step.
  """

  model: Any
  variables: Any
  config: ml_collections.ConfigDict
  step: int


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a training run saved in `workdir` (`config.json`).

  Args:
    workdir: the run folder.

  Returns:
    The config (unlocked), with the defaults of keys newer than the run filled in.

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
      "(pass the config file with --config to rebuild the model otherwise)"
    )
  with open(path) as f:
    return with_defaults(ml_collections.ConfigDict(json.load(f)))


def load_run(
  workdir: str, *, config: Optional[ml_collections.ConfigDict] = None, step: Optional[int] = None
) -> Run:
  """Rebuilds the model of a training run and restores its variables on the default device.

  Args:
    workdir: the `jaxres train` workdir (or its `checkpoints/` folder).
    config: the run's config, if not the one saved in `workdir`.
    step: checkpoint step (default: the newest complete one; while training writes checkpoints,
      a newest step deleted as it is read gives way to the next newest).

  Returns:
    A `Run`.

  Raises:
    FileNotFoundError: no such workdir, config or checkpoint.
    IncompatibleCheckpointError (a ValueError): variables that do not fit the configured model,
      or a damaged checkpoint.

  Example:
    >>> run = load_run("runs/demo"); run.step
  """
  workdir = os.path.abspath(workdir)
  if os.path.basename(workdir) == "checkpoints" and config is None:
    workdir = os.path.dirname(workdir)
  config = config if config is not None else read_config(workdir)
  config = ml_collections.ConfigDict(config.to_dict())  # an unlocked copy
  model = models.from_config(config.model)
  if not os.path.isdir(os.path.join(workdir, "checkpoints")):
    raise FileNotFoundError(f"No checkpoints in {workdir}: is it the workdir of `jaxres train`?")
  # Before reading: a failed read (a damaged step, or one deleted as it is read) leaves reads in
  # flight whose tracebacks would follow the one line that reports it, or the fallback's success.
  ignore_reads_finishing_after_a_failed_restore()
  try:  # the newest complete step, also while training writes and deletes checkpoints
    variables, step = files.read_run_variables(workdir, step)
  except files.UnreadableCheckpointError as e:
    raise IncompatibleCheckpointError(str(e)) from e
  problems = mismatches(
    variables, abstract_variables(model, models.spec(config.model.name).input_rank)
  )
  if problems:
    raise IncompatibleCheckpointError(
      f"The checkpoint of step {step} in {workdir} does not fit the configured "
      f"{config.model.name} (another architecture or size?): {'; '.join(problems[:5])}"
      + (f" and {len(problems) - 5} more" if len(problems) > 5 else "")
      + "."
    )
  return Run(model=model, variables=jax.device_put(variables), config=config, step=step)
