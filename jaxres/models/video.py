"""Video ResNets exact to torchvision.models.video: R3D, MC3 and R(2+1)D (Tran et al. 2018).

Input clips are channels-last `[B, T, H, W, 3]`; output logits `[B, num_classes]`. The layouts,
initialisations and BatchNorm semantics match torchvision, so converted torchvision weights give
the same outputs (see `jaxres.convert`).

Example:
  >>> model = r2plus1d_18(num_classes=400)
  >>> variables = model.init(jax.random.key(0), jnp.zeros((1, 16, 112, 112, 3)), train=False)
  >>> logits = model.apply(variables, clips, train=False)
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxres.models.blocks import BasicBlock, Conv2Plus1D, ModuleDef, is_bottleneck
from jaxres.models.conv import Conv
from jaxres.models.layers import LayerFactories, layer_factories


@dataclasses.dataclass(frozen=True)
class ConvBuilder:
  """How one stage builds its blocks' main convolution (torchvision's `conv_builder`).

  Attributes:
    kernel_size: (t, h, w) of a full conv; ignored when `factorised`.
    temporal_stride: whether the stage's stride also applies to time.
    factorised: build (2+1)D units instead of one 3D conv.
  """

  kernel_size: tuple[int, int, int] = (3, 3, 3)
  temporal_stride: bool = True
  factorised: bool = False

  def strides(self, stride: int) -> tuple[int, int, int]:
    return (stride if self.temporal_stride else 1, stride, stride)

  def unit(
    self, in_features: int, features: int, conv: ModuleDef, norm: ModuleDef, act: Callable
  ) -> ModuleDef:
    """The conv factory for a block from `in_features` to `features` channels."""
    if self.factorised:
      # torchvision computes the width once per block, from the block's input width.
      mid = (in_features * features * 27) // (in_features * 9 + 3 * features)
      return functools.partial(Conv2Plus1D, mid_features=mid, conv=conv, norm=norm, act=act)
    padding = tuple((k // 2, k // 2) for k in self.kernel_size)
    return functools.partial(conv, kernel_size=self.kernel_size, padding=padding)


CONV3D = ConvBuilder((3, 3, 3))
CONV3D_NO_TEMPORAL = ConvBuilder((1, 3, 3), temporal_stride=False)
CONV2PLUS1D = ConvBuilder(factorised=True)


class R3DStem(nn.Module):
  """conv 3x7x7 stride (1,2,2) -> BN -> ReLU (r3d, mc3)."""

  conv: ModuleDef
  norm: ModuleDef
  act: Callable = nn.relu
  features: int = 64

  @nn.compact
  def __call__(self, x):
    x = self.conv(
      self.features,
      kernel_size=(3, 7, 7),
      strides=(1, 2, 2),
      padding=((1, 1), (3, 3), (3, 3)),
      name="conv",
    )(x)
    return self.act(self.norm(name="bn")(x))


class R2Plus1DStem(nn.Module):
  """conv 1x7x7 stride (1,2,2) to 45 -> BN -> ReLU -> conv 3x1x1 to 64 -> BN -> ReLU (r2plus1d)."""

  conv: ModuleDef
  norm: ModuleDef
  act: Callable = nn.relu
  features: int = 64
  mid_features: int = 45

  @nn.compact
  def __call__(self, x):
    x = self.conv(
      self.mid_features,
      kernel_size=(1, 7, 7),
      strides=(1, 2, 2),
      padding=((0, 0), (3, 3), (3, 3)),
      name="conv1",
    )(x)
    x = self.act(self.norm(name="bn1")(x))
    x = self.conv(
      self.features, kernel_size=(3, 1, 1), padding=((1, 1), (0, 0), (0, 0)), name="conv2"
    )(x)
    return self.act(self.norm(name="bn2")(x))


class VideoResNet(nn.Module):
  """A video ResNet: stem -> 4 stages of residual blocks -> global average pool -> linear.

  Attributes:
    stage_sizes: blocks per stage, e.g. (2, 2, 2, 2) for 18 layers.
    conv_builders: one `ConvBuilder` per stage.
    stem_cls: `R3DStem` or `R2Plus1DStem`.
    block_cls: `BasicBlock` or `BottleneckBlock`.
    num_classes: width of the classifier.
    widths: stage widths (before the bottleneck expansion).
    zero_init_residual: the last BatchNorm scale of every residual branch starts at 0
      (torchvision's option of the same name, off in its video reference), so each block starts
      as the identity.
    dtype: compute dtype (e.g. jnp.bfloat16); parameters stay in `param_dtype`.
    param_dtype: parameter dtype.
    conv: the convolution module (any `nn.Conv`-compatible class: same `kernel` parameter); the
      default `jaxres.models.conv.Conv` lowers convolutions to fast matrix products on CPU.
    conv_lowering: pin every convolution to one of `jaxres.models.conv.LOWERINGS` (e.g. "native"
      where results must not depend on how the batch is split); None keeps `conv`'s default
      ("auto").
    bn_axis_name: pmap axis for BatchNorm statistics (None under jit, where arrays are global).

  `__call__(x, train)` returns logits. Intermediate features are sown into the "intermediates"
  collection as one dict "features" of `stem`, `stage1`..`stage4` and `pre_logits` (see
  `jaxres.models.features`).
  """

  stage_sizes: Sequence[int]
  conv_builders: Sequence[ConvBuilder]
  stem_cls: ModuleDef = R3DStem
  block_cls: ModuleDef = BasicBlock
  num_classes: int = 400
  widths: Sequence[int] = (64, 128, 256, 512)
  zero_init_residual: bool = False
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  conv: ModuleDef = Conv
  conv_lowering: str | None = None
  bn_axis_name: str | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    parts = layer_factories(self, train)
    x = jnp.asarray(x, self.dtype)
    x = self.stem_cls(conv=parts.conv, norm=parts.norm, name="stem")(x)
    feats = {"stem": x}
    for stage, num_blocks in enumerate(self.stage_sizes):
      for index in range(num_blocks):
        x = residual_block(
          self, parts, stage, index, x.shape[-1], name=f"layer{stage + 1}_{index}"
        )(x)
      feats[f"stage{stage + 1}"] = x
    x = jnp.mean(x, axis=(1, 2, 3))
    feats["pre_logits"] = x
    self.sow("intermediates", "features", feats)
    return nn.Dense(
      self.num_classes,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      kernel_init=nn.initializers.normal(0.01),
      name="fc",
    )(x)


def residual_block(
  model: VideoResNet,
  parts: LayerFactories,
  stage: int,
  index: int,
  in_features: int,
  name: str | None = None,
) -> nn.Module:
  """Block `index` of stage `stage` (both from 0) of `model`, taking `in_features` channels.

  The first block of every stage after the first has stride 2 (in time too where the stage's
  `ConvBuilder` says so); (2+1)D blocks size their middle width from `in_features`.

  Args:
    model: a `VideoResNet`.
    parts: `layer_factories(model, train)`.
    stage: stage number, 0 to `len(model.stage_sizes) - 1`.
    index: block number within the stage.
    in_features: the block's input channels.
    name: the submodule name (inside the model: "layer{stage + 1}_{index}").

  Returns:
    The block module (`model.block_cls`), unbound.

  Example:
    >>> model = r2plus1d_18()
    >>> block = residual_block(model, layer_factories(model, True), stage=1, index=0, in_features=64)
  """
  builder, width = model.conv_builders[stage], model.widths[stage]
  stride = 2 if stage > 0 and index == 0 else 1
  extra = {"pointwise": parts.pointwise} if is_bottleneck(model.block_cls) else {}
  if model.zero_init_residual:
    extra["zero_init_last_bn"] = True
  return model.block_cls(
    width,
    conv=builder.unit(in_features, width, parts.conv, parts.norm, nn.relu),
    norm=parts.norm,
    shortcut=parts.shortcut,
    strides=builder.strides(stride),
    name=name,
    **extra,
  )


_R3D = dict(conv_builders=(CONV3D,) * 4, stem_cls=R3DStem)
_MC3 = dict(conv_builders=(CONV3D,) + (CONV3D_NO_TEMPORAL,) * 3, stem_cls=R3DStem)
_R2PLUS1D = dict(conv_builders=(CONV2PLUS1D,) * 4, stem_cls=R2Plus1DStem)

r3d_18 = functools.partial(VideoResNet, stage_sizes=(2, 2, 2, 2), **_R3D)
r3d_34 = functools.partial(VideoResNet, stage_sizes=(3, 4, 6, 3), **_R3D)
mc3_18 = functools.partial(VideoResNet, stage_sizes=(2, 2, 2, 2), **_MC3)
mc3_34 = functools.partial(VideoResNet, stage_sizes=(3, 4, 6, 3), **_MC3)
r2plus1d_18 = functools.partial(VideoResNet, stage_sizes=(2, 2, 2, 2), **_R2PLUS1D)
r2plus1d_34 = functools.partial(VideoResNet, stage_sizes=(3, 4, 6, 3), **_R2PLUS1D)
# A tiny variant for tests and quick experiments: one block per stage, narrow.
r3d_tiny = functools.partial(
  VideoResNet,
  stage_sizes=(1, 1, 1, 1),
  widths=(8, 16, 32, 64),
  conv_builders=(CONV3D,) * 4,
  stem_cls=functools.partial(R3DStem, features=8),
)
