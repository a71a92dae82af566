"""Batch normalisation with PyTorch's running-statistics semantics."""

from __future__ import annotations

from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

# The collection into which BatchNorm sows each call's batch mean and biased variance (in train
# mode, when the collection is mutable): what `jaxres.train.precise_bn` averages.
BATCH_MOMENTS = "batch_moments"


class BatchNorm(nn.Module):
  """BatchNorm over all axes but the last, matching `torch.nn.BatchNorm{1,2,3}d`.

  Differs from `flax.linen.BatchNorm` in one way that matters for parity: the running variance is
  updated with the *unbiased* batch variance (n / (n - 1)), as PyTorch does, while normalisation uses
  the biased one. Statistics are computed and stored in float32 for half-precision inputs and
  parameters, and in float64 where either is float64.

  Under `jax.jit` with global arrays the statistics are already global (cross-device). Under `jax.pmap`,
  set `axis_name` to average them over devices.

  In train mode each call also sows the batch's `mean` and biased `var` (those it normalises with)
  into the `BATCH_MOMENTS` collection, where that collection is mutable (and only there: training
  pays nothing); precise BatchNorm statistics are averaged from them.

  Attributes:
    use_running_average: normalise with the running statistics instead of the batch's.
    momentum: weight of the old running value (flax convention: torch momentum 0.1 -> 0.9).
    epsilon: added to the variance.
    dtype: compute dtype of the output (None: the input's).
    param_dtype: dtype of `scale` and `bias`.
    axis_name: pmap axis to average batch statistics over, or None.

  Example:
    >>> bn = BatchNorm(use_running_average=False)
    >>> y, updates = bn.apply(variables, x, mutable=["batch_stats"])
  """

  use_running_average: Optional[bool] = None
  momentum: float = 0.9
  epsilon: float = 1e-5
  dtype: Optional[Any] = None
  param_dtype: Any = jnp.float32
  scale_init: Callable = nn.initializers.ones
  bias_init: Callable = nn.initializers.zeros
  axis_name: Optional[str] = None

  @nn.compact
  def __call__(self, x: jax.Array, use_running_average: Optional[bool] = None) -> jax.Array:
    use_running_average = nn.merge_param(
      "use_running_average", self.use_running_average, use_running_average
    )
    features = x.shape[-1]
    stats_dtype = jnp.promote_types(jnp.promote_types(x.dtype, self.param_dtype), jnp.float32)
    running_mean = self.variable("batch_stats", "mean", jnp.zeros, (features,), stats_dtype)
    running_var = self.variable("batch_stats", "var", jnp.ones, (features,), stats_dtype)
    scale = self.param("scale", self.scale_init, (features,), self.param_dtype)
    bias = self.param("bias", self.bias_init, (features,), self.param_dtype)

    if use_running_average:
      mean, var = running_mean.value, running_var.value
    else:
      axes = tuple(range(x.ndim - 1))
      x_stats = x.astype(stats_dtype)
      mean = jnp.mean(x_stats, axes)
      if self.axis_name is not None:
        mean = lax.pmean(mean, self.axis_name)
      # Two passes (mean, then centred second moment) for the precision torch has.
      var = jnp.mean(jnp.square(x_stats - mean), axes)
      count = x.size // features
      if self.axis_name is not None:
        var = lax.pmean(var, self.axis_name)
        count *= lax.psum(1, self.axis_name)
      if not self.is_initializing():
        self.sow(BATCH_MOMENTS, "mean", mean)
        self.sow(BATCH_MOMENTS, "var", var)
        unbiased = var * (count / jnp.maximum(count - 1, 1))
        running_mean.value = self.momentum * running_mean.value + (1 - self.momentum) * mean
        running_var.value = self.momentum * running_var.value + (1 - self.momentum) * unbiased

    dtype = self.dtype or x.dtype
    # y = (x - mean) * scale / sqrt(var + eps) + bias, folded into one multiply-add per element.
    multiplier = scale.astype(stats_dtype) * lax.rsqrt(var + self.epsilon)
    offset = bias.astype(stats_dtype) - mean * multiplier
    return x.astype(dtype) * multiplier.astype(dtype) + offset.astype(dtype)
