"""BasicVSR++ (Chan et al. 2022) exact to BasicSR 1.4.2's `BasicVSRPlusPlus`, channels-last, x4.

Clips `[B, T, h, w, 3]` in [0, 1] -> `[B, T, 4h, 4w, 3]` (float32, not clipped). Per frame, a
conv + 5 residual blocks extract features (`feat_extract`). SPyNet (`jaxres.models.spynet`) gives
the flows between neighbours. Four propagation branches run in turn, backward_1, forward_1,
backward_2, forward_2 (second-order grid propagation): each step aligns the propagated features of
the previous one and two steps back to the current frame by flow-guided modulated deformable
convolution (`SecondOrderDeformableAlignment`: a conv stack predicts offset residues, bounded by
`10 * tanh`, added to the flows, and a sigmoid mask; `jaxres.models.sampling.modulated_deform_conv`,
16 deformable groups), then adds the output of `num_blocks` residual blocks on
`[current frame's features, every earlier branch's features at this frame, aligned features]`.
The frame's features and the four branches are reconstructed by 5 residual blocks and BasicVSR's
x4 pixel-shuffle head, added to the bilinear x4 upsampling of the frame.
`BasicVSRPlusPlus(features=64, num_blocks=7)`: 7,322,927 parameters.

BasicSR builds this network on CUDA machines only: on CPU it silently leaves the deformable
alignment out (5,283,439 parameters, another network). This is the CUDA network, on every backend.
BasicSR also refuses frames under 64 pixels (SPyNet's limit there); here SPyNet runs on any size
(see `jaxres.models.spynet`), but the published weights were trained on >= 64 px.

Example:
  >>> model = BasicVSRPlusPlus()
  >>> clip = jnp.zeros((1, 3, 64, 64, 3))
  >>> variables = model.init(jax.random.key(0), clip, train=False)
  >>> model.apply(variables, clip, train=False).shape
  (1, 3, 256, 256, 3)
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

BRANCHES = ("backward_1", "forward_1", "backward_2", "forward_2")


class SecondOrderDeformableAlignment(nn.Module):
  """Flow-guided modulated deformable alignment of `[feat n-1, feat n-2]` (BasicSR's module).

  Attributes:
    features: output width (the propagated features'); the input has twice as many channels.
    deformable_groups: offset groups (16).
    max_residue_magnitude: bound of the learned offset residue around the flow (10).
    dtype: compute dtype of the convolutions; sampling runs in float32.
    param_dtype: parameter dtype.
    conv_lowering: the 3x3 convolutions' lowering (`jaxres.models.conv.LOWERINGS`; "auto": Winograd
      on CPU for frames of up to `WINOGRAD_2D_MAX_PIXELS` pixels, XLA's convolution otherwise).
  """

  features: int = 64
  deformable_groups: int = 16
  max_residue_magnitude: float = 10.0
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  conv_lowering: str = "auto"

  @nn.compact
  def __call__(
    self, x: jax.Array, extra: jax.Array, flow_1: jax.Array, flow_2: jax.Array
  ) -> jax.Array:
    """Aligns `x` `[B, h, w, 2F]` guided by `extra` `[B, h, w, 3F]` and the flows `[B, h, w, 2]`."""
    conv = module_conv3x3(self)
    g = self.deformable_groups
    y = jnp.concatenate([extra, flow_1, flow_2], -1).astype(self.dtype)
    for i in range(3):
      y = lrelu(conv(self.features, name=f"conv_offset_{i}")(y))
    y = conv(27 * g, kernel_init=nn.initializers.zeros, name="conv_offset_3")(y)
    o1, o2, mask = jnp.split(y.astype(jnp.float32), 3, axis=-1)
    offset_1, offset_2 = jnp.split(
      self.max_residue_magnitude * jnp.tanh(jnp.concatenate([o1, o2], -1)), 2, axis=-1
    )
    # Flows are (dx, dy); offsets (dy, dx) pairs, one per group and kernel tap.
    repeat = offset_1.shape[-1] // 2
    offset_1 = offset_1 + jnp.tile(flow_1[..., ::-1], (1, 1, 1, repeat))
    offset_2 = offset_2 + jnp.tile(flow_2[..., ::-1], (1, 1, 1, repeat))
    kernel = self.param(
      "kernel", nn.initializers.lecun_normal(), (3, 3, x.shape[-1], self.features), self.param_dtype
    )
    bias = self.param("bias", nn.initializers.zeros, (self.features,), self.param_dtype)
    out = modulated_deform_conv(
      x.astype(jnp.float32),
      jnp.concatenate([offset_1, offset_2], -1),
      jax.nn.sigmoid(mask),
      kernel.astype(jnp.float32),
      bias.astype(jnp.float32),
      padding=1,
      deformable_groups=g,
    )
    return out.astype(self.dtype)


class BasicVSRPlusPlus(nn.Module):
  """BasicVSR++: second-order grid propagation with deformable alignment (see the module notes).

  Attributes:
    scale: must be 4 (BasicSR's network is x4 for LR input); a field for the SR task's config.
    features: width (`mid_channels`).
    num_blocks: residual blocks per propagation branch (7 in the published model).
    max_residue_magnitude: bound of the offset residues (10).
    dtype: compute dtype of the convolutions (flows, warping and sampling in float32); output
      float32.
    param_dtype: parameter dtype.
    conv_lowering: the 3x3 convolutions' lowering (`jaxres.models.conv.LOWERINGS`; "auto": Winograd
      on CPU for frames of up to `WINOGRAD_2D_MAX_PIXELS` pixels, XLA's convolution otherwise).
  """

  scale: int = 4
  features: int = 64
  num_blocks: int = 7
  max_residue_magnitude: float = 10.0
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  conv_lowering: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train  # no dropout or normalisation
    check_clip("BasicVSRPlusPlus", x, self.scale)
    b, t, h, w, _ = x.shape
    f = self.features
    x = x.astype(jnp.float32)
    blocks = functools.partial(
      ConvResidualBlocks,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      conv_lowering=self.conv_lowering,
    )
    spatial = blocks(f, 5, name="feat_extract")(x.reshape(b * t, h, w, 3)).reshape(b, t, h, w, f)
    feats = {"spatial": [spatial[:, i] for i in range(t)]}
    spynet = SpyNet(self.dtype, self.param_dtype, name="spynet")
    flows_forward, flows_backward = clip_flows(spynet, x) if t > 1 else (None, None)

    for n, branch in enumerate(BRANCHES):
      align = SecondOrderDeformableAlignment(
        f,
        16,
        self.max_residue_magnitude,
        self.dtype,
        self.param_dtype,
        self.conv_lowering,
        name=f"deform_align_{branch}",
      )
      backbone = blocks(f, self.num_blocks, name=f"backbone_{branch}")
      backward = branch.startswith("backward")
      flows = flows_backward if backward else flows_forward
      frames = list(range(t))[::-1] if backward else list(range(t))
      flow_index = frames if backward else list(range(-1, t - 1))
      earlier = [feats[k] for k in ("spatial",) + BRANCHES[:n]]
      outputs = []
      prop = jnp.zeros((b, h, w, f), self.dtype)
      for i, idx in enumerate(frames):
        current = feats["spatial"][idx]
        if i > 0:
          flow_n1 = flows[:, flow_index[i]]
          cond_n1 = flow_warp(prop, flow_n1).astype(self.dtype)
          feat_n2 = jnp.zeros_like(prop)
          flow_n2 = jnp.zeros_like(flow_n1)
          cond_n2 = jnp.zeros_like(cond_n1)
          if i > 1:  # second order: the features two steps back, warped by the chained flows
            feat_n2 = outputs[-2]
            flow_n2 = flow_n1 + flow_warp(flows[:, flow_index[i - 1]], flow_n1)
            cond_n2 = flow_warp(feat_n2, flow_n2).astype(self.dtype)
          cond = jnp.concatenate([cond_n1, current, cond_n2], -1)
          prop = align(jnp.concatenate([prop, feat_n2], -1), cond, flow_n1, flow_n2)
        inputs = jnp.concatenate([feats_at[idx] for feats_at in earlier[1:]], -1) if n else None
        parts = [current] + ([inputs] if n else []) + [prop]
        prop = prop + backbone(jnp.concatenate(parts, -1))
        outputs.append(prop)
      feats[branch] = outputs[::-1] if backward else outputs

    hr = jnp.concatenate([jnp.stack(feats[k], 1) for k in ("spatial",) + BRANCHES], -1)
    hr = blocks(f, 5, name="reconstruction")(hr.reshape(b * t, h, w, 5 * f))
    out = UpsampleX4(self.dtype, self.param_dtype, self.conv_lowering, name="upsample")(hr)
    base = resize_bilinear(x.reshape(b * t, h, w, 3), (4 * h, 4 * w), align_corners=False)
    return (out + base).reshape(b, t, 4 * h, 4 * w, 3)
