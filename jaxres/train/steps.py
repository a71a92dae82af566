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

from jaxres.train.state import TrainState
from jaxres.tasks import Task

Metrics = dict[str, jax.Array]


def make_train_step(model, task: Task, tx: optax.GradientTransformation, schedule: Callable,
                    *, ema_decay: float = 0.0, axis_name: Optional[str] = None
                    ) -> Callable[[TrainState, Any, jax.Array], tuple[TrainState, Metrics]]:
  """Builds `train_step(state, batch, rng) -> (state, metrics)`.

  The rng is folded with the step, so a step's randomness (mixup, dropout) depends only on the
  seed and the step number, which makes resumed runs repeat uninterrupted ones exactly.

  Args:
    model: the flax module (built with `bn_axis_name=axis_name` for pmap).
    task: `prepare`, loss and metrics (see `jaxres.tasks`).
    tx: the optimiser.
    schedule: learning rate by step, reported in the metrics.
    ema_decay: decay of `state.ema_params` (used only when the state has them).
    axis_name: the pmap axis to average gradients and metrics over; None under jit.

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
    batch = task.prepare(batch, aug_rng)

    def loss_fn(params):
      variables = {"params": params, "batch_stats": state.batch_stats}
      outputs, updates = model.apply(variables, task.model_input(batch), train=True,
                                     mutable=["batch_stats"], rngs={"dropout": model_rng})
      loss, metrics = task.loss_and_metrics(outputs, batch)
      return loss, (metrics, updates.get("batch_stats", state.batch_stats))

    (_, (metrics, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    if axis_name is not None:
      grads, metrics = jax.lax.pmean((grads, metrics), axis_name)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ema_params = state.ema_params
    if ema_params is not None:
      ema_params = optax.incremental_update(params, ema_params, 1.0 - ema_decay)
    metrics = dict(metrics, learning_rate=jnp.asarray(schedule(state.step), jnp.float32),
                   grad_norm=optax.tree.norm(grads), param_norm=optax.tree.norm(params))
    new_state = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                              opt_state=opt_state, ema_params=ema_params)
    return new_state, metrics

  return train_step


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
    values["weight"] = jnp.asarray(batch["mask"], jnp.float32) if "mask" in batch else jnp.ones(
        x.shape[:1], jnp.float32)
    return values

  return eval_step
