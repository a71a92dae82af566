"""The pure train and eval steps, written once with global-array semantics.

Parallelism is chosen around them (`jaxres.train.parallel`): under `jax.jit` arrays are global and
XLA inserts the collectives; under `jax.pmap` the same function runs per device and `axis_name`
names the axis that gradients and metrics are averaged over (the model then syncs BatchNorm with
its own `bn_axis_name`).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import optax

from jaxres.tasks import Task
from jaxres.train.state import TrainState

Metrics = dict[str, jax.Array]


def make_train_step(
  model,
  task: Task,
  tx: optax.GradientTransformation,
  schedule: Callable,
  *,
  ema_decay: float = 0.0,
  axis_name: Optional[str] = None,
  grad_accum_steps: int = 1,
  keep_statistics: Optional[Callable] = None,
) -> Callable[[TrainState, Any, jax.Array], tuple[TrainState, Metrics]]:
  """Builds `train_step(state, batch, rng) -> (state, metrics)`.

  The rng is folded with the step, so a step's randomness (mixup, dropout) depends only on the
  seed and the step number, which makes resumed runs repeat uninterrupted ones exactly.

  With `grad_accum_steps = k > 1` the batch is split into k micro-batches that run one after the
  other in a `lax.scan` inside the step, each prepared by the task on its own (mixup mixes clips
  within a micro-batch); their gradients and metrics are averaged and the
  optimiser updates once, so only one micro-batch's activations are alive at a time. Micro-batch j
  holds examples j, j + k, j + 2k, ... of the batch, so each device keeps its own rows (no data
  moves between devices). The gradient equals the whole batch's for models without BatchNorm.
  BatchNorm normalises each micro-batch with that micro-batch's statistics (as k smaller steps
  would), and its running averages are updated k times per step, once per micro-batch in order.

  Args:
    model: the flax module (built with `bn_axis_name=axis_name` for pmap).
    task: `prepare`, loss and metrics (see `jaxres.tasks`).
    tx: the optimiser.
    schedule: learning rate by step, reported in the metrics.
    ema_decay: decay of `state.ema_params` (used only when the state has them).
    axis_name: the pmap axis to average gradients and metrics over; None under jit.
    grad_accum_steps: micro-batches per step (the batch size, per device under pmap, must be
      divisible by it).
    keep_statistics: `(new, old, step) -> batch_stats`, which keeps frozen modules' BatchNorm
      statistics (`ParamGroups.keep_frozen_statistics`); None updates all of them.

  Returns:
    The step function. Metrics: the task's (loss, accuracy, ...) plus `learning_rate`,
    `grad_norm` (before clipping) and `param_norm`.

  Example:
    >>> step = jax.jit(make_train_step(model, task, tx, schedule), donate_argnums=(0,))
    >>> state, metrics = step(state, batch, jax.random.key(0))
  """

  def train_step(state: TrainState, batch, rng: jax.Array):
    rng = jax.random.fold_in(rng, state.step)
    aug_rng, model_rng = jax.random.split(rng)

    def loss_fn(params, batch_stats, batch, rngs):
      batch = task.prepare(batch, rngs[0])
      variables = {"params": params, "batch_stats": batch_stats}
      outputs, updates = model.apply(
        variables,
        task.model_input(batch),
        train=True,
        mutable=["batch_stats"],
        rngs={"dropout": rngs[1]},
      )
      loss, metrics = task.loss_and_metrics(outputs, batch)
      return loss, (metrics, updates.get("batch_stats", batch_stats))

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    if grad_accum_steps == 1:
      (_, (metrics, batch_stats)), grads = grad_fn(
        state.params, state.batch_stats, batch, (aug_rng, model_rng)
      )
    else:
      grads, metrics, batch_stats = _accumulate(
        grad_fn, state, batch, (aug_rng, model_rng), grad_accum_steps
      )
    if axis_name is not None:
      grads, metrics = jax.lax.pmean((grads, metrics), axis_name)
    if keep_statistics is not None:
      batch_stats = keep_statistics(batch_stats, state.batch_stats, state.step)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ema_params = state.ema_params
    if ema_params is not None:
      ema_params = optax.incremental_update(params, ema_params, 1.0 - ema_decay)
    metrics = dict(
      metrics,
      learning_rate=jnp.asarray(schedule(state.step), jnp.float32),
      grad_norm=optax.tree.norm(grads),
      param_norm=optax.tree.norm(params),
    )
    new_state = state.replace(
      step=state.step + 1,
      params=params,
      batch_stats=batch_stats,
      opt_state=opt_state,
      ema_params=ema_params,
    )
    return new_state, metrics

  return train_step


def split_micro_batches(batch: Any, k: int) -> Any:
  """`batch` as k micro-batches stacked on a new leading axis; micro-batch j holds rows j, j+k, ...

  Strided rather than contiguous, so that a batch split over devices along its first axis splits
  each micro-batch the same way (a device's rows stay on it).

  Example:
    >>> split_micro_batches({"x": jnp.arange(6)}, 2)["x"]
    Array([[0, 2, 4], [1, 3, 5]], dtype=int32)
  """

  def one(x):
    if x.shape[0] % k:
      raise ValueError(
        f"A batch of {x.shape[0]} does not split into {k} micro-batches (grad_accum_steps)."
      )
    return jnp.swapaxes(x.reshape((x.shape[0] // k, k) + x.shape[1:]), 0, 1)

  return jax.tree.map(one, batch)


def _accumulate(grad_fn, state: TrainState, batch, rngs, k: int):
  """Mean gradients and metrics of k micro-batches, run in sequence by a scan (BatchNorm's
  running statistics carried from one to the next)."""
  micro = split_micro_batches(batch, k)

  def body(carry, xs):
    grads_sum, metrics_sum, batch_stats = carry
    index, mb = xs
    micro_rngs = tuple(jax.random.fold_in(r, index) for r in rngs)
    (_, (metrics, batch_stats)), grads = grad_fn(state.params, batch_stats, mb, micro_rngs)
    add = lambda a, b: jax.tree.map(jnp.add, a, b)
    return (add(grads_sum, grads), add(metrics_sum, metrics), batch_stats), None

  first = jax.tree.map(lambda x: x[0], micro)
  metrics_shape = jax.eval_shape(
    lambda: grad_fn(state.params, state.batch_stats, first, rngs)[0][1][0]
  )
  zeros = lambda tree: jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), tree)
  init = (zeros(state.params), zeros(metrics_shape), state.batch_stats)
  (grads, metrics, batch_stats), _ = jax.lax.scan(body, init, (jnp.arange(k), micro))
  mean = lambda tree: jax.tree.map(lambda x: x / k, tree)
  return mean(grads), mean(metrics), batch_stats


def make_eval_step(model, task: Task) -> Callable[[TrainState, Any], Metrics]:
  """Builds `eval_step(state, batch) -> per-example values` (EMA parameters when present).

  Args:
    model: the flax module.
    task: provides `prepare`, `model_input` and `eval_metrics`.

  Returns:
    The step; its values have leading axis B and include `"weight"` (`batch["mask"]`, else ones),
    ready for `task.aggregate` on the host.

  Example:
    >>> values = jax.jit(make_eval_step(model, task))(state, batch)
  """

  def eval_step(state: TrainState, batch):
    batch = task.prepare(batch, None)
    x = task.model_input(batch)
    outputs = model.apply(state.variables, x, train=False)
    values = dict(task.eval_metrics(outputs, batch))
    values["weight"] = (
      jnp.asarray(batch["mask"], jnp.float32)
      if "mask" in batch
      else jnp.ones(x.shape[:1], jnp.float32)
    )
    return values

  return eval_step
