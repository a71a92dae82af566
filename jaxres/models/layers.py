"""The conv and norm factories that the residual networks hand to their blocks (torch semantics).

`layer_factories` builds them once at the top of a network from its `conv`, `dtype`,
`param_dtype`, `conv_lowering` and `bn_axis_name` fields; every video and image ResNet here uses it.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import flax.linen as nn

from jaxres.models.blocks import ModuleDef, ProjectionShortcut
from jaxres.models.norm import BatchNorm

# torch: kaiming_normal_(mode="fan_out", nonlinearity="relu"); flax's "normal" is not truncated.
conv_kernel_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def conv_factory(
  conv: Callable, *, dtype: Any, param_dtype: Any, lowering: str | None = None
) -> Callable:
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
  return functools.partial(
    conv,
    use_bias=False,
    dtype=dtype,
    param_dtype=param_dtype,
    kernel_init=conv_kernel_init,
    **extra,
  )


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
  return functools.partial(
    BatchNorm,
    use_running_average=not train,
    momentum=0.9,
    epsilon=1e-5,
    dtype=dtype,
    param_dtype=param_dtype,
    axis_name=axis_name,
  )


@dataclasses.dataclass(frozen=True)
class LayerFactories:
  """The module factories a network hands its stem and blocks (see `layer_factories`).

  Attributes:
    conv: `conv_factory` of the network's conv module.
    norm: `norm_factory` in the network's train/eval mode.
    pointwise: `conv` with a 1x..x1 kernel and no padding.
    shortcut: `ProjectionShortcut` built from `pointwise` and `norm`.
  """

  conv: ModuleDef
  norm: ModuleDef
  pointwise: ModuleDef
  shortcut: ModuleDef


def layer_factories(model: nn.Module, train: bool, *, dims: int = 3) -> LayerFactories:
  """The conv, norm, pointwise conv and projection-shortcut factories of `model` in train/eval mode.

  Args:
    model: a network with fields `conv`, `dtype`, `param_dtype`, `conv_lowering` and `bn_axis_name`
      (bound or not: only its fields are read).
    train: BatchNorm with batch statistics (True) or running averages (False).
    dims: spatial dimensions of the convolutions, for the pointwise kernel: 3 for clips, 2 for
      images.

  Returns:
    A `LayerFactories`; with `jaxres.models.video.residual_block` it rebuilds any of a
    `VideoResNet`'s pieces on its own (as `benchmarks/blocks.py` does to time them one by one).

  Example:
    >>> parts = layer_factories(r3d_18(), train=True)
    >>> stem = r3d_18().stem_cls(conv=parts.conv, norm=parts.norm)
  """
  conv = conv_factory(
    model.conv, dtype=model.dtype, param_dtype=model.param_dtype, lowering=model.conv_lowering
  )
  norm = norm_factory(
    train=train, dtype=model.dtype, param_dtype=model.param_dtype, axis_name=model.bn_axis_name
  )
  pointwise = functools.partial(conv, kernel_size=(1,) * dims, padding="VALID")
  return LayerFactories(
    conv, norm, pointwise, functools.partial(ProjectionShortcut, conv=pointwise, norm=norm)
  )
