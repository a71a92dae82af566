"""PyTorchVideo's ResNet family, exact to pytorchvideo 0.1.5: Slow, C2D, I3D, CSN and R(2+1)D-50.

All are one builder, `PVResNet` (PyTorchVideo's `create_resnet` / `create_csn` /
`create_r2plus1d`): a stem conv (kt x 7 x 7, stride (1, 2, 2)) -> BN -> ReLU -> optional 1x3x3
max-pool, four stages of bottleneck blocks `conv_a` (kt x 1 x 1, temporal stride) -> `conv_b`
(spatial, strided; grouped for CSN, a (2+1)D unit for R(2+1)D) -> `conv_c` (1x1x1), an optional
2x1x1 max-pool after stage 1 (C2D, I3D), then the head: dropout -> average pool -> linear.

Input clips are channels-last `[B, T, H, W, 3]`; output logits `[B, num_classes]`. Weights of
PyTorchVideo's model zoo convert with `jaxres.convert.from_pytorchvideo`.

Two deliberate differences from PyTorchVideo's modules, both invisible at the default clip:
  - The head averages over all positions (global average pool). PyTorchVideo's head pools with a
    fixed kernel sized for the default clip (e.g. (8, 7, 7) for slow_r50 at 8x224x224), then
    averages the per-window logits: the same numbers when the last feature map is the kernel's size,
    a position-weighted average on larger clips, and an error on smaller ones. `head_pool` set to
    that kernel (`PYTORCHVIDEO_HEAD_POOL[name]`) reproduces PyTorchVideo at every size it accepts.
  - `r2plus1d_r50` returns logits: PyTorchVideo's hub model ends with a softmax over classes
    (`head_activation=nn.Softmax`), which a classifier trained with cross-entropy must not have.
    `jax.nn.softmax(logits)` gives its output at the default clip.

Example:
  >>> model = slow_r50(num_classes=400)
  >>> variables = model.init(jax.random.key(0), jnp.zeros((1, 8, 224, 224, 3)), train=False)
  >>> logits = model.apply(variables, clips, train=False)
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxres.models.blocks import ModuleDef, ProjectionShortcut
from jaxres.models.conv import Conv
from jaxres.models.layers import layer_factories
from jaxres.models.pool import max_pool

Kernel = tuple[int, int, int]
_STAGE_DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


def _same_padding(kernel: Sequence[int]) -> tuple[tuple[int, int], ...]:
  return tuple((k // 2, k // 2) for k in kernel)


class PVConv2Plus1D(nn.Module):
  """PyTorchVideo's `Conv2plus1d` as R(2+1)D-50 uses it: temporal conv first.

  conv_t (kt x 1 x 1, temporal stride) -> norm -> act -> conv_xy (1 x k x k, spatial stride), both
  `features` wide (PyTorchVideo's `inner_channels` defaults to the output width).

  Attributes:
    features: output (and inner) width.
    kernel_size: (kt, kh, kw) of the 3D conv it stands in for.
    strides: (st, sh, sw).
    conv: convolution factory (`conv(features, kernel_size=, strides=, padding=, name=)`).
    norm: normalisation factory.
    act: activation.
  """

  features: int
  kernel_size: Kernel
  strides: Kernel
  conv: ModuleDef
  norm: ModuleDef
  act: Callable = nn.relu

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kt, kh, kw = self.kernel_size
    st, sh, sw = self.strides
    x = self.conv(
      self.features,
      kernel_size=(kt, 1, 1),
      strides=(st, 1, 1),
      padding=_same_padding((kt, 1, 1)),
      name="conv_t",
    )(x)
    x = self.act(self.norm(name="norm")(x))
    return self.conv(
      self.features,
      kernel_size=(1, kh, kw),
      strides=(1, sh, sw),
      padding=_same_padding((1, kh, kw)),
      name="conv_xy",
    )(x)


class PVBottleneck(nn.Module):
  """PyTorchVideo's residual bottleneck block (`create_res_block` with `create_bottleneck_block`).

  conv_a (`kernel_a`, stride (st, 1, 1)) -> BN -> ReLU -> conv_b (`kernel_b`, stride (1|st, sh, sw),
  `groups`) -> BN -> ReLU -> conv_c (1x1x1) -> BN, added to the input (or to a strided 1x1x1 conv +
  BN of it when the width or resolution changes), then ReLU.

  Attributes:
    features: output width (`dim_out`).
    inner_features: bottleneck width (`dim_inner`).
    kernel_a: conv_a's kernel.
    kernel_b: conv_b's kernel.
    stride_a: conv_a's stride.
    stride_b: conv_b's stride. The shortcut's stride is their product, as in PyTorchVideo.
    groups: conv_b's groups (`inner_features` for CSN's depthwise conv).
    factorised: conv_b is a (2+1)D unit (`PVConv2Plus1D`) instead of one 3D conv.
    conv: convolution factory.
    norm: normalisation factory.
    act: activation.
    zero_init_last_bn: the scale of `norm_c` starts at 0, so the block starts as
      `act(shortcut(x))` (PyTorchVideo's default; PySlowFast's `RESNET.ZERO_INIT_FINAL_BN`).
  """

  features: int
  inner_features: int
  kernel_a: Kernel
  kernel_b: Kernel
  stride_a: Kernel
  stride_b: Kernel
  conv: ModuleDef
  norm: ModuleDef
  groups: int = 1
  factorised: bool = False
  act: Callable = nn.relu
  zero_init_last_bn: bool = True

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = self.conv(
      self.inner_features,
      kernel_size=self.kernel_a,
      strides=self.stride_a,
      padding=_same_padding(self.kernel_a),
      name="conv_a",
    )(x)
    y = self.act(self.norm(name="norm_a")(y))
    if self.factorised:
      y = PVConv2Plus1D(
        self.inner_features,
        self.kernel_b,
        self.stride_b,
        conv=self.conv,
        norm=self.norm,
        act=self.act,
        name="conv_b",
      )(y)
    else:
      y = self.conv(
        self.inner_features,
        kernel_size=self.kernel_b,
        strides=self.stride_b,
        padding=_same_padding(self.kernel_b),
        feature_group_count=self.groups,
        name="conv_b",
      )(y)
    y = self.act(self.norm(name="norm_b")(y))
    y = self.conv(self.features, kernel_size=(1, 1, 1), padding="VALID", name="conv_c")(y)
    # PyTorchVideo starts every block as the identity: the last BN's scale is initialised to 0.
    zero = {"scale_init": nn.initializers.zeros} if self.zero_init_last_bn else {}
    y = self.norm(name="norm_c", **zero)(y)
    strides = tuple(a * b for a, b in zip(self.stride_a, self.stride_b))
    residual = x
    if x.shape[-1] != self.features or any(s != 1 for s in strides):
      pointwise = functools.partial(self.conv, kernel_size=(1, 1, 1), padding="VALID")
      residual = ProjectionShortcut(
        self.features, strides, conv=pointwise, norm=self.norm, name="downsample"
      )(x)
    return self.act(residual + y)


class PVResNet(nn.Module):
  """A PyTorchVideo-layout video ResNet (see the module docstring).

  Attributes:
    depth: 50, 101 or 152 (blocks per stage (3, 4, 6, 3), (3, 4, 23, 3), (3, 8, 36, 3)).
    stem_kernel: the stem conv's (kt, 7, 7).
    stem_pool: a 1x3x3 stride (1, 2, 2) max-pool after the stem.
    stage1_pool: a 2x1x1 stride 2 max-pool after stage 1 (C2D, I3D).
    kernels_a: conv_a's kernel per stage: one kernel, or one per block cycled over the stage
      (I3D's alternating (3,1,1), (1,1,1)).
    kernel_b: conv_b's kernel (all stages).
    temporal_strides: per stage; on conv_a (`temporal_stride_on="a"`, create_resnet) or conv_b
      ("b", create_csn / create_r2plus1d).
    spatial_strides: per stage, on conv_b.
    temporal_stride_on: "a" or "b".
    depthwise: conv_b grouped with one channel per group (CSN).
    factorised: conv_b as a (2+1)D unit (R(2+1)D).
    stem_features: stem width; stage widths are 4x, 8x, 16x, 32x it (inner widths a quarter).
    num_classes: width of the classifier.
    dropout_rate: dropout before the classifier in train mode, when called with a "dropout" rng.
    zero_init_residual: every block's last BatchNorm scale starts at 0 (PyTorchVideo's default,
      PySlowFast's `RESNET.ZERO_INIT_FINAL_BN`); False starts it at 1.
    head_pool: None for a global average pool, or PyTorchVideo's fixed (t, h, w) average-pool kernel
      (stride 1, no padding, then the mean over the windows), to reproduce its head at any size.
    dtype: compute dtype.
    param_dtype: parameter dtype.
    conv: convolution module (`nn.Conv`-compatible, with `feature_group_count`).
    conv_lowering: pin every convolution to one of `jaxres.models.conv.LOWERINGS`, or None.
    bn_axis_name: pmap axis for BatchNorm statistics (None under jit).

  Intermediate features are sown as in `jaxres.models.video.VideoResNet` (`stem`, `stage1`..`4`,
  `pre_logits`).
  """

  depth: int = 50
  stem_kernel: Kernel = (1, 7, 7)
  stem_pool: bool = True
  stage1_pool: bool = False
  kernels_a: Sequence[Any] = ((1, 1, 1), (1, 1, 1), (3, 1, 1), (3, 1, 1))
  kernel_b: Kernel = (1, 3, 3)
  temporal_strides: Sequence[int] = (1, 1, 1, 1)
  spatial_strides: Sequence[int] = (1, 2, 2, 2)
  temporal_stride_on: str = "a"
  depthwise: bool = False
  factorised: bool = False
  stem_features: int = 64
  num_classes: int = 400
  dropout_rate: float = 0.5
  zero_init_residual: bool = True
  head_pool: Kernel | None = None
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  conv: ModuleDef = Conv
  conv_lowering: str | None = None
  bn_axis_name: str | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    parts = layer_factories(self, train)
    conv, norm = parts.conv, parts.norm
    x = jnp.asarray(x, self.dtype)
    x = conv(
      self.stem_features,
      kernel_size=self.stem_kernel,
      strides=(1, 2, 2),
      padding=_same_padding(self.stem_kernel),
      name="stem_conv",
    )(x)
    x = nn.relu(norm(name="stem_norm")(x))
    if self.stem_pool:
      x = max_pool(x, (1, 3, 3), strides=(1, 2, 2), padding=((0, 0), (1, 1), (1, 1)))
    feats = {"stem": x}
    features = self.stem_features * 4
    for stage, num_blocks in enumerate(_STAGE_DEPTHS[self.depth]):
      kernels_a = self.kernels_a[stage]
      kernels_a = [kernels_a] if isinstance(kernels_a[0], int) else list(kernels_a)
      st, ss = self.temporal_strides[stage], self.spatial_strides[stage]
      inner = features // 4
      for index in range(num_blocks):
        first = index == 0
        stride_a = (st if first and self.temporal_stride_on == "a" else 1, 1, 1)
        stride_b = (
          (st if self.temporal_stride_on == "b" else 1) if first else 1,
          ss if first else 1,
          ss if first else 1,
        )
        x = PVBottleneck(
          features,
          inner,
          kernel_a=tuple(kernels_a[index % len(kernels_a)]),
          kernel_b=tuple(self.kernel_b),
          stride_a=stride_a,
          stride_b=stride_b,
          conv=conv,
          norm=norm,
          groups=inner if self.depthwise else 1,
          factorised=self.factorised,
          zero_init_last_bn=self.zero_init_residual,
          name=f"layer{stage + 1}_{index}",
        )(x)
      if stage == 0 and self.stage1_pool:
        x = max_pool(x, (2, 1, 1), strides=(2, 1, 1))
      feats[f"stage{stage + 1}"] = x
      features *= 2
    if self.head_pool is not None:
      x = nn.avg_pool(x, tuple(self.head_pool), strides=(1, 1, 1))
    x = jnp.mean(x, axis=(1, 2, 3))
    feats["pre_logits"] = x
    self.sow("intermediates", "features", feats)
    # Dropout where there is a "dropout" rng to draw from (jaxres' train step passes one); a bare
    # train-mode call (BatchNorm statistics, benchmarks) runs without it.
    x = nn.Dropout(self.dropout_rate, deterministic=not (train and self.has_rng("dropout")))(x)
    return nn.Dense(
      self.num_classes,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      kernel_init=nn.initializers.normal(0.01),
      name="fc",
    )(x)


_I3D_KERNELS_A = ((3, 1, 1), ((3, 1, 1), (1, 1, 1)), ((3, 1, 1), (1, 1, 1)), ((1, 1, 1), (3, 1, 1)))
_CSN = dict(
  stem_kernel=(3, 7, 7),
  kernels_a=((1, 1, 1),) * 4,
  kernel_b=(3, 3, 3),
  temporal_strides=(1, 2, 2, 2),
  temporal_stride_on="b",
  depthwise=True,
  dropout_rate=0.0,
)

# pytorchvideo.models.hub.slow_r50 / c2d_r50 / i3d_r50 (create_resnet).
slow_r50 = functools.partial(PVResNet, stem_kernel=(1, 7, 7))
c2d_r50 = functools.partial(
  PVResNet, stem_kernel=(1, 7, 7), stage1_pool=True, kernels_a=((1, 1, 1),) * 4
)
i3d_r50 = functools.partial(
  PVResNet, stem_kernel=(5, 7, 7), stage1_pool=True, kernels_a=_I3D_KERNELS_A
)
# pytorchvideo.models.hub.csn_r101 (create_csn, stem pool) and its 152-layer twin.
csn_r101 = functools.partial(PVResNet, depth=101, **_CSN)
ir_csn_152 = functools.partial(PVResNet, depth=152, **_CSN)
# pytorchvideo.models.hub.r2plus1d_r50 (create_r2plus1d, dropout 0.5; logits, not softmax).
r2plus1d_r50 = functools.partial(
  PVResNet,
  stem_kernel=(1, 7, 7),
  stem_pool=False,
  kernels_a=((1, 1, 1),) * 4,
  kernel_b=(3, 3, 3),
  spatial_strides=(2, 2, 2, 2),
  temporal_strides=(1, 1, 2, 2),
  temporal_stride_on="b",
  factorised=True,
)

# PyTorchVideo's fixed head pools (for `head_pool=`), sized for each model's default clip.
PYTORCHVIDEO_HEAD_POOL = {
  "slow_r50": (8, 7, 7),
  "c2d_r50": (4, 7, 7),
  "i3d_r50": (4, 7, 7),
  "csn_r101": (4, 7, 7),
  "ir_csn_152": (4, 7, 7),
  "r2plus1d_r50": (4, 7, 7),
}
