"""The conv and norm factories that the residual networks hand to their blocks (torch semantics)."""

from __future__ import annotations

import functools
from typing import Any, Callable

import flax.linen as nn

from jaxres.models.norm import BatchNorm

# torch: kaiming_normal_(mode="fan_out", nonlinearity="relu"); flax's "normal" is not truncated.
conv_kernel_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def conv_factory(conv: Callable, *, dtype: Any, param_dtype: Any,
                 lowering: str | None = None) -> Callable:
  """`conv` without bias, with torchvision's initialiser and, if given, a fixed lowering.

  Args:
    conv: an `nn.Conv`-compatible module class (`jaxres.models.conv.Conv` by default in the models).
    dtype: compute dtype.
    param_dtype: parameter dtype.
    lowering: one of `jaxres.models.conv.LOWERINGS` to pin, or None for the module's own default
      (`conv` must then accept a `lowering` argument).

  Returns:
    A partial of `conv` that still takes `features`, `kernel_size`, `strides`, `padding`.

  Example:
    >>> conv = conv_factory(Conv, dtype=jnp.float32, param_dtype=jnp.float32, lowering="native")
    >>> y = conv(64, kernel_size=(3, 3, 3), padding=((1, 1),) * 3).init_with_output(key, x)[0]
  """
  extra = {} if lowering is None else {"lowering": lowering}
  return functools.partial(conv, use_bias=False, dtype=dtype, param_dtype=param_dtype,
                           kernel_init=conv_kernel_init, **extra)


def norm_factory(*, train: bool, dtype: Any, param_dtype: Any, axis_name: str | None) -> Callable:
  """torch-semantics `BatchNorm` (momentum 0.1 in torch's sense, eps 1e-5) for train or eval mode.

  Args:
    train: use batch statistics and update the running ones (else use the running ones).
    dtype: compute dtype.
    param_dtype: parameter dtype.
    axis_name: pmap axis over which batch statistics are averaged (None under jit).

  Returns:
    A partial of `BatchNorm` that takes the module's `name`.

  Example:
    >>> norm = norm_factory(train=True, dtype=jnp.float32, param_dtype=jnp.float32, axis_name=None)
  """
  return functools.partial(BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5,
                           dtype=dtype, param_dtype=param_dtype, axis_name=axis_name)
