"""2D ResNets: torchvision's ImageNet ResNets (v1.5) and the CIFAR ResNets of He et al. (2015).

Images are `[B, H, W, 3]`. Given clips `[B, T, H, W, 3]` the same network runs per frame and averages
the pooled features over time before the classifier (TSN-style consensus; averaging features before a
linear layer equals averaging the per-frame logits), so ImageNet weights converted from torchvision
start a per-frame video baseline with the very same parameter tree.

Example:
  >>> model = resnet50(num_classes=1000)
  >>> variables = model.init(jax.random.key(0), jnp.zeros((1, 224, 224, 3)), train=False)
  >>> logits = model.apply(variables, images, train=False)
"""

from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxres.models.blocks import (
  BasicBlock,
  BottleneckBlock,
  ModuleDef,
  ProjectionShortcut,
  ZeroPadShortcut,
  is_bottleneck,
)
from jaxres.models.conv import Conv
from jaxres.models.layers import layer_factories
from jaxres.models.pool import max_pool
from jaxres.models.shift import temporal_shift


def _torch_linear_bias_init(fan_in: int):
  """torch.nn.Linear's default bias init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  bound = 1.0 / math.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


class ImageNetStem(nn.Module):
  """conv 7x7 stride 2 -> BN -> ReLU -> max-pool 3x3 stride 2."""

  conv: ModuleDef
  norm: ModuleDef
  features: int = 64

  @nn.compact
  def __call__(self, x):
    x = self.conv(
      self.features, kernel_size=(7, 7), strides=(2, 2), padding=((3, 3), (3, 3)), name="conv"
    )(x)
    x = nn.relu(self.norm(name="bn")(x))
    # Padding of a max-pool is -inf in flax, as in torch.
    return max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))


class CifarStem(nn.Module):
  """conv 3x3 -> BN -> ReLU, no pooling (32x32 inputs)."""

  conv: ModuleDef
  norm: ModuleDef
  features: int = 16

  @nn.compact
  def __call__(self, x):
    x = self.conv(self.features, kernel_size=(3, 3), padding=((1, 1), (1, 1)), name="conv")(x)
    return nn.relu(self.norm(name="bn")(x))


class ResNet(nn.Module):
  """A 2D ResNet, applied per frame when given clips.

  Attributes:
    stage_sizes: blocks per stage.
    block_cls: `BasicBlock` or `BottleneckBlock`.
    num_classes: width of the classifier.
    widths: stage widths (before the bottleneck expansion); the first stage has stride 1, others 2.
    stem_cls: `ImageNetStem` or `CifarStem`.
    shortcut_cls: `ProjectionShortcut` (torchvision) or `ZeroPadShortcut` (CIFAR "option A").
    shift_div: clips only: TSM's temporal shift (`jaxres.models.shift.temporal_shift`) of
      1/shift_div of the channels each way before the first conv of every block's residual branch
      (MMAction2's "blockres" placement); 0 for none.
    dropout_rate: clips only: dropout of each frame's pooled features before the classifier, in
      train mode with a "dropout" rng (skipped without one); MMAction2's TSM head uses 0.5.
    zero_init_residual: the last BatchNorm scale of every residual branch starts at 0
      (torchvision's option of the same name), so each block starts as the identity.
    dtype, param_dtype, conv, conv_lowering, bn_axis_name: as in `VideoResNet`.

  Intermediate features are sown into "intermediates" as a dict "features" (`stem`, `stage1`..,
  `pre_logits`); for clips they are per frame, `[B * T, ...]`, except `pre_logits` which is averaged over time.
  """

  stage_sizes: Sequence[int]
  block_cls: ModuleDef = BasicBlock
  num_classes: int = 1000
  widths: Sequence[int] = (64, 128, 256, 512)
  stem_cls: ModuleDef = ImageNetStem
  shortcut_cls: ModuleDef = ProjectionShortcut
  shift_div: int = 0
  dropout_rate: float = 0.0
  zero_init_residual: bool = False
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  conv: ModuleDef = Conv
  conv_lowering: str | None = None
  bn_axis_name: str | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    parts = layer_factories(self, train, dims=2)
    conv, norm, pointwise = parts.conv, parts.norm, parts.pointwise
    conv3x3 = functools.partial(conv, kernel_size=(3, 3), padding=((1, 1), (1, 1)))
    shortcut = parts.shortcut if self.shortcut_cls is ProjectionShortcut else self.shortcut_cls

    frames, shift = None, None
    if x.ndim == 5:  # clips: fold time into the batch
      frames = x.shape[1]
      x = x.reshape((-1,) + x.shape[2:])
      if self.shift_div:
        shift = functools.partial(temporal_shift, num_segments=frames, shift_div=self.shift_div)
    x = jnp.asarray(x, self.dtype)
    x = self.stem_cls(conv=conv, norm=norm, name="stem")(x)
    feats = {"stem": x}
    for i, (num_blocks, width) in enumerate(zip(self.stage_sizes, self.widths)):
      for j in range(num_blocks):
        stride = 2 if i > 0 and j == 0 else 1
        extra = {"pointwise": pointwise} if is_bottleneck(self.block_cls) else {}
        if self.zero_init_residual:
          extra["zero_init_last_bn"] = True
        if shift is not None:
          extra["shift"] = shift
        x = self.block_cls(
          width,
          conv=conv3x3,
          norm=norm,
          shortcut=shortcut,
          strides=(stride, stride),
          name=f"layer{i + 1}_{j}",
          **extra,
        )(x)
      feats[f"stage{i + 1}"] = x
    x = jnp.mean(x, axis=(1, 2))
    if frames is not None:
      # Per-frame dropout, then the frames' average: MMAction2's TSM head drops out each frame's
      # features and averages the frames' logits, the same as the logits of the average.
      if train and self.dropout_rate > 0 and self.has_rng("dropout"):
        x = nn.Dropout(self.dropout_rate, deterministic=False)(x)
      x = jnp.mean(x.reshape(-1, frames, x.shape[-1]), axis=1)
    feats["pre_logits"] = x
    self.sow("intermediates", "features", feats)
    return nn.Dense(
      self.num_classes,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      kernel_init=nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform"),
      bias_init=_torch_linear_bias_init(x.shape[-1]),
      name="fc",
    )(x)


resnet18 = functools.partial(ResNet, stage_sizes=(2, 2, 2, 2), block_cls=BasicBlock)
resnet34 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block_cls=BasicBlock)
resnet50 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block_cls=BottleneckBlock)
resnet101 = functools.partial(ResNet, stage_sizes=(3, 4, 23, 3), block_cls=BottleneckBlock)
resnet152 = functools.partial(ResNet, stage_sizes=(3, 8, 36, 3), block_cls=BottleneckBlock)
# TSM (Lin et al. 2019) on ResNet-50 as MMAction2 builds it (ResNetTSM, shift_div 8, "blockres";
# TSMHead: dropout 0.5, average consensus): resnet50's parameters, so ImageNet weights load as they are.
tsm_r50 = functools.partial(resnet50, shift_div=8, dropout_rate=0.5, num_classes=400)


def cifar_resnet(depth: int, **kwargs) -> ResNet:
  """He et al.'s CIFAR ResNet of `depth` = 6n + 2 layers: 3 stages of n basic blocks, 16/32/64 wide.

  Args:
    depth: 20, 32, 44, 56, 110, ... (any 6n + 2).
    **kwargs: other `ResNet` fields (num_classes defaults to 10).

  Returns:
    The module.

  Example:
    >>> model = cifar_resnet(20)  # about 0.27M parameters
  """
  if depth < 8 or (depth - 2) % 6:
    raise ValueError(f"CIFAR ResNet depth must be 6n + 2 (20, 32, 44, 56, 110, ...), got {depth}.")
  n = (depth - 2) // 6
  kwargs.setdefault("num_classes", 10)
  return ResNet(
    stage_sizes=(n, n, n),
    block_cls=BasicBlock,
    widths=(16, 32, 64),
    stem_cls=CifarStem,
    shortcut_cls=ZeroPadShortcut,
    **kwargs,
  )


resnet20 = functools.partial(cifar_resnet, 20)
resnet32 = functools.partial(cifar_resnet, 32)
resnet44 = functools.partial(cifar_resnet, 44)
resnet56 = functools.partial(cifar_resnet, 56)
resnet110 = functools.partial(cifar_resnet, 110)
