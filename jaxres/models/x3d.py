"""X3D (Feichtenhofer 2020), exact to PyTorchVideo 0.1.5's `create_x3d` / `hub.x3d_{xs,s,m,l}`.

A ResNet of inverted bottlenecks: pointwise expand -> depthwise 3x3x3 (strided) -> squeeze-excitation
on every other block -> swish -> pointwise project; a (1x3x3, depthwise 5x1x1) stem; a head that
expands to 432 channels, pools, projects to 2048 with ReLU, drops out and classifies. The four sizes
share their widths (so x3d_xs, x3d_s and x3d_m have the same 3,794,274 parameters with 400 classes)
and differ in the clip they are trained on (frames x crop: XS 4x160, S 13x160, M 16x224, L 16x312)
and, for L, in depth.

One difference from PyTorchVideo, by design: its head averages with a fixed-size window sized for the
default clip (stride 1), then applies the 2048-wide projection and ReLU at every window position and
averages the logits. Here the head pools globally. At the default clip (and at any input where the
window covers the whole final feature map, e.g. 4x32x32 for a 4x32 model) the two are the same
function; at other sizes PyTorchVideo's result depends on the clip it was built for, jaxres' does not.

Input clips are channels-last `[B, T, H, W, 3]`; the output is logits (PyTorchVideo's hub models end
with a softmax, `head_activation`; `jax.nn.softmax` of these logits gives its output).

Example:
  >>> model = x3d_m(num_classes=400)
  >>> variables = model.init(jax.random.key(0), jnp.zeros((1, 16, 224, 224, 3)), train=False)
  >>> logits = model.apply(variables, clips, train=False)
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxres.models.blocks import ModuleDef
from jaxres.models.conv import Conv, depthwise_conv
from jaxres.models.layers import conv_kernel_init, layer_factories


def round_width(width: float, multiplier: float, min_width: int = 8, divisor: int = 8) -> int:
  """PyTorchVideo's `round_width`: `width * multiplier` to a multiple of `divisor`, at least 90%."""
  if not multiplier:
    return int(width)
  width *= multiplier
  out = max(min_width or divisor, int(width + divisor / 2) // divisor * divisor)
  if out < 0.9 * width:
    out += divisor
  return int(out)


def round_repeats(repeats: int, multiplier: float) -> int:
  """PyTorchVideo's `round_repeats`: `ceil(repeats * multiplier)`."""
  return int(math.ceil(multiplier * repeats)) if multiplier else repeats


class DepthwiseConv(nn.Module):
  """A depthwise (one filter per channel) convolution with `nn.Conv`'s grouped parameter layout.

  `kernel` has shape `kernel_size + (1, features)`, as `nn.Conv(feature_group_count=features)`
  makes it. Lowered as `jaxres.models.conv.depthwise_conv` (a sum of strided taps; XLA's CPU grouped
  convolution is about 100x slower) on CPU, and as XLA's grouped convolution
  (`lax.conv_general_dilated` with `feature_group_count`) elsewhere or with `lowering="native"`.

  Attributes:
    features: channels in and out.
    kernel_size: one extent per spatial axis.
    strides: int or one per spatial axis.
    padding: one (low, high) pair per spatial axis.
    dtype, param_dtype, kernel_init: as `nn.Conv`.
    lowering: "native" for XLA's grouped convolution; anything else ("auto") picks by backend.

  Example:
    >>> y = DepthwiseConv(54, (3, 3, 3), padding=((1, 1),) * 3).init_with_output(key, x)[0]
  """

  features: int
  kernel_size: Sequence[int]
  strides: int | Sequence[int] = 1
  padding: Sequence[tuple[int, int]] = ()
  dtype: Any = None
  param_dtype: Any = jnp.float32
  kernel_init: Callable = conv_kernel_init
  lowering: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if x.shape[-1] != self.features:
      raise ValueError(f"A depthwise conv of {self.features} channels got {x.shape[-1]}.")
    spatial = len(self.kernel_size)
    kernel = self.param(
      "kernel", self.kernel_init, tuple(self.kernel_size) + (1, self.features), self.param_dtype
    )
    x, kernel = nn.dtypes.promote_dtype(x, kernel, dtype=self.dtype)
    strides = (self.strides,) * spatial if isinstance(self.strides, int) else tuple(self.strides)
    padding = tuple(tuple(p) for p in self.padding)
    if self.lowering != "native" and jax.default_backend() == "cpu":
      return depthwise_conv(x, kernel, strides, padding)
    letters = "DHW"[-spatial:]
    return lax.conv_general_dilated(
      x,
      kernel,
      strides,
      padding,
      dimension_numbers=("N" + letters + "C", letters + "IO", "N" + letters + "C"),
      feature_group_count=self.features,
    )


class SqueezeExcitation(nn.Module):
  """x * sigmoid(expand(relu(reduce(mean(x))))) with biased 1x1x1 convs (fvcore's 3D SE block).

  Attributes:
    reduced: width of the bottleneck.
    pointwise: 1x1x1 conv factory; called with `use_bias=True`.
  """

  reduced: int
  pointwise: ModuleDef

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    s = jnp.mean(x, axis=tuple(range(1, x.ndim - 1)), keepdims=True)
    s = nn.relu(self.pointwise(self.reduced, use_bias=True, name="reduce")(s))
    s = nn.sigmoid(self.pointwise(x.shape[-1], use_bias=True, name="expand")(s))
    return x * s


class X3DStem(nn.Module):
  """conv 1x3x3 stride (1,2,2) -> depthwise conv 5x1x1 -> BN -> ReLU."""

  features: int
  conv: ModuleDef
  depthwise: ModuleDef
  norm: ModuleDef
  act: Callable = nn.relu
  kernel_size: tuple[int, int, int] = (5, 3, 3)
  strides: tuple[int, int, int] = (1, 2, 2)

  @nn.compact
  def __call__(self, x):
    kt, kh, kw = self.kernel_size
    x = self.conv(
      self.features,
      kernel_size=(1, kh, kw),
      strides=(1,) + tuple(self.strides[1:]),
      padding=((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2)),
      name="conv_xy",
    )(x)
    x = self.depthwise(
      self.features,
      kernel_size=(kt, 1, 1),
      strides=(self.strides[0], 1, 1),
      padding=((kt // 2, kt // 2), (0, 0), (0, 0)),
      name="conv_t",
    )(x)
    return self.act(self.norm(name="bn")(x))


class X3DBlock(nn.Module):
  """X3D's residual block: 1x1x1 -> BN -> ReLU -> depthwise 3x3x3 (strided) -> BN -> [SE] ->
  swish -> 1x1x1 -> BN, plus the shortcut, then ReLU.

  The shortcut is a strided 1x1x1 conv when the block changes width or resolution, followed by BN
  only when the width changes (PyTorchVideo's `create_x3d_res_block`: X3D's first block, 24 -> 24
  channels at stride 2, has a conv shortcut without BN).

  Attributes:
    features: output width.
    inner_features: width of the depthwise conv.
    pointwise: 1x1x1 conv factory, `pointwise(features, strides=..., name=...)`.
    depthwise: depthwise conv factory, `depthwise(features, kernel_size=..., strides=...,
      padding=..., name=...)`.
    norm: normalisation factory.
    se_features: width of the squeeze-excitation bottleneck; 0 for none.
    strides: of the depthwise conv and the shortcut.
    kernel_size: of the depthwise conv.
    act: activation after the first conv and after the sum.
    inner_act: activation after the depthwise conv (and SE).
    zero_init_last_bn: `bn3`'s scale starts at 0, so the block starts as `act(shortcut(x))`.
  """

  features: int
  inner_features: int
  pointwise: ModuleDef
  depthwise: ModuleDef
  norm: ModuleDef
  se_features: int = 0
  strides: tuple[int, int, int] = (1, 1, 1)
  kernel_size: tuple[int, int, int] = (3, 3, 3)
  act: Callable = nn.relu
  inner_act: Callable = nn.swish
  zero_init_last_bn: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = self.pointwise(self.inner_features, name="conv1")(x)
    y = self.act(self.norm(name="bn1")(y))
    y = self.depthwise(
      self.inner_features,
      kernel_size=self.kernel_size,
      strides=self.strides,
      padding=tuple((k // 2, k // 2) for k in self.kernel_size),
      name="conv2",
    )(y)
    y = self.norm(name="bn2")(y)
    if self.se_features:
      y = SqueezeExcitation(self.se_features, self.pointwise, name="se")(y)
    y = self.inner_act(y)
    y = self.pointwise(self.features, name="conv3")(y)
    y = self.norm(
      name="bn3", **({"scale_init": nn.initializers.zeros} if self.zero_init_last_bn else {})
    )(y)
    residual = x
    changes_width = x.shape[-1] != self.features
    if changes_width or any(s != 1 for s in self.strides):
      residual = self.pointwise(self.features, strides=self.strides, name="downsample_conv")(x)
      if changes_width:
        residual = self.norm(name="downsample_bn")(residual)
    return self.act(residual + y)


class X3DHead(nn.Module):
  """1x1x1 conv -> BN -> ReLU -> global average pool -> 1x1x1 conv (no bias) -> ReLU -> dropout
  -> linear (PyTorchVideo's `create_x3d_head` without its final softmax; see the module docstring
  for the pooling)."""

  num_classes: int
  inner_features: int
  features: int
  pointwise: ModuleDef
  norm: ModuleDef
  dense: ModuleDef
  dropout_rate: float = 0.5
  act: Callable = nn.relu

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> tuple[jax.Array, jax.Array]:
    x = self.pointwise(self.inner_features, name="pre_conv")(x)
    x = self.act(self.norm(name="pre_bn")(x))
    x = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
    x = self.act(self.pointwise(self.features, name="post_conv")(x))
    x = x.reshape(x.shape[0], -1)
    pre_logits = x
    # Dropout needs a "dropout" rng (jaxres' train step passes one); without one it is skipped,
    # so that `apply(..., train=True)` gives batch-statistics outputs as the other models do.
    if train and self.dropout_rate > 0 and self.has_rng("dropout"):
      x = nn.Dropout(self.dropout_rate, deterministic=False)(x)
    return self.dense(self.num_classes, name="fc")(x), pre_logits


class X3D(nn.Module):
  """X3D: stem -> 4 stages of `X3DBlock`s -> `X3DHead`.

  Attributes:
    num_classes: width of the classifier.
    depth_factor: stage depths are ceil((1, 2, 5, 3) x depth_factor): 2.2 for XS/S/M, 5.0 for L.
    width_factor: channel multiplier of the stem and stages (2.0).
    bottleneck_factor: inner (depthwise) width over block width (2.25).
    stem_features: stem width before `width_factor` (12 -> 24).
    se_ratio: squeeze-excitation width over the inner width, on blocks 0, 2, 4, ... of each stage.
    head_features: width of the head's last projection (2048).
    dropout_rate: before the classifier, in train mode (with a "dropout" rng).
    zero_init_residual: every block's last BatchNorm scale starts at 0 (PySlowFast's
      `RESNET.ZERO_INIT_FINAL_BN`, on in its X3D recipes).
    dtype, param_dtype, conv, conv_lowering, bn_axis_name: as in `VideoResNet` (`conv` makes the
      dense convolutions; depthwise ones are `depthwise`, `DepthwiseConv`, which
      `conv_lowering="native"` also pins to XLA's convolution).
    depthwise: the depthwise convolution module.

  `__call__(x, train)` returns logits; features are sown into "intermediates" as in `VideoResNet`
  (`stem`, `stage1`..`stage4`, `pre_logits`: the 2048 features before dropout and classifier).
  """

  num_classes: int = 400
  depth_factor: float = 2.2
  width_factor: float = 2.0
  bottleneck_factor: float = 2.25
  stem_features: int = 12
  se_ratio: float = 0.0625
  head_features: int = 2048
  dropout_rate: float = 0.5
  zero_init_residual: bool = False
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  conv: ModuleDef = Conv
  depthwise: ModuleDef = DepthwiseConv
  conv_lowering: str | None = None
  bn_axis_name: str | None = None

  def stage_plan(self) -> list[tuple[int, int, int]]:
    """(depth, width, inner width) of each stage; x3d_m: (3, 24, 54), (5, 48, 108), (11, 96, 216),
    (7, 192, 432)."""
    dims = [self.stem_features]
    for _ in range(3):
      dims.append(round_width(dims[-1], 2.0))
    plan = []
    for depth, dim in zip((1, 2, 5, 3), dims):
      width = round_width(dim, self.width_factor)
      plan.append(
        (round_repeats(depth, self.depth_factor), width, int(self.bottleneck_factor * width))
      )
    return plan

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    parts = layer_factories(self, train)
    conv, norm, pointwise = parts.conv, parts.norm, parts.pointwise
    depthwise = functools.partial(self.depthwise, dtype=self.dtype, param_dtype=self.param_dtype)
    if self.conv_lowering == "native":
      depthwise = functools.partial(depthwise, lowering="native")
    dense = functools.partial(
      nn.Dense,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      kernel_init=nn.initializers.normal(0.01),
    )

    x = jnp.asarray(x, self.dtype)
    x = X3DStem(
      round_width(self.stem_features, self.width_factor),
      conv=conv,
      depthwise=depthwise,
      norm=norm,
      name="stem",
    )(x)
    feats = {"stem": x}
    for stage, (depth, width, inner) in enumerate(self.stage_plan()):
      for index in range(depth):
        se = round_width(inner, self.se_ratio) if self.se_ratio and index % 2 == 0 else 0
        x = X3DBlock(
          width,
          inner,
          pointwise=pointwise,
          depthwise=depthwise,
          norm=norm,
          se_features=se,
          strides=(1, 2, 2) if index == 0 else (1, 1, 1),
          zero_init_last_bn=self.zero_init_residual,
          name=f"layer{stage + 1}_{index}",
        )(x)
      feats[f"stage{stage + 1}"] = x
    logits, feats["pre_logits"] = X3DHead(
      self.num_classes,
      inner,
      self.head_features,
      pointwise=pointwise,
      norm=norm,
      dense=dense,
      dropout_rate=self.dropout_rate,
      name="head",
    )(x, train)
    self.sow("intermediates", "features", feats)
    return logits


x3d_xs = functools.partial(X3D, depth_factor=2.2)
x3d_s = functools.partial(X3D, depth_factor=2.2)
x3d_m = functools.partial(X3D, depth_factor=2.2)
x3d_l = functools.partial(X3D, depth_factor=5.0)
# The default clip of each size (frames, sampling stride, crop), as PyTorchVideo's model zoo
# trains and evaluates them (hub/x3d.py: input_clip_length, input_crop_size; the Kinetics
# configs: 4x12, 13x6, 16x5, 16x5).
CLIPS = {
  "x3d_xs": (4, 12, 160),
  "x3d_s": (13, 6, 160),
  "x3d_m": (16, 5, 224),
  "x3d_l": (16, 5, 312),
}
