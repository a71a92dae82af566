"""Analytic multiply-add counts, from shapes alone (nothing is computed)."""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def count_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
  """Multiply-adds of one forward pass of `model` on an input of `input_shape`.

  Counts every layer with a `kernel` parameter (convolutions, grouped and depthwise ones included,
  and dense layers) as output positions x kernel size, the convention torchvision uses for its
  "GFLOPS" figures
  (BatchNorm, activations, pooling and additions are not counted). Shapes are traced with
  `jax.eval_shape`, so this is instant even for large models.

  Args:
    model: a flax module called as `model(x, train=False)`.
    input_shape: e.g. (1, 16, 112, 112, 3) for one clip.

  Returns:
    The count, an int.

  Example:
    >>> count_macs(jaxres.models.get("r3d_18"), (1, 16, 112, 112, 3)) / 1e9   # 40.697...
  """
  total = 0

  def interceptor(next_fun, args, kwargs, context):
    nonlocal total
    out = next_fun(*args, **kwargs)
    if context.method_name == "__call__":
      params = context.module.variables.get("params", {})
      kernel = params.get("kernel") if hasattr(params, "get") else None
      if kernel is not None and hasattr(out, "shape"):
        # A grouped kernel is `k + (in / groups, out)` (flax's layout), so its size is already the
        # multiply-adds per output position, grouped or not.
        total += math.prod(out.shape[:-1]) * math.prod(kernel.shape)
    return out

  x = jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32)
  with nn.intercept_methods(interceptor):
    jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
  return total


def count_params(params) -> int:
  """Number of scalars in a parameter tree (arrays or ShapeDtypeStructs)."""
  return sum(math.prod(p.shape) for p in jax.tree_util.tree_leaves(params))
