"""IconVSR (Chan et al. 2021) exact to BasicSR 1.4.2's `IconVSR`, with EDVR's feature extractor.

BasicVSR (`jaxres.models.basicvsr`) plus information refill and coupled propagation: at keyframes
(every `keyframe_stride`-th frame and the last), features extracted by EDVR's front end from the
`2 * temporal_padding + 1` frames around the keyframe (PCD alignment: pyramid, cascading, modulated
deformable convolution with 8 groups; TSA fusion: temporal and spatial attention) are fused into the
propagated features by a 3x3 conv; the forward branch also reads the backward branch's features
(coupled propagation) and feeds the x4 head directly. Frames are reflect-padded to multiples of 4
(EDVR's pyramid) and the output is cropped back. Clips need at least `2 * temporal_padding + 1`
frames (the ends are mirrored, as BasicSR does). `IconVSR(features=64, num_blocks=30)`: 8,694,991
parameters.

Example:
  >>> model = IconVSR()
  >>> clip = jnp.zeros((1, 5, 64, 64, 3))
  >>> variables = model.init(jax.random.key(0), clip, train=False)
  >>> model.apply(variables, clip, train=False).shape
  (1, 5, 256, 256, 3)
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxres.models.basicvsr import (
  ConvResidualBlocks,
  UpsampleX4,
  check_clip,
  clip_flows,
  lrelu,
  module_conv3x3,
)
from jaxres.models.sampling import flow_warp, modulated_deform_conv, resize_bilinear
from jaxres.models.spynet import SpyNet
from jaxres.models.sr import ResidualBlock


def _up2(x: jax.Array) -> jax.Array:
  h, w = x.shape[-3:-1]
  return resize_bilinear(x, (2 * h, 2 * w), align_corners=False)


class DCNv2Pack(nn.Module):
  """Modulated deformable conv whose offsets and mask come from other features (BasicSR's
  `DCNv2Pack`): `conv_offset(feat)` -> (offsets, mask logits) -> deform conv of `x`."""

  features: int
  deformable_groups: int = 8
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  conv_lowering: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, feat: jax.Array) -> jax.Array:
    g = self.deformable_groups
    out = module_conv3x3(self, 3 * 9 * g, kernel_init=nn.initializers.zeros)(name="conv_offset")(
      feat
    ).astype(jnp.float32)
    offset, mask = out[..., : 18 * g], jax.nn.sigmoid(out[..., 18 * g :])
    kernel = self.param(
      "kernel", nn.initializers.lecun_normal(), (3, 3, x.shape[-1], self.features), self.param_dtype
    )
    bias = self.param("bias", nn.initializers.zeros, (self.features,), self.param_dtype)
    y = modulated_deform_conv(
      x.astype(jnp.float32),
      offset,
      mask,
      kernel.astype(jnp.float32),
      bias.astype(jnp.float32),
      padding=1,
      deformable_groups=g,
    )
    return y.astype(self.dtype)


class PCDAlignment(nn.Module):
  """EDVR's Pyramid, Cascading and Deformable alignment of a neighbour's 3-level features to the
  reference frame's."""

  features: int = 64
  deformable_groups: int = 8
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  conv_lowering: str = "auto"

  @nn.compact
  def __call__(self, nbr: list[jax.Array], ref: list[jax.Array]) -> jax.Array:
    conv = module_conv3x3(self, self.features)
    dcn = functools.partial(
      DCNv2Pack,
      self.features,
      self.deformable_groups,
      self.dtype,
      self.param_dtype,
      self.conv_lowering,
    )
    up_offset = up_feat = None
    for i in (3, 2, 1):
      offset = lrelu(conv(name=f"offset_conv1_l{i}")(jnp.concatenate([nbr[i - 1], ref[i - 1]], -1)))
      if i == 3:
        offset = lrelu(conv(name=f"offset_conv2_l{i}")(offset))
      else:
        offset = lrelu(conv(name=f"offset_conv2_l{i}")(jnp.concatenate([offset, up_offset], -1)))
        offset = lrelu(conv(name=f"offset_conv3_l{i}")(offset))
      feat = dcn(name=f"dcn_pack_l{i}")(nbr[i - 1], offset)
      if i < 3:
        feat = conv(name=f"feat_conv_l{i}")(jnp.concatenate([feat, up_feat], -1))
      if i > 1:
        feat = lrelu(feat)
        up_offset = _up2(offset) * 2
        up_feat = _up2(feat)
    offset = jnp.concatenate([feat, ref[0]], -1)
    offset = lrelu(conv(name="cas_offset_conv2")(lrelu(conv(name="cas_offset_conv1")(offset))))
    return lrelu(dcn(name="cas_dcnpack")(feat, offset))


def _pool(x: jax.Array, kind: str) -> jax.Array:
  """PyTorch's MaxPool2d / AvgPool2d(3, stride=2, padding=1) (the average counts the padding)."""
  pool = nn.max_pool if kind == "max" else nn.avg_pool
  return pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))


class TSAFusion(nn.Module):
  """EDVR's Temporal and Spatial Attention fusion of `[B, T, h, w, C]` aligned features."""

  features: int = 64
  center: int = 2
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  conv_lowering: str = "auto"

  @nn.compact
  def __call__(self, aligned: jax.Array) -> jax.Array:
    b, t, h, w, c = aligned.shape
    conv = module_conv3x3(self, self.features)
    conv1 = functools.partial(
      nn.Conv, self.features, (1, 1), dtype=self.dtype, param_dtype=self.param_dtype
    )
    embedding_ref = conv(name="temporal_attn1")(aligned[:, self.center])
    embedding = conv(name="temporal_attn2")(aligned.reshape(b * t, h, w, c)).reshape(b, t, h, w, c)
    corr = jax.nn.sigmoid(jnp.sum(embedding * embedding_ref[:, None], -1))  # [B, T, h, w]
    # Channels ordered (frame, channel), as PyTorch's view(b, t * c, h, w).
    aligned = (aligned * corr[..., None]).transpose(0, 2, 3, 1, 4).reshape(b, h, w, t * c)
    feat = lrelu(conv1(name="feat_fusion")(aligned))
    attn = lrelu(conv1(name="spatial_attn1")(aligned))
    attn = lrelu(
      conv1(name="spatial_attn2")(jnp.concatenate([_pool(attn, "max"), _pool(attn, "avg")], -1))
    )
    level = lrelu(conv1(name="spatial_attn_l1")(attn))
    level = lrelu(
      conv(name="spatial_attn_l2")(jnp.concatenate([_pool(level, "max"), _pool(level, "avg")], -1))
    )
    level = _up2(lrelu(conv(name="spatial_attn_l3")(level)))
    attn = lrelu(conv(name="spatial_attn3")(attn)) + level
    attn = _up2(lrelu(conv1(name="spatial_attn4")(attn)))
    attn = conv(name="spatial_attn5")(attn)
    attn_add = conv1(name="spatial_attn_add2")(lrelu(conv1(name="spatial_attn_add1")(attn)))
    return feat * jax.nn.sigmoid(attn) * 2 + attn_add


class EDVRFeatureExtractor(nn.Module):
  """EDVR's front end: per-frame features at 3 scales, PCD alignment to the centre frame, TSA."""

  num_frames: int = 5
  features: int = 64
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  conv_lowering: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, t, h, w, _ = x.shape
    conv = module_conv3x3(self, self.features)
    down = functools.partial(
      nn.Conv,
      self.features,
      (3, 3),
      strides=2,
      padding=1,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
    )
    l1 = lrelu(conv(name="conv_first")(x.reshape(b * t, h, w, 3).astype(self.dtype)))
    for i in range(5):
      l1 = ResidualBlock(
        lambda f, name: module_conv3x3(self, f)(name=name),
        name=f"feature_extraction{i}",
      )(l1)
    l2 = lrelu(conv(name="conv_l2_2")(lrelu(down(name="conv_l2_1")(l1))))
    l3 = lrelu(conv(name="conv_l3_2")(lrelu(down(name="conv_l3_1")(l2))))
    levels = [f.reshape(b, t, *f.shape[1:]) for f in (l1, l2, l3)]
    center = self.num_frames // 2
    pcd = PCDAlignment(
      self.features, 8, self.dtype, self.param_dtype, self.conv_lowering, name="pcd_align"
    )
    ref = [f[:, center] for f in levels]
    aligned = jnp.stack([pcd([f[:, i] for f in levels], ref) for i in range(t)], 1)
    return TSAFusion(
      self.features, center, self.dtype, self.param_dtype, self.conv_lowering, name="fusion"
    )(aligned)


class IconVSR(nn.Module):
  """IconVSR: BasicVSR with keyframe information refill and coupled propagation (module notes).

  Attributes:
    scale: must be 4 (BasicSR's IconVSR is x4 only); a field for the SR task's config.
    features: width (`num_feat`).
    num_blocks: residual blocks per direction (`num_block`; 30 in the published model).
    keyframe_stride: distance between keyframes (5).
    temporal_padding: frames on each side of a keyframe given to EDVR (2 or 3).
    dtype: compute dtype of the convolutions (flows, warping and sampling in float32); output
      float32.
    param_dtype: parameter dtype.
    conv_lowering: the 3x3 convolutions' lowering (`jaxres.models.conv.LOWERINGS`; "auto": Winograd
      on CPU for frames of up to `WINOGRAD_2D_MAX_PIXELS` pixels, XLA's convolution otherwise).
  """

  scale: int = 4
  features: int = 64
  num_blocks: int = 30
  keyframe_stride: int = 5
  temporal_padding: int = 2
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  conv_lowering: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train  # no dropout or normalisation
    check_clip("IconVSR", x, self.scale)
    tp = self.temporal_padding
    if tp not in (2, 3):
      raise ValueError(f"IconVSR: temporal_padding must be 2 or 3, got {tp}.")
    b, n, h_in, w_in, _ = x.shape
    if n < 2 * tp + 1:
      raise ValueError(
        f"IconVSR with temporal_padding={tp} needs clips of at least {2 * tp + 1} frames, got {n}."
      )
    x = x.astype(jnp.float32)
    pad_h, pad_w = -h_in % 4, -w_in % 4
    x = jnp.pad(x, ((0, 0), (0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
    h, w = x.shape[2:4]
    f = self.features
    keyframes = list(range(0, n, self.keyframe_stride))
    if keyframes[-1] != n - 1:
      keyframes.append(n - 1)

    flows_forward, flows_backward = clip_flows(
      SpyNet(self.dtype, self.param_dtype, name="spynet"), x
    )
    # Mirror the ends (BasicSR's indices) and extract the keyframes' EDVR features in one batch.
    before = [2 * tp - i for i in range(tp)]  # [4, 3] for tp=2
    after = [-(tp + 2) - i for i in range(tp)]  # [-4, -5]
    padded = jnp.concatenate([x[:, before], x, x[:, after]], 1)
    windows = jnp.concatenate([padded[:, i : i + 2 * tp + 1] for i in keyframes], 0)
    edvr = EDVRFeatureExtractor(
      2 * tp + 1, f, self.dtype, self.param_dtype, self.conv_lowering, name="edvr"
    )
    refill = dict(zip(keyframes, jnp.split(edvr(windows), len(keyframes), 0)))

    conv = module_conv3x3(self, f)
    trunk = functools.partial(
      ConvResidualBlocks, f, self.num_blocks, self.dtype, self.param_dtype, self.conv_lowering
    )
    backward_fusion, forward_fusion = conv(name="backward_fusion"), conv(name="forward_fusion")
    backward_trunk, forward_trunk = trunk(name="backward_trunk"), trunk(name="forward_trunk")
    frame = lambda i: x[:, i].astype(self.dtype)

    backward = [None] * n
    prop = jnp.zeros((b, h, w, f), self.dtype)
    for i in range(n - 1, -1, -1):
      if i < n - 1:
        prop = flow_warp(prop, flows_backward[:, i]).astype(self.dtype)
      if i in refill:
        prop = backward_fusion(jnp.concatenate([prop, refill[i]], -1))
      prop = backward_trunk(jnp.concatenate([frame(i), prop], -1))
      backward[i] = prop
    forward = []
    prop = jnp.zeros_like(prop)
    for i in range(n):
      if i > 0:
        prop = flow_warp(prop, flows_forward[:, i - 1]).astype(self.dtype)
      if i in refill:
        prop = forward_fusion(jnp.concatenate([prop, refill[i]], -1))
      prop = forward_trunk(jnp.concatenate([frame(i), backward[i], prop], -1))
      forward.append(prop)

    out = UpsampleX4(self.dtype, self.param_dtype, self.conv_lowering, name="upsample")(
      jnp.stack(forward, 1).reshape(b * n, h, w, f)
    )
    base = resize_bilinear(x.reshape(b * n, h, w, 3), (4 * h, 4 * w), align_corners=False)
    out = (out + base).reshape(b, n, 4 * h, 4 * w, 3)
    return out[:, :, : 4 * h_in, : 4 * w_in]
