"""Super-resolution networks: EDSR (BasicSR's and a bicubic-skip variant), VDSR, a recurrent VSR.

Inputs are low-resolution RGB in [0, 1]; outputs are float32 `[..., scale*h, scale*w, 3]`, not
clipped (clip before quantising). The video networks exact to BasicSR live in
`jaxres.models.basicvsr` and `jaxres.models.basicvsrpp`.

- `EDSR` (Lim et al. 2017), exact to BasicSR 1.4.2's `EDSR`: per-frame; mean shift at
  `img_range=255`, residual blocks without BatchNorm at LR resolution, then pixel shuffle; no
  bicubic skip. `edsr_baseline` (16 blocks x 64, no residual scaling; 1,517,571 parameters at x4)
  and `edsr` (32 x 256, residual scaling 0.1; 43,089,923 at x4).
- `BicubicEDSR` (jaxres' variant): the same body predicting a residual added to the bicubic
  upsampling of the input, its last conv starting at zero, so an untrained network already returns
  the bicubic image. `edsr_bicubic_baseline`, `edsr_bicubic` (same sizes as above), `edsr_bicubic_tiny`.
- `VDSR` (Kim et al. 2016): per-frame; 20 plain 3x3 convolutions at HR resolution on the bicubic
  upsampling, the global skip adds it back. Works at HR, so it has no pixel shuffle and the same
  parameters (668,227) for every scale.
- `RecurrentVSR` (jaxres' own, in the spirit of BasicVSR; `recurrent_vsr`): clips only; a backward
  then a forward pass propagate a hidden feature map across frames, each step fusing the current
  frame with the propagated features through residual blocks; the two directions are fused per
  frame, upsampled by pixel shuffle and added to the bicubic upsampling. Unlike BasicSR's BasicVSR
  it supports x2/x3/x4, starts from the bicubic image (zero tail) and learns its small flow network
  from the SR loss alone instead of a pretrained SPyNet: a cheap model to train from scratch.

Image models (`EDSR`, `VDSR`) take `[B, H, W, 3]` and also clips `[B, T, H, W, 3]`, which they
treat as B*T independent frames.

Bicubic upsampling is `jax.image.resize(..., "bicubic")`: Keys' cubic (a = -0.5, the
MATLAB/PIL kernel) with half-pixel centres; samples beyond the frame get zero weight and the
remaining weights are renormalised (no edge replication; differs from MATLAB's `imresize` only in
the outermost 2 pixels). `jaxres.tasks.degradation` uses the same function (with antialiasing) to make
LR frames, so the two agree.

Alignment in `RecurrentVSR`: a small flow network (4 convolutions at LR resolution, last one
zero-initialised so training starts from the identity warp) estimates the motion between the
current and the previous frame; the propagated features are warped by bilinear sampling with edge
clamping. It learns from the SR loss alone (no flow supervision), as BasicVSR fine-tunes SPyNet.
`align="none"` drops it (implicit alignment by the convolutions).

Example:
  >>> model = edsr_bicubic_baseline(scale=4)
  >>> lr = jnp.zeros((1, 32, 32, 3))
  >>> variables = model.init(jax.random.key(0), lr, train=False)
  >>> model.apply(variables, lr, train=False).shape
  (1, 128, 128, 3)
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxres.models.blocks import ModuleDef
from jaxres.models.conv import Conv
from jaxres.models.sampling import flow_warp

SCALES = (2, 3, 4)


def pixel_shuffle(x: jax.Array, factor: int) -> jax.Array:
  """Rearranges `[..., h, w, C*r*r]` into `[..., h*r, w*r, C]` (sub-pixel convolution).

  The channel order matches `torch.nn.PixelShuffle` (channel `c*r*r + i*r + j` goes to sub-pixel
  `(i, j)` of output channel `c`), so convolution weights port from PyTorch SR code unchanged.

  Args:
    x: channels-last array whose channel count is divisible by `factor**2`.
    factor: the upscaling factor r.

  Returns:
    The rearranged array.

  Example:
    >>> pixel_shuffle(jnp.zeros((1, 8, 8, 12)), 2).shape
    (1, 16, 16, 3)
  """
  *lead, h, w, c = x.shape
  if c % (factor * factor):
    raise ValueError(f"pixel_shuffle: {c} channels are not divisible by {factor}**2.")
  out = c // (factor * factor)
  n = len(lead)
  x = x.reshape(*lead, h, w, out, factor, factor)
  x = x.transpose(*range(n), n, n + 3, n + 1, n + 4, n + 2)  # [..., h, i, w, j, C]
  return x.reshape(*lead, h * factor, w * factor, out)


def bicubic_upsample(x: jax.Array, scale: int) -> jax.Array:
  """Bicubic upsampling of `[..., h, w, C]` by an integer `scale` (see the module notes on edges).

  Args:
    x: channels-last frames.
    scale: integer factor.

  Returns:
    `[..., scale*h, scale*w, C]` in the dtype of `x` promoted to floating point.

  Example:
    >>> bicubic_upsample(jnp.zeros((2, 16, 16, 3)), 4).shape
    (2, 64, 64, 3)
  """
  *lead, h, w, c = x.shape
  return jax.image.resize(x, (*lead, h * scale, w * scale, c), "bicubic")


def _check_scale(scale: int) -> None:
  if scale not in SCALES:
    raise ValueError(f"scale must be one of {SCALES}, got {scale!r}.")


def _per_frame(fn, x: jax.Array) -> jax.Array:
  """Applies an image network to `[B, H, W, C]` or, frame by frame, to clips `[B, T, H, W, C]`."""
  if x.ndim == 4:
    return fn(x)
  if x.ndim != 5:
    raise ValueError(f"Expected [B, H, W, 3] or [B, T, H, W, 3], got shape {x.shape}.")
  b, t = x.shape[:2]
  y = fn(x.reshape(b * t, *x.shape[2:]))
  return y.reshape(b, t, *y.shape[1:])


class ResidualBlock(nn.Module):
  """conv -> act -> conv, scaled and added to the input (EDSR's block: no normalisation).

  Attributes:
    conv: 3x3 convolution factory, called `conv(features, name=...)`.
    act: activation.
    res_scale: multiplies the residual branch (0.1 stabilises very wide EDSR).
  """

  conv: ModuleDef
  act: Any = nn.relu
  res_scale: float = 1.0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = self.act(self.conv(x.shape[-1], name="conv1")(x))
    y = self.conv(x.shape[-1], name="conv2")(y)
    return x + self.res_scale * y if self.res_scale != 1.0 else x + y


class Upsampler(nn.Module):
  """conv to r*r*C channels -> pixel shuffle, once for x2/x3 and twice (x2, x2) for x4.

  Attributes:
    scale: 2, 3 or 4.
    conv: 3x3 convolution factory.
    act: activation after each shuffle (None in EDSR).
  """

  scale: int
  conv: ModuleDef
  act: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    factors = (2, 2) if self.scale == 4 else (self.scale,)
    features = x.shape[-1]
    for i, r in enumerate(factors):
      x = pixel_shuffle(self.conv(features * r * r, name=f"conv{i}")(x), r)
      if self.act is not None:
        x = self.act(x)
    return x


def _conv_factory(dtype, param_dtype, lowering: str = "auto") -> ModuleDef:
  """3x3 convolutions, "SAME"-padded, as `Conv` ("auto": Winograd on CPU for frames of up to
  `conv.WINOGRAD_2D_MAX_PIXELS` pixels, XLA's convolution on larger ones and elsewhere)."""
  return functools.partial(
    Conv,
    kernel_size=(3, 3),
    padding="SAME",
    dtype=dtype,
    param_dtype=param_dtype,
    lowering=lowering,
  )


class EDSR(nn.Module):
  """EDSR exact to BasicSR's `EDSR`: mean shift -> head conv -> residual blocks -> conv (+ long
  skip) -> pixel-shuffle upsampler -> conv -> mean shift back.

  The input is shifted by the RGB mean and scaled to [0, `img_range`] before the network and
  back after it, as BasicSR does (`(x - mean) * img_range`, output `y / img_range + mean`); there
  is no bicubic skip. Parameter names follow BasicSR's (`conv_first`, `body{i}`, `conv_after_body`,
  `upsample`, `conv_last`), so `jaxres.convert.from_basicsr(state_dict, "edsr")` fills them.

  Attributes:
    scale: 2, 3 or 4.
    num_blocks: residual blocks (`num_block`).
    features: width (`num_feat`).
    res_scale: residual scaling in the blocks.
    img_range: the range the network works in (255, BasicSR's default).
    rgb_mean: the mean subtracted (DIV2K's, BasicSR's default).
    dtype: compute dtype; the output is float32.
    param_dtype: parameter dtype.
    conv_lowering: the 3x3 convolutions' lowering (`jaxres.models.conv.LOWERINGS`; "auto": Winograd
      on CPU for frames of up to `WINOGRAD_2D_MAX_PIXELS` pixels, XLA's convolution otherwise).
  """

  scale: int = 4
  num_blocks: int = 16
  features: int = 64
  res_scale: float = 1.0
  img_range: float = 255.0
  rgb_mean: tuple[float, float, float] = (0.4488, 0.4371, 0.4040)
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  conv_lowering: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train  # no dropout or normalisation
    _check_scale(self.scale)
    conv = _conv_factory(self.dtype, self.param_dtype, self.conv_lowering)
    mean = jnp.asarray(self.rgb_mean, jnp.float32)

    def network(x):
      h = conv(self.features, name="conv_first")(
        ((jnp.asarray(x, jnp.float32) - mean) * self.img_range).astype(self.dtype)
      )
      y = h
      for i in range(self.num_blocks):
        y = ResidualBlock(conv, res_scale=self.res_scale, name=f"body{i}")(y)
      y = conv(self.features, name="conv_after_body")(y) + h
      y = Upsampler(self.scale, conv, name="upsample")(y)
      y = conv(3, name="conv_last")(y)
      return y.astype(jnp.float32) / self.img_range + mean

    return _per_frame(network, x)


class BicubicEDSR(nn.Module):
  """EDSR on a bicubic skip (jaxres' variant): head conv -> residual blocks -> conv (+ long skip)
  -> pixel-shuffle upsampler -> conv, added to the bicubic upsampling of the input.

  Unlike BasicSR's `EDSR` (the reference, `EDSR` above) there is no mean shift or `img_range`, and
  the last conv starts at zero, so an untrained network returns the bicubic image and learns only
  the residual. Same parameter count as `EDSR`.

  Attributes:
    scale: 2, 3 or 4.
    num_blocks: residual blocks.
    features: width.
    res_scale: residual scaling in the blocks.
    dtype: compute dtype; the output is float32.
    param_dtype: parameter dtype.
    conv_lowering: the 3x3 convolutions' lowering (`jaxres.models.conv.LOWERINGS`; "auto": Winograd
      on CPU for frames of up to `WINOGRAD_2D_MAX_PIXELS` pixels, XLA's convolution otherwise).
  """

  scale: int = 4
  num_blocks: int = 16
  features: int = 64
  res_scale: float = 1.0
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  conv_lowering: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train  # no dropout or normalisation
    _check_scale(self.scale)
    conv = _conv_factory(self.dtype, self.param_dtype, self.conv_lowering)

    def network(x):
      h = conv(self.features, name="head")(jnp.asarray(x, self.dtype))
      y = h
      for i in range(self.num_blocks):
        y = ResidualBlock(conv, res_scale=self.res_scale, name=f"block{i}")(y)
      y = conv(self.features, name="body_end")(y) + h
      y = Upsampler(self.scale, conv, name="upsample")(y)
      y = conv(3, kernel_init=nn.initializers.zeros, name="tail")(y)
      return bicubic_upsample(jnp.asarray(x, jnp.float32), self.scale) + y.astype(jnp.float32)

    return _per_frame(network, x)


class VDSR(nn.Module):
  """VDSR: bicubic upsampling -> `depth` 3x3 convolutions with ReLU -> + bicubic (global residual).

  Attributes:
    scale: 2, 3 or 4.
    depth: convolutions in all (20 in the paper).
    features: width.
    dtype: compute dtype; the output is float32.
    param_dtype: parameter dtype.
    conv_lowering: the 3x3 convolutions' lowering (`jaxres.models.conv.LOWERINGS`; "auto": Winograd
      on CPU for frames of up to `WINOGRAD_2D_MAX_PIXELS` pixels, XLA's convolution otherwise).
  """

  scale: int = 4
  depth: int = 20
  features: int = 64
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  conv_lowering: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train
    _check_scale(self.scale)
    conv = _conv_factory(self.dtype, self.param_dtype, self.conv_lowering)

    def network(x):
      up = bicubic_upsample(jnp.asarray(x, jnp.float32), self.scale)
      y = jnp.asarray(up, self.dtype)
      for i in range(self.depth - 1):
        y = nn.relu(conv(self.features, name=f"conv{i}")(y))
      y = conv(3, kernel_init=nn.initializers.zeros, name=f"conv{self.depth - 1}")(y)
      return up + y.astype(jnp.float32)

    return _per_frame(network, x)


class FlowEstimator(nn.Module):
  """A small CNN from two frames `[B, h, w, 6]` to a flow `[B, h, w, 2]` (zero at initialisation)."""

  features: int = 32
  conv: ModuleDef = nn.Conv

  @nn.compact
  def __call__(self, pair: jax.Array) -> jax.Array:
    y = pair
    for i, dilation in enumerate((1, 2, 4)):
      y = nn.leaky_relu(self.conv(self.features, kernel_dilation=dilation, name=f"conv{i}")(y), 0.1)
    return self.conv(2, kernel_init=nn.initializers.zeros, name="flow")(y)


class PropagationCell(nn.Module):
  """One recurrent step: warp the hidden state to this frame, fuse with the frame, residual blocks.

  Attributes:
    features: hidden width.
    num_blocks: residual blocks per step.
    align: "flow" (learned flow + bilinear warp) or "none".
    conv: 3x3 convolution factory.
  """

  features: int
  num_blocks: int
  align: str
  conv: ModuleDef

  @nn.compact
  def __call__(self, hidden: jax.Array, inputs: tuple[jax.Array, jax.Array]):
    frame, neighbour = inputs
    frame = frame.astype(hidden.dtype)
    if self.align == "flow":
      pair = jnp.concatenate([frame, neighbour.astype(hidden.dtype)], axis=-1)
      flow = FlowEstimator(conv=self.conv, name="flow")(pair)
      hidden = flow_warp(hidden, flow.astype(jnp.float32), padding="border")
    y = nn.leaky_relu(
      self.conv(self.features, name="fuse")(jnp.concatenate([frame, hidden], -1)), 0.1
    )
    for i in range(self.num_blocks):
      y = ResidualBlock(self.conv, name=f"block{i}")(y)
    return y, y


class RecurrentVSR(nn.Module):
  """Bidirectional recurrent residual video SR (BasicVSR-style), on clips `[B, T, h, w, 3]`.

  Backward pass (t = T-1 .. 0) then forward pass (t = 0 .. T-1), each one `PropagationCell`
  applied frame after frame (unrolled, or `nn.scan`ned; the hidden state starts at zero at the
  clip's ends). Per frame, both directions' features are fused by a 1x1 conv, upsampled by pixel
  shuffle and mapped to an RGB residual added to the bicubic upsampling of the frame.

  Output frame t depends on every frame of the clip, so upscaling a long video in chunks is
  approximate at chunk edges; `jaxres.sr.upscale` overlaps chunks to keep the error small (see there).

  Attributes:
    scale: 2, 3 or 4.
    features: hidden width.
    num_blocks: residual blocks per propagation step and direction.
    align: "flow" or "none" (see the module notes).
    unroll: unroll the time loop (compile time grows with T) instead of `nn.scan` (one compiled
      step). Both give the same parameters and outputs; on CPU XLA runs convolutions inside a
      scan's loop, and their gradients, many times slower (measured 37 s vs ~2 s for a training
      step of 8 x 5 x 32 x 32), so unrolling is the default; set False on accelerators for long T.
    dtype: compute dtype; the output is float32.
    param_dtype: parameter dtype.
    conv_lowering: the 3x3 convolutions' lowering (`jaxres.models.conv.LOWERINGS`; "auto": Winograd
      on CPU for frames of up to `WINOGRAD_2D_MAX_PIXELS` pixels, XLA's convolution otherwise).
  """

  scale: int = 4
  features: int = 64
  num_blocks: int = 30
  align: str = "flow"
  unroll: bool = True
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  conv_lowering: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train
    _check_scale(self.scale)
    if self.align not in ("flow", "none"):
      raise ValueError(f"align must be 'flow' or 'none', got {self.align!r}.")
    if x.ndim != 5:
      raise ValueError(f"RecurrentVSR takes clips [B, T, h, w, 3], got shape {x.shape}.")
    conv = _conv_factory(self.dtype, self.param_dtype, self.conv_lowering)
    b, t, h, w, _ = x.shape
    frames = jnp.asarray(x, self.dtype)
    # Neighbour of each step = the frame the hidden state comes from (the frame itself at the ends,
    # where the hidden state is zero anyway).
    next_frames = jnp.concatenate([frames[:, 1:], frames[:, -1:]], axis=1)
    prev_frames = jnp.concatenate([frames[:, :1], frames[:, :-1]], axis=1)

    def direction(name, reverse, neighbours):
      if not self.unroll:
        scan = nn.scan(
          PropagationCell,
          variable_broadcast="params",
          split_rngs={"params": False},
          in_axes=1,
          out_axes=1,
          reverse=reverse,
        )
        cell = scan(self.features, self.num_blocks, self.align, conv, name=name)
        return cell(jnp.zeros((b, h, w, self.features), self.dtype), (frames, neighbours))[1]
      # Unrolled: the same cell (shared parameters, same tree as the scan) called once per frame.
      cell = PropagationCell(self.features, self.num_blocks, self.align, conv, name=name)
      hidden = jnp.zeros((b, h, w, self.features), self.dtype)
      outputs = [None] * t
      for i in reversed(range(t)) if reverse else range(t):
        hidden, outputs[i] = cell(hidden, (frames[:, i], neighbours[:, i]))
      return jnp.stack(outputs, axis=1)

    backward = direction("backward", True, next_frames)
    forward = direction("forward", False, prev_frames)
    y = jnp.concatenate([backward, forward], axis=-1).reshape(b * t, h, w, 2 * self.features)
    y = nn.leaky_relu(
      nn.Conv(self.features, (1, 1), dtype=self.dtype, param_dtype=self.param_dtype, name="fusion")(
        y
      ),
      0.1,
    )
    y = Upsampler(
      self.scale, conv, act=functools.partial(nn.leaky_relu, negative_slope=0.1), name="upsample"
    )(y)
    y = nn.leaky_relu(conv(64, name="hr_conv")(y), 0.1)
    y = conv(3, kernel_init=nn.initializers.zeros, name="tail")(y)
    y = y.reshape(b, t, *y.shape[1:]).astype(jnp.float32)
    return bicubic_upsample(jnp.asarray(x, jnp.float32), self.scale) + y


edsr_baseline = functools.partial(EDSR, num_blocks=16, features=64, res_scale=1.0)
edsr = functools.partial(EDSR, num_blocks=32, features=256, res_scale=0.1)
edsr_bicubic_baseline = functools.partial(BicubicEDSR, num_blocks=16, features=64, res_scale=1.0)
edsr_bicubic = functools.partial(BicubicEDSR, num_blocks=32, features=256, res_scale=0.1)
edsr_bicubic_tiny = functools.partial(BicubicEDSR, num_blocks=2, features=16)
vdsr = functools.partial(VDSR, depth=20, features=64)
vdsr_tiny = functools.partial(VDSR, depth=4, features=16)
recurrent_vsr = functools.partial(RecurrentVSR, features=64, num_blocks=30)
recurrent_vsr_tiny = functools.partial(RecurrentVSR, features=16, num_blocks=1)
