"""Starting a run from other weights (`config.init_from`): fine-tuning and transfer.

The source is a `jaxres.weights` name (`"r3d_18.kinetics400"`), a file (`.msgpack` of jaxres
variables, or a PyTorch `.pth`/`.pyth` converted for the configured architecture), or a run
folder (`runs/demo`, `runs/demo@200` for one step). Every parameter and BatchNorm statistic of
the new model whose path and shape match the source's is loaded; a classifier whose class count
differs (the same shape up to its last dimension, which is the new `num_classes`) keeps its fresh
initialisation, and so does whatever `config.init_fresh` names (regular expressions searched in
the paths, e.g. `("^fc/",)` for a new classifier of the same size); anything else that differs is an error naming each key and both shapes. The
optimiser state is the fresh one. Only a run's first start loads the source: a resumed run
continues from its own checkpoints.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

import jax
import numpy as np

from jaxres import weights
from jaxres.convert import files
from jaxres.inference.shapes import path_name
from jaxres.train.state import TrainState
from jaxres.weights.load import convert_path, converter_for

log = logging.getLogger("jaxres.train")


def read_source(source: str, arch: str) -> dict[str, Any]:
  """The variables `config.init_from` names (numpy arrays).

  Args:
    source: a weights name, a `.msgpack`/`.pth`/`.pyth` file, or a run folder (`RUN@STEP`).
    arch: the configured model (for converting a PyTorch file).

  Returns:
    `{"params", "batch_stats"}`.

  Raises:
    FileNotFoundError: no such weights, file or run.
    ValueError: a PyTorch file for an architecture no converter knows, or that does not convert.

  Example:
    >>> read_source("r3d_18.kinetics400", "r3d_18")["params"]["fc"]["kernel"].shape
    (512, 400)
  """
  if source in weights.names():
    return weights.load_variables(source)
  path, _, step = source.partition("@")
  if step and not step.isdigit():
    raise ValueError(f"config.init_from={source!r}: the step after '@' must be a number.")
  if not os.path.exists(path):
    raise FileNotFoundError(
      f"config.init_from={source!r} is neither published weights (`jaxres weights list`) nor "
      "a file or run folder."
    )
  if os.path.isdir(path):
    return files.load_variables(path, step=int(step) if step else None)
  if path.endswith(".msgpack"):
    return files.load_variables(path)
  converter = converter_for(arch)
  if converter is not None:
    return convert_path(path, converter, arch)
  raise ValueError(
    f"config.init_from={source!r}: no converter reads PyTorch files for "
    f"{arch}; convert it first (`jaxres convert`) and pass the .msgpack."
  )


def merge(
  fresh: dict[str, Any],
  source: dict[str, Any],
  num_classes: int | None,
  keep_fresh: tuple[str, ...] = (),
) -> tuple[dict[str, Any], list[str]]:
  """`fresh` variables with every leaf of `source` of the same path and shape in their place.

  Args:
    fresh: the new model's `{"params", "batch_stats"}` (arrays or shape structs).
    source: the variables to start from.
    num_classes: the new model's class count (a classifier of another count keeps `fresh`).
    keep_fresh: patterns of paths (without the `params/` or `batch_stats/` prefix) that keep
      `fresh` whatever the source holds.

  Returns:
    `(variables, kept)`: the merged tree (source leaves as numpy, the rest from `fresh`) and the
    paths kept fresh because only their class dimension differs.

  Raises:
    ValueError: paths missing on either side or of other shapes (each named with both shapes).

  Example:
    >>> variables, kept = merge(abstract, source, num_classes=10)
    >>> kept
    ['params/fc/bias', 'params/fc/kernel']
  """
  flat_source = {
    f"{c}/{path_name(p)}": np.asarray(x)
    for c in ("params", "batch_stats")
    for p, x in jax.tree_util.tree_flatten_with_path(source.get(c) or {})[0]
  }
  kept, problems, used = [], [], set()

  def one(path, leaf):
    name = path_name(path)
    if any(re.search(p, name.split("/", 1)[1]) for p in keep_fresh):
      used.add(name)
      kept.append(name)
      return leaf
    if name not in flat_source:
      problems.append(f"{name}: not in the source (the model has {tuple(leaf.shape)})")
      return leaf
    used.add(name)
    value = flat_source[name]
    if tuple(value.shape) == tuple(leaf.shape):
      return value.astype(leaf.dtype)
    if (
      num_classes
      and leaf.shape
      and leaf.shape[-1] == num_classes
      and value.shape[:-1] == tuple(leaf.shape[:-1])
    ):
      kept.append(name)
      return leaf
    problems.append(f"{name}: {tuple(value.shape)} in the source, {tuple(leaf.shape)} in the model")
    return leaf

  merged = jax.tree_util.tree_map_with_path(
    one, {"params": fresh["params"], "batch_stats": fresh.get("batch_stats") or {}}
  )
  problems += [
    f"{name}: in the source {tuple(flat_source[name].shape)}, not in the model"
    for name in sorted(set(flat_source) - used)
  ]
  if problems:
    raise ValueError(
      f"config.init_from does not fit the configured model: {len(problems)} "
      "difference(s): "
      + "; ".join(problems[:12])
      + (f"; and {len(problems) - 12} more" if len(problems) > 12 else "")
      + "."
    )
  return merged, sorted(kept)


def start_from(
  state: TrainState, source: str, model_config, keep_fresh: tuple[str, ...] = ()
) -> tuple[TrainState, str]:
  """The fresh `state` with the source's variables in it, on the state's own shardings.

  Args:
    state: a freshly initialised (possibly sharded) train state.
    source: `config.init_from`.
    model_config: `config.model` (its `name` and `num_classes`).
    keep_fresh: `config.init_fresh`, paths that keep their fresh initialisation.

  Returns:
    `(state, report)`: the new state (optimiser state untouched, EMA parameters = parameters)
    and one line saying what was loaded and what starts afresh.

  Example:
    >>> state, report = start_from(engine.init(rng, shape), "runs/demo", config.model)
  """
  loaded = read_source(source, model_config.name)
  num_classes = model_config.get("num_classes")
  merged, kept = merge(
    {"params": state.params, "batch_stats": state.batch_stats},
    loaded,
    num_classes,
    tuple(keep_fresh),
  )

  def place(value, target):  # the host copy onto the target's sharding, every host alike
    if value is target:
      return target
    return jax.make_array_from_callback(
      tuple(target.shape), target.sharding, lambda index: value[index]
    )

  params = jax.tree.map(place, merged["params"], state.params)
  batch_stats = jax.tree.map(place, merged["batch_stats"], state.batch_stats)
  state = state.replace(
    params=params,
    batch_stats=batch_stats,
    ema_params=params if state.ema_params is not None else None,
  )
  count = len(jax.tree.leaves(merged))
  report = (
    f"Started from {source}: {count - len(kept)} of {count} arrays loaded"
    + (f"; initialised afresh: {', '.join(kept)}" if kept else "")
    + "."
  )
  return state, report
