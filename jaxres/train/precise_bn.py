"""Precise BatchNorm statistics: the running averages replaced by true statistics over N batches.

During training both the parameters and the running averages move every step, so the running
mean and variance lag behind the model they are used with. With the parameters fixed, this
recomputes every BatchNorm layer's statistics over N training batches (PySlowFast's
`BN.USE_PRECISE_STATS` / `NUM_BATCHES_PRECISE`, which calls fvcore's `update_bn_stats`; Wu and
Johnson, "Rethinking 'Batch' in BatchNorm", 2021, Sec. 3).

The model runs in train mode, so each layer sees the inputs it sees in training (earlier layers
normalised with their batch statistics), and `jaxres.models.norm.BatchNorm` sows the mean and
biased variance of every batch it normalises. Per layer, with batches of equal size:

- mean: the average over the batches of the batch means;
- variance: the variance of all the batches' elements taken together, i.e. the average of the
  batches' biased variances plus the (biased) variance of the batch means across batches.

That is fvcore's estimator (`_PopulationVarianceEstimator`, used by `update_bn_stats` since 2021),
which the paper's appendix prefers for small batches; fvcore's earlier one averaged the batches'
Bessel-corrected variances and left out the spread of the means. The two differ by the spread
of the means and by `1 / elements per batch`, both small at video batch sizes. Like fvcore, the
result replaces the running variance as it is (not Bessel-corrected). The statistics are those of
the batch BatchNorm normalises in training: the global batch under `jax.jit`, the batch of all
devices under `pmap` (`bn_axis_name`); PySlowFast's per-GPU BatchNorm uses each GPU's share.

Example:
  >>> update = make_precise_bn(model)
  >>> batch_stats, used = update(variables, (b["video"] for b in train_batches), 200)
  >>> variables = {**variables, "batch_stats": batch_stats}
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Iterable, Optional

import flax.traverse_util
import jax
import jax.numpy as jnp

from jaxres.models.norm import BATCH_MOMENTS

# One update of the running estimate with batch number `k` (1-based): (mean, Welford sum of the
# squared deviations of the batch means, sum of the batch variances).
_Acc = dict[tuple[str, ...], tuple[jax.Array, jax.Array, jax.Array]]


def _moments(model, variables, x) -> dict[tuple[str, ...], tuple[jax.Array, jax.Array]]:
  """`{layer path: (batch mean, biased batch variance)}` of every BatchNorm call on `x`."""
  _, sown = model.apply(variables, x, train=True, mutable=["batch_stats", BATCH_MOMENTS])
  flat = flax.traverse_util.flatten_dict(dict(sown.get(BATCH_MOMENTS, {})))
  out = {}
  for path, values in flat.items():
    if path[-1] != "mean":
      continue
    layer = path[:-1]
    if len(values) != 1:
      raise ValueError(
        f"BatchNorm {'/'.join(layer)} runs {len(values)} times in one forward "
        "pass; precise statistics need each layer called once (as fvcore)."
      )
    out[layer] = (values[0], flat[layer + ("var",)][0])
  return out


def make_precise_bn(
  model, *, model_input: Optional[Callable[[Any], jax.Array]] = None
) -> Callable[[Any, Iterable[Any], int], tuple[Any, int]]:
  """Builds `update(variables, batches, num_batches) -> (batch_stats, batches_used)`.

  The per-batch step is compiled once (by `jax.jit`, for each input shape), so calling `update`
  before every evaluation of a run costs no new compilation.

  Args:
    model: the flax module, with `jaxres.models.norm.BatchNorm` layers (`train=True` makes them
      use and sow batch statistics).
    model_input: `batch -> model input` applied inside the compiled step (e.g. the task's
      `model_input(prepare(batch, None))`); default: the batch is the input.

  Returns:
    `update`: `variables` are `{"params", "batch_stats"}` (fixed; only the statistics are
    computed), `batches` yields inputs for `model_input` (global arrays, or numpy under a single
    host), and at most `num_batches` of them are used. It returns the new `batch_stats` (layers
    that never ran keep theirs) and the number of batches used (fewer when `batches` ends first).

  Raises:
    ValueError (from `update`): `batches` is empty, or a BatchNorm layer runs twice in one pass.

  Example:
    >>> update = make_precise_bn(model, model_input=lambda b: b["video"])
    >>> state = state.replace(batch_stats=update(state.variables, train_batches, 200)[0])
  """
  model_input = model_input or (lambda batch: batch)

  def step(acc: _Acc, k, variables, batch) -> _Acc:
    out = {}
    for layer, (mean, var) in _moments(model, variables, model_input(batch)).items():
      m, w, v = acc[layer]
      m_new = m + (mean - m) / k
      out[layer] = (m_new, w + (mean - m) * (mean - m_new), v + var)
    return out

  compiled = jax.jit(step)

  def update(variables, batches: Iterable[Any], num_batches: int) -> tuple[Any, int]:
    batch_stats = variables.get("batch_stats", {})
    acc = None
    used = 0
    for batch in itertools.islice(batches, num_batches):
      if acc is None:
        shapes = jax.eval_shape(lambda v, b: _moments(model, v, model_input(b)), variables, batch)
        acc = {
          layer: tuple(jnp.zeros(s.shape, s.dtype) for s in (mean, mean, var))
          for layer, (mean, var) in shapes.items()
        }
      used += 1
      acc = compiled(acc, jnp.float32(used), variables, batch)
    if not used:
      raise ValueError("Precise BatchNorm statistics need at least one batch; none was given.")
    new = {}
    for layer, (m, w, v) in acc.items():
      new[layer + ("mean",)], new[layer + ("var",)] = m, (v + w) / used
    # The tree of `batch_stats` as it is (dict or FrozenDict), so compiled steps still take it.
    return jax.tree_util.tree_map_with_path(
      lambda path, old: new.get(tuple(k.key for k in path), old), batch_stats
    ), used

  return update


def precise_batch_stats(
  model,
  variables,
  batches: Iterable[Any],
  num_batches: int,
  *,
  model_input: Optional[Callable[[Any], jax.Array]] = None,
) -> Any:
  """The precise `batch_stats` of `model` with `variables` over `num_batches` of `batches`.

  `make_precise_bn(model, model_input=...)(variables, batches, num_batches)[0]`, for one call;
  build the update once with `make_precise_bn` to call it repeatedly.

  Example:
    >>> stats = precise_batch_stats(model, variables, clips, 200)
    >>> logits = model.apply({**variables, "batch_stats": stats}, x, train=False)
  """
  return make_precise_bn(model, model_input=model_input)(variables, batches, num_batches)[0]


def precise_bn_hook(
  engine,
  model,
  task,
  train_data: Callable[[int], Iterable[Any]],
  num_batches: int,
  *,
  keep_statistics: Optional[Callable] = None,
) -> Callable[[Any, int], tuple[Any, int]]:
  """The training loop's `hook(state, step) -> (state, batches_used)`: the state with precise
  `batch_stats` over the first `num_batches` training batches after `step`.

  The batches come from a pipeline of their own, `train_data(step)` (closed after use), so the
  training stream and resumed runs are unchanged; they are the batches the next steps train on,
  taken as the task sees them in eval (`prepare(batch, None)`: no mixup), with training's
  augmentation. The parameters are those evaluation uses (EMA ones when there are any). The
  statistics go back on the state's own shardings, so the compiled steps take it as before.

  Args:
    engine: a `JitEngine` or `PmapEngine`.
    model: the engine's model (under pmap its `bn_axis_name` is dropped: the step here runs the
      global batch under `jax.jit`).
    task: the task (`prepare`, `model_input`).
    train_data: `start_step -> training batches from that step on` (the loop's).
    num_batches: PySlowFast's `NUM_BATCHES_PRECISE` (`config.precise_bn_batches`).
    keep_statistics: `(new, old, step) -> batch_stats` that keeps the statistics of frozen
      modules (`jaxres.train.param_groups.ParamGroups.keep_frozen_statistics`), as fvcore leaves
      BatchNorm layers in eval mode alone; None recomputes every layer.

  Returns:
    The hook.

  Example:
    >>> hook = precise_bn_hook(engine, model, task, train_data, 200)
    >>> state, used = hook(state, step)
  """
  if getattr(model, "bn_axis_name", None) is not None:
    model = model.clone(bn_axis_name=None)
  update = make_precise_bn(model, model_input=lambda b: task.model_input(task.prepare(b, None)))
  put = engine.put_batch if hasattr(engine, "batch_sharding") else (lambda batch: batch)

  def hook(state, step: int):
    current = engine.to_global(state)
    batches = train_data(step)
    try:
      stats, used = update(current.variables, (put(b) for b in batches), num_batches)
    finally:
      close = getattr(batches, "close", None)
      if close is not None:
        close()
    if keep_statistics is not None:
      stats = keep_statistics(stats, current.batch_stats, current.step)
    stats = jax.tree.map(
      lambda new, old: jax.device_put(new, old.sharding), stats, current.batch_stats
    )
    return engine.from_global(current.replace(batch_stats=stats)), used

  return hook
