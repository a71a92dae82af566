"""BasicVSR (Chan et al. 2021) exact to BasicSR 1.4.2's `BasicVSR`, channels-last, x4.

Clips `[B, T, h, w, 3]` in [0, 1] -> `[B, T, 4h, 4w, 3]` (float32, not clipped). SPyNet
(`jaxres.models.spynet`) estimates the flows between neighbouring frames; a backward pass
(t = T-1 .. 0) then a forward pass (t = 0 .. T-1) carry a feature map across the clip, each step
warping it to the current frame (`flow_warp`, zeros padding) and refining it with `[frame, features]`
through a conv + `num_blocks` residual blocks (`ConvResidualBlocks`). Per frame, both directions are
fused by a 1x1 conv and upsampled by two conv + pixel shuffle (x2 each) stages, conv_hr and conv_last,
and added to the bilinear x4 upsampling of the frame (`align_corners=False`). LeakyReLU(0.1)
throughout. `BasicVSR(features=64, num_blocks=30)`: 6,291,311 parameters (SPyNet 1,440,300).

Output frame t depends on the whole clip. Long videos are upscaled in overlapping temporal windows
(`jaxres.sr.upscale`): the propagated state is restarted at each window's edge, which the overlap
hides, rather than carried across windows (which would need a second pass for the backward
direction).

Weights from BasicSR / mmagic checkpoints: `jaxres.convert.from_basicsr(state_dict, "basicvsr")`.

Example:
  >>> model = BasicVSR()
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

from jaxres.models.conv import Conv
from jaxres.models.sampling import flow_warp, resize_bilinear
from jaxres.models.spynet import SpyNet
from jaxres.models.sr import ResidualBlock, pixel_shuffle

lrelu = functools.partial(nn.leaky_relu, negative_slope=0.1)


def conv3x3(
  features: int, *, dtype: Any, param_dtype: Any, name: str, lowering: str = "auto", **kwargs
) -> Conv:
  """A 3x3 convolution padded by 1 (PyTorch's `Conv2d(..., 3, 1, 1)`), `nn.Conv`'s parameters.

  With `lowering="auto"`, on CPU `Conv` runs it as Winograd F(4, 3) on frames of up to
  `WINOGRAD_2D_MAX_PIXELS` pixels (the recurrent branches at 180x320: BasicVSR's whole call 12%
  faster than with XLA's convolution) and as XLA's on larger ones (the x4 upsampler's last layers).
  """
  return Conv(
    features,
    (3, 3),
    padding=1,
    dtype=dtype,
    param_dtype=param_dtype,
    name=name,
    lowering=lowering,
    **kwargs,
  )


def module_conv3x3(module: nn.Module, *args, **kwargs) -> functools.partial:
  """`conv3x3` with `module`'s `dtype`, `param_dtype` and `conv_lowering` (its lowering) bound.

  Example:
    >>> conv = module_conv3x3(self, self.features)   # in a module's __call__
    >>> y = conv(name="conv_first")(x)
  """
  return functools.partial(
    conv3x3,
    *args,
    dtype=module.dtype,
    param_dtype=module.param_dtype,
    lowering=module.conv_lowering,
    **kwargs,
  )


class ConvResidualBlocks(nn.Module):
  """conv 3x3 -> LeakyReLU(0.1) -> `num_blocks` residual blocks (BasicSR's `ConvResidualBlocks`).

  Attributes:
    features: output width.
    num_blocks: residual blocks (conv-ReLU-conv + identity, no normalisation).
    dtype: compute dtype.
    param_dtype: parameter dtype.
    conv_lowering: the 3x3 convolutions' lowering (`jaxres.models.conv.LOWERINGS`; "auto": Winograd
      on CPU for frames of up to `WINOGRAD_2D_MAX_PIXELS` pixels, XLA's convolution otherwise).
  """

  features: int = 64
  num_blocks: int = 15
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  conv_lowering: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    conv = module_conv3x3(self)
    x = lrelu(conv(self.features, name="conv_in")(x.astype(self.dtype)))
    for i in range(self.num_blocks):
      x = ResidualBlock(lambda f, name: conv(f, name=name), name=f"block{i}")(x)
    return x


class UpsampleX4(nn.Module):
  """BasicVSR's reconstruction head: upconv1 -> PS x2 -> upconv2 -> PS x2 -> conv_hr -> conv_last.

  LeakyReLU(0.1) after each of the first three stages; the output has 3 channels, float32.
  `conv_lowering` as `ConvResidualBlocks`'.
  """

  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  conv_lowering: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    conv = module_conv3x3(self)
    x = lrelu(pixel_shuffle(conv(4 * x.shape[-1], name="upconv1")(x), 2))
    x = lrelu(pixel_shuffle(conv(64 * 4, name="upconv2")(x), 2))
    x = lrelu(conv(64, name="conv_hr")(x))
    return conv(3, name="conv_last")(x).astype(jnp.float32)


def check_clip(name: str, x: jax.Array, scale: int) -> None:
  """Raises ValueError unless `x` is a clip `[B, T, h, w, 3]` and `scale` is 4."""
  if scale != 4:
    raise ValueError(f"{name} upscales x4 only (as BasicSR builds it), got scale={scale!r}.")
  if x.ndim != 5 or x.shape[-1] != 3:
    raise ValueError(f"{name} takes clips [B, T, h, w, 3], got shape {x.shape}.")


def clip_flows(spynet: SpyNet, x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """SPyNet flows of a clip: (forward, backward), each `[B, T-1, h, w, 2]`.

  `backward[:, i]` warps frame i+1 onto frame i (used when propagating from t+1 to t), `forward[:, i]`
  warps frame i onto frame i+1. Both directions run as one batch.
  """
  b, t, h, w, c = x.shape
  x1 = x[:, :-1].reshape(-1, h, w, c)
  x2 = x[:, 1:].reshape(-1, h, w, c)
  flows = spynet(jnp.concatenate([x1, x2]), jnp.concatenate([x2, x1]))
  backward, forward = jnp.split(flows, 2)
  return forward.reshape(b, t - 1, h, w, 2), backward.reshape(b, t - 1, h, w, 2)


class BasicVSR(nn.Module):
  """BasicVSR: bidirectional propagation with SPyNet flow warping (see the module notes).

  Attributes:
    scale: must be 4 (BasicSR's BasicVSR is x4 only); kept as a field for the SR task's config.
    features: width of the propagated features (`num_feat`).
    num_blocks: residual blocks per direction (`num_block`; 30 in the published model).
    dtype: compute dtype of the convolutions (flows and warping run in float32); output float32.
    param_dtype: parameter dtype.
    conv_lowering: the 3x3 convolutions' lowering (`jaxres.models.conv.LOWERINGS`; "auto": Winograd
      on CPU for frames of up to `WINOGRAD_2D_MAX_PIXELS` pixels, XLA's convolution otherwise).
  """

  scale: int = 4
  features: int = 64
  num_blocks: int = 30
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  conv_lowering: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train  # no dropout or normalisation
    check_clip("BasicVSR", x, self.scale)
    b, t, h, w, _ = x.shape
    x = x.astype(jnp.float32)
    spynet = SpyNet(self.dtype, self.param_dtype, name="spynet")
    flows_forward, flows_backward = clip_flows(spynet, x) if t > 1 else (None, None)
    trunk = functools.partial(
      ConvResidualBlocks,
      self.features,
      self.num_blocks,
      self.dtype,
      self.param_dtype,
      self.conv_lowering,
    )
    backward_trunk = trunk(name="backward_trunk")
    forward_trunk = trunk(name="forward_trunk")

    backward = [None] * t
    prop = jnp.zeros((b, h, w, self.features), self.dtype)
    for i in range(t - 1, -1, -1):
      if i < t - 1:
        prop = flow_warp(prop, flows_backward[:, i]).astype(self.dtype)
      prop = backward_trunk(jnp.concatenate([x[:, i].astype(self.dtype), prop], -1))
      backward[i] = prop
    forward = [None] * t
    prop = jnp.zeros_like(prop)
    for i in range(t):
      if i > 0:
        prop = flow_warp(prop, flows_forward[:, i - 1]).astype(self.dtype)
      prop = forward_trunk(jnp.concatenate([x[:, i].astype(self.dtype), prop], -1))
      forward[i] = prop

    feats = jnp.concatenate([jnp.stack(backward, 1), jnp.stack(forward, 1)], -1)
    feats = feats.reshape(b * t, h, w, 2 * self.features)
    fused = lrelu(
      nn.Conv(self.features, (1, 1), dtype=self.dtype, param_dtype=self.param_dtype, name="fusion")(
        feats
      )
    )
    out = UpsampleX4(self.dtype, self.param_dtype, self.conv_lowering, name="upsample")(fused)
    base = resize_bilinear(x.reshape(b * t, h, w, 3), (4 * h, 4 * w), align_corners=False)
    return (out + base).reshape(b, t, 4 * h, 4 * w, 3)
