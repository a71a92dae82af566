"""SlowFast networks (Feichtenhofer et al. 2019), exact to PyTorchVideo 0.1.5's `create_slowfast`.

The model takes one clip `[B, T, H, W, 3]`: the fast pathway sees all T frames, the slow one the
`T // alpha` frames PyTorchVideo's `PackPathway` picks (`slow_frame_indices`). Each pathway is a
`PVResNet`-style ResNet (the fast one `beta` = 1/8 as wide, with temporal kernels everywhere); after
the stem and stages 1-3 a time-strided conv (7x1x1, stride alpha) + BN + ReLU of the fast features
is concatenated to the slow ones. The head averages each pathway over all positions (PyTorchVideo:
fixed (8, 7, 7) and (32, 7, 7) pools, the same at the default 32x224x224 clip), concatenates them,
and applies dropout and a linear layer.

Example:
  >>> model = slowfast_r50(num_classes=400)
  >>> variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 224, 224, 3)), train=False)
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxres.models.blocks import ModuleDef
from jaxres.models.conv import Conv
from jaxres.models.layers import layer_factories
from jaxres.models.pool import max_pool
from jaxres.models.pytorchvideo_resnet import _STAGE_DEPTHS, PVBottleneck, _same_padding


def slow_frame_indices(num_frames: int, alpha: int) -> np.ndarray:
  """The frames of a `num_frames` clip the slow pathway takes: `torch.linspace(0, num_frames - 1,
  num_frames // alpha).long()` as PyTorchVideo's `PackPathway` computes it (float32, torch's
  two-sided formula, truncated), so the same frames are chosen.

  Example:
    >>> slow_frame_indices(32, 4)
    array([ 0,  4,  8, 13, 17, 22, 26, 31])
  """
  steps = num_frames // alpha
  if steps < 1:
    raise ValueError(
      f"A clip of {num_frames} frames has no slow frames at alpha {alpha}; give "
      f"at least {alpha} frames."
    )
  if steps == 1:
    return np.zeros(1, np.int64)
  start, end = np.float32(0), np.float32(num_frames - 1)
  step = (end - start) / np.float32(steps - 1)
  i = np.arange(steps)
  values = np.where(
    i < steps // 2,
    start + step * i.astype(np.float32),
    end - step * (steps - i - 1).astype(np.float32),
  )
  return values.astype(np.float32).astype(np.int64)


class FuseFastToSlow(nn.Module):
  """conv (kernel, stride (alpha, 1, 1)) -> BN -> ReLU of the fast features, concatenated to the slow."""

  features: int
  kernel_size: tuple[int, int, int]
  alpha: int
  conv: ModuleDef
  norm: ModuleDef

  @nn.compact
  def __call__(self, slow: jax.Array, fast: jax.Array) -> jax.Array:
    fuse = self.conv(
      self.features,
      kernel_size=self.kernel_size,
      strides=(self.alpha, 1, 1),
      padding=_same_padding(self.kernel_size),
      name="conv",
    )(fast)
    fuse = nn.relu(self.norm(name="norm")(fuse))
    return jnp.concatenate([slow, fuse], axis=-1)


class SlowFast(nn.Module):
  """SlowFast with bottleneck ResNet pathways (PyTorchVideo's `create_slowfast`).

  Attributes:
    depth: 50, 101 or 152.
    alpha: frame-rate ratio fast / slow (and the fusion conv's temporal stride).
    beta_inv: channel ratio slow / fast.
    fusion_channel_ratio: fusion conv output width over its input width.
    fusion_kernel: fusion conv kernel (7, 1, 1) for R50.
    slow_kernels_a: conv_a kernels of the slow pathway's stages.
    fast_kernels_a: those of the fast pathway.
    stem_features: slow stem width (the fast one's is `stem_features // beta_inv`).
    num_classes: classifier width.
    dropout_rate: dropout before the classifier in train mode, when called with a "dropout" rng.
    zero_init_residual: every block's last BatchNorm scale starts at 0 (PyTorchVideo's default,
      PySlowFast's `RESNET.ZERO_INIT_FINAL_BN`).
    dtype, param_dtype, conv, conv_lowering, bn_axis_name: as `PVResNet`'s.

  Sows `stem`, `stage1`..`stage4` (the slow pathway's, after fusion) and `pre_logits`.
  """

  depth: int = 50
  alpha: int = 4
  beta_inv: int = 8
  fusion_channel_ratio: int = 2
  fusion_kernel: tuple[int, int, int] = (7, 1, 1)
  slow_kernels_a: Sequence[Any] = ((1, 1, 1), (1, 1, 1), (3, 1, 1), (3, 1, 1))
  fast_kernels_a: Sequence[Any] = ((3, 1, 1),) * 4
  stem_features: int = 64
  num_classes: int = 400
  dropout_rate: float = 0.5
  zero_init_residual: bool = True
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
    slow = jnp.take(x, jnp.asarray(slow_frame_indices(x.shape[1], self.alpha)), axis=1)
    fast = x

    def stem(x, features, kernel, name):
      x = conv(
        features,
        kernel_size=kernel,
        strides=(1, 2, 2),
        padding=_same_padding(kernel),
        name=f"{name}_conv",
      )(x)
      x = nn.relu(norm(name=f"{name}_norm")(x))
      return max_pool(x, (1, 3, 3), strides=(1, 2, 2), padding=((0, 0), (1, 1), (1, 1)))

    def fuse(slow, fast, index):
      features = fast.shape[-1] * self.fusion_channel_ratio
      return FuseFastToSlow(
        features, self.fusion_kernel, self.alpha, conv=conv, norm=norm, name=f"fuse{index}"
      )(slow, fast)

    slow = stem(slow, self.stem_features, (1, 7, 7), "slow_stem")
    fast = stem(fast, self.stem_features // self.beta_inv, (5, 7, 7), "fast_stem")
    slow = fuse(slow, fast, 0)
    feats = {"stem": slow}
    features = self.stem_features * 4
    for stage, num_blocks in enumerate(_STAGE_DEPTHS[self.depth]):
      for pathway, kernels_a, width in (
        ("slow", self.slow_kernels_a, features),
        ("fast", self.fast_kernels_a, features // self.beta_inv),
      ):
        y = slow if pathway == "slow" else fast
        kernels = kernels_a[stage]
        kernels = [kernels] if isinstance(kernels[0], int) else list(kernels)
        spatial = 2 if stage > 0 else 1
        for index in range(num_blocks):
          s = spatial if index == 0 else 1
          y = PVBottleneck(
            width,
            width // 4,
            kernel_a=tuple(kernels[index % len(kernels)]),
            kernel_b=(1, 3, 3),
            stride_a=(1, 1, 1),
            stride_b=(1, s, s),
            conv=conv,
            norm=norm,
            zero_init_last_bn=self.zero_init_residual,
            name=f"{pathway}_layer{stage + 1}_{index}",
          )(y)
        if pathway == "slow":
          slow = y
        else:
          fast = y
      if stage < 3:
        slow = fuse(slow, fast, stage + 1)
      feats[f"stage{stage + 1}"] = slow
      features *= 2
    x = jnp.concatenate([jnp.mean(slow, axis=(1, 2, 3)), jnp.mean(fast, axis=(1, 2, 3))], axis=-1)
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


# pytorchvideo.models.hub.slowfast_r50: SlowFast 8x8 R50 (32 frames fast, 8 slow).
slowfast_r50 = functools.partial(SlowFast, depth=50, fusion_kernel=(7, 1, 1))
