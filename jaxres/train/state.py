"""The training state: a plain pytree, saved and restored whole."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
  """Everything that changes during training.

  Attributes:
    step: int32 scalar, the number of updates applied.
    params: model parameters (float32, whatever the compute dtype).
    batch_stats: BatchNorm running statistics (float32; `{}` for models without BatchNorm).
    opt_state: the optax state.
    ema_params: exponential moving average of `params`, or None when EMA is off.
  """

  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  ema_params: Any = None

  @property
  def variables(self) -> dict[str, Any]:
    """`{"params", "batch_stats"}` for `model.apply` (the EMA parameters when there are any)."""
    params = self.params if self.ema_params is None else self.ema_params
    return {"params": params, "batch_stats": self.batch_stats}


def init_state(
  model, tx: optax.GradientTransformation, rng: jax.Array, input_shape, *, ema: bool = False
) -> TrainState:
  """A fresh state (call under `jax.jit` with `out_shardings`, or `jax.eval_shape` for its shapes).

  Args:
    model: the flax module.
    tx: the optimiser.
    rng: PRNG key of the parameter initialisation.
    input_shape: shape of one model input; only its non-batch dimensions matter.
    ema: keep an EMA copy of the parameters.

  Returns:
    The `TrainState` at step 0.

  Example:
    >>> abstract = jax.eval_shape(lambda k: init_state(model, tx, k, (1, 8, 32, 32, 3)), key)
  """
  x = jnp.zeros((1, *tuple(input_shape)[1:]), jnp.float32)
  variables = model.init(rng, x, train=False)
  params = variables["params"]
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    params=params,
    batch_stats=variables.get("batch_stats", {}),
    opt_state=tx.init(params),
    ema_params=params if ema else None,
  )
