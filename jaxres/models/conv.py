"""Convolution lowerings: the same convolution computed as XLA's native op or as matrix products.

XLA's CPU convolutions run at a fraction of its matmul speed (`benchmarks/convs.py` measures it),
so on CPU `Conv` rewrites each convolution of the residual networks into dots that XLA runs well;
on GPU/TPU it keeps XLA's native convolution. Every lowering computes the same function (forward and gradients, up to float
rounding; see tests/test_conv_lowering.py) and `Conv` keeps `nn.Conv`'s parameter tree (`kernel` of
shape `kernel_size + (in_features, features)`, optional `bias`), so weights load either way.

Lowerings (`conv(x, kernel, ..., lowering=...)`):
  native:    `lax.conv_general_dilated`.
  winograd:  Winograd minimal filtering F(m, 3) (Lavin & Gray 2016) on every axis whose kernel is 3
             with stride 1 and padding 1, the other axes having kernel 1: input and kernel tiles are
             transformed by small constant matrices, multiplied as one batched dot over channels,
             and transformed back. F(2, 3) does 4 products per 2 outputs instead of 6 on each such axis
             (2.25x fewer multiply-adds for 3x3, 3.4x for 3x3x3), F(4, 3) 6 per 4 instead of 12.
  temporal:  3x1x1 kernels at stride 1: XLA's 2D convolution over (time, pixels) forward, Winograd
             under differentiation (forward and gradients).
  im2col:    the kernel's taps gathered into channels, then one dot (strided and stem convs).
  pointwise: a strided slice, then one dot (1x1 and 1x1x1 kernels).
  depthwise: for depthwise convolutions (one group per input channel): one strided view of the
             padded input per tap, multiplied by that tap's per-channel weights and summed (a
             fused elementwise loop, no dot).
  auto:      `native` off CPU; on CPU `pointwise`, `winograd` or `im2col` by kernel shape, and
             for Winograd by how many tiles there are per output channel and, for 2D kernels, by
             the image's size (see `choose_lowering`).

Example:
  >>> y = conv(x, kernel, strides=(1, 1, 1), padding=((1, 1),) * 3)   # x [B,T,H,W,C]
  >>> model = models.get("r3d_18", conv_lowering="native")
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Padding = Union[str, Sequence[tuple[int, int]]]
# Above this many pixels per image, `auto` leaves 2D convolutions to XLA: its CPU 2D convolution
# (Eigen's spatial convolution) runs large images at near its matmul speed, while Winograd's
# transformed tiles outgrow the cache. 3x3 64 -> 64 convolutions with Winograd F(4, 3) against XLA's
# (2026-12-07, a 2-core Xeon): 32x56x56 25.7 / 55.2 ms, 1x180x320 14 / 20 ms each in a chain of 20
# (16-17 / 18 alone), but 1x360x640 71 / 63 ms and 1x720x1280 300 / 250 ms; 64 -> 256 at 5x180x320
# 225 / 332 ms, at 5x360x640 2000 / 1300 ms. BasicVSR's and EDSR's calls at 180x320 ran 8-12%
# faster. Video models' 1x3x3 convolutions are 3D kernels and keep Winograd (XLA's 3D convolution
# is several times slower, `benchmarks/convs.py`).
WINOGRAD_2D_MAX_PIXELS = 2**17
# From this many pixels per frame and input channels, `auto` computes stride-1 3x1x1 convolutions'
# forward passes with XLA's 2D convolution over (time, pixels) (`temporal_conv`). Below either,
# Winograd's tiles ran as fast or faster, alone (1152 -> 256 channels at 2x4x14x14: 6 against 13 ms)
# or in the models (r2plus1d_r50's 64-channel ones at 56x56 and 28x28, SlowFast's fast pathway's at
# 8-32 channels: no faster forward, within the run-to-run spread of 5-10%); r2plus1d_18's forward,
# whose layer1 and layer2 ones qualify, ran 8-10% faster (2026-12-08, 2-core AMD EPYC).
TEMPORAL_MIN_PIXELS = 28 * 28
TEMPORAL_MIN_CHANNELS = 128
LOWERINGS = ("auto", "native", "winograd", "temporal", "im2col", "pointwise", "depthwise")
# Lowerings that take grouped convolutions (`feature_group_count > 1`); the matmul lowerings
# (winograd, im2col, pointwise) are for ungrouped ones, and a model pinned to one of them gives its
# grouped convolutions `choose_grouped_lowering`'s choice.
GROUPED_LOWERINGS = ("native", "depthwise")

# Winograd F(m, 3) matrices (Lavin & Gray 2016): y = A^T [(G g) * (B^T d)] for one axis.
_WINOGRAD = {
  2: dict(
    BT=np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float64),
    G=np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float64),
    AT=np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64),
  ),
  4: dict(
    BT=np.array(
      [
        [4, 0, -5, 0, 1, 0],
        [0, -4, -4, 1, 1, 0],
        [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 4, 0, -5, 0, 1],
      ],
      np.float64,
    ),
    G=np.array(
      [
        [1 / 4, 0, 0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0, 0, 1],
      ],
      np.float64,
    ),
    AT=np.array(
      [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
      np.float64,
    ),
  ),
}


def _normalise(x_ndim: int, kernel_shape, strides, padding):
  """(strides, explicit padding pairs) for the spatial axes of an `x` of rank `x_ndim`."""
  spatial = x_ndim - 2
  strides = (strides,) * spatial if isinstance(strides, int) else tuple(strides)
  if isinstance(padding, str):
    return strides, padding.upper()
  padding = tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)
  return strides, padding


def _explicit_padding(x_shape, kernel_shape, strides, padding):
  if isinstance(padding, str):
    return tuple(lax.padtype_to_pads(x_shape[1:-1], kernel_shape[:-2], strides, padding))
  return padding


def _dimension_numbers(ndim: int) -> tuple[str, str, str]:
  spatial = "DHW"[-(ndim - 2) :] if ndim <= 5 else None
  if spatial is None:
    raise ValueError(f"Inputs of rank {ndim} are not supported.")
  return ("N" + spatial + "C", spatial + "IO", "N" + spatial + "C")


def native_conv(x, kernel, strides, padding, feature_group_count: int = 1):
  """`lax.conv_general_dilated` with channels-last dimension numbers."""
  return lax.conv_general_dilated(
    x,
    kernel,
    strides,
    padding,
    dimension_numbers=_dimension_numbers(x.ndim),
    feature_group_count=feature_group_count,
  )


def depthwise_conv(x, kernel, strides, padding):
  """A depthwise convolution (`kernel [*k, 1, C]`, one group per channel) as a sum over taps.

  Each tap is one strided view of the padded input times that tap's `C` weights; XLA fuses the
  views, products and sums into one elementwise loop over the output. The gradients are written
  out (`_depthwise_grads`): autodiff of the taps made one padded full-size input gradient per tap
  and one reduction per tap's kernel gradient (x3d_m's train step: 41% of its op time in pad+slice
  fusions, 31% in reductions).
  """
  channels = kernel.shape[-1]
  if kernel.shape[-2] != 1 or x.shape[-1] != channels:
    raise ValueError(
      f"depthwise_conv needs a [*k, 1, C] kernel for C = {x.shape[-1]} input "
      f"channels, got {kernel.shape}."
    )
  return _depthwise(x, kernel, tuple(strides), tuple(tuple(p) for p in padding))


def _depthwise_taps(x, kernel, strides, padding):
  """sum over taps of (strided view of the padded `x`) * (the tap's per-channel weights)."""
  kernel_spatial = kernel.shape[:-2]
  out_shape = _output_shape(x.shape, kernel_spatial, strides, padding)
  if any(p != (0, 0) for p in padding):
    x = jnp.pad(x, ((0, 0), *padding, (0, 0)))
  y = None
  for offsets, view in _tap_views(x, kernel_spatial, strides, out_shape):
    term = view * kernel[offsets + (0,)]
    y = term if y is None else y + term
  return y


def _tap_views(x, kernel_spatial, strides, out_shape):
  """(tap offsets, the strided view of padded `x` that tap reads) for every tap, row-major."""
  for offsets in np.ndindex(*kernel_spatial):
    view = x[
      (slice(None),)
      + tuple(slice(j, j + s * (n - 1) + 1, s) for j, s, n in zip(offsets, strides, out_shape))
    ]
    yield offsets, view


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _depthwise(x, kernel, strides, padding):
  return _depthwise_taps(x, kernel, strides, padding)


def _depthwise_fwd(x, kernel, strides, padding):
  return _depthwise_taps(x, kernel, strides, padding), (x, kernel)


def _depthwise_grads(strides, padding, residuals, dy):
  """(input gradient, kernel gradient) of `_depthwise_taps`.

  The input gradient is itself a depthwise convolution: the output gradient, spread out by the
  strides (interior zeros) and padded so that every input position sees its taps, convolved with
  the flipped kernel; one fused loop over the input, like the forward (x3d_m's [4, 16, 28, 28,
  108] conv: 53 ms against 120-180 ms for autodiff's pads and adds, the machine loaded). The kernel
  gradient of tap k is the sum over positions of (tap k's view of the padded input) * dy, per
  channel.
  """
  x, kernel = residuals
  kernel_spatial = kernel.shape[:-2]
  out_shape = dy.shape[1:-1]
  pads = [(0, 0, 0)]
  for n, k, s, (lo, _), m in zip(x.shape[1:-1], kernel_spatial, strides, padding, out_shape):
    low = k - 1 - lo
    pads.append((low, n + k - 1 - ((m - 1) * s + 1) - low, s - 1))
  pads.append((0, 0, 0))
  spread = lax.pad(dy, jnp.zeros((), dy.dtype), pads)
  flipped = kernel[tuple(slice(None, None, -1) for _ in kernel_spatial)]
  dx = _depthwise_taps(spread, flipped, (1,) * len(kernel_spatial), ((0, 0),) * len(strides))
  xp = jnp.pad(x, ((0, 0), *padding, (0, 0))) if any(p != (0, 0) for p in padding) else x
  dk = _tap_sums([view for _, view in _tap_views(xp, kernel_spatial, strides, out_shape)], dy)
  return dx.astype(x.dtype), dk.reshape(kernel.shape).astype(kernel.dtype)


_depthwise.defvjp(_depthwise_fwd, _depthwise_grads)


def _tap_sums(views, dy):
  """[taps, C]: per channel, the sum over positions of each view * dy (a depthwise kernel gradient).

  One variadic reduction makes every tap's sum over the batch and the first spatial axis in a
  single loop over the views and `dy`, then each tap's [rest of space, C] is summed into C.
  Summing each tap on its own read the input and `dy` once per tap: 2.7-5.3x slower at x3d_m's and
  csn_r101's shapes (x3d_m's [4, 16, 28, 28, 108] conv: 39 against 166 ms;
  `benchmarks/depthwise_grads.py`).
  """
  acc = jnp.promote_types(dy.dtype, jnp.float32)  # bf16 products summed in float32
  row = math.prod(dy.shape[2:])
  products = tuple((view.astype(acc) * dy.astype(acc)).reshape(-1, row) for view in views)
  zeros = tuple(jnp.zeros((), acc) for _ in products)
  sums = lax.reduce(products, zeros, lambda a, b: tuple(u + v for u, v in zip(a, b)), (0,))
  return jnp.stack([s.reshape(-1, dy.shape[-1]).sum(0) for s in sums])


def _dot_channels(x, kernel2d):
  """x [..., K] @ kernel2d [K, O] -> [..., O] as one 2D dot (what XLA's CPU runs fastest)."""
  lead = x.shape[:-1]
  y = jnp.dot(x.reshape(-1, x.shape[-1]), kernel2d, preferred_element_type=x.dtype)
  return y.reshape(*lead, kernel2d.shape[-1])


def pointwise_conv(x, kernel, strides, padding):
  """A 1x1(x1) convolution: strided slice, then one dot over channels."""
  if any(k != 1 for k in kernel.shape[:-2]):
    raise ValueError(f"pointwise_conv needs a 1x..x1 kernel, got {kernel.shape}.")
  if any(p != (0, 0) for p in padding):
    x = jnp.pad(x, ((0, 0), *padding, (0, 0)))
  if any(s != 1 for s in strides):
    x = x[(slice(None),) + tuple(slice(None, None, s) for s in strides)]
  return _dot_channels(x, kernel.reshape(kernel.shape[-2:]))


def _output_shape(x_shape, kernel_spatial, strides, padding):
  return tuple(
    (n + lo + hi - k) // s + 1
    for n, k, s, (lo, hi) in zip(x_shape[1:-1], kernel_spatial, strides, padding)
  )


def im2col_conv(x, kernel, strides, padding):
  """Any convolution as dots: the kernel's taps gathered into channels (im2col), then a dot.

  With many channels (16 or more) every tap is one strided view of the padded input, and all of
  them are joined by one concatenate that XLA fuses into a single pass (r3d_18's strided 3x3x3
  conv ran 20% faster forward than gathering one axis at a time). With few channels (the stems'
  3) runs of `C` values are too short to copy well, so the taps are gathered one axis at a time,
  last axis first, copying runs of `k * C` values. A leading (time) axis with several taps and
  stride 1 is not gathered at all (`_time_taps_in_output`, `_time_taps_as_dots`).
  """
  kernel_spatial = kernel.shape[:-2]
  out_shape = _output_shape(x.shape, kernel_spatial, strides, padding)
  x = jnp.pad(x, ((0, 0), *padding, (0, 0)))
  if len(kernel_spatial) > 1 and kernel_spatial[0] > 1 and strides[0] == 1:
    # Every padded frame is multiplied by every time tap's kernel; that wastes (kt - 1) frames'
    # products, worth it when they are few (r3d stem: 18 frames for 16, not layer4: 4 for 2).
    extra_frames = x.shape[1] - out_shape[0]
    lowered = _time_taps_in_output if 4 * extra_frames <= out_shape[0] else _time_taps_as_dots
    return lowered(x, kernel, strides, out_shape)
  cols = _gather_taps(x, kernel_spatial, strides, out_shape)
  return _dot_channels(cols, kernel.reshape(-1, kernel.shape[-1]))


def _time_taps_in_output(x, kernel, strides, out_shape):
  """Padded `x`; the (h, w) taps gathered per frame, one dot against all time taps' kernels side
  by side (`[taps * C, kt * O]`), then each output frame sums its kt shifted slices.

  For r3d_18's stem (3x7x7 on 3 channels) this ran 15% faster forward and a third faster with
  BatchNorm's gradient than `_time_taps_as_dots`: one pass over the gathered columns instead of
  three, and the output stays batch-major, so no transposes and BatchNorm's reductions stay in
  YNNPACK (over the time-major output XLA ran them as reduce-windows at ~1 GB/s).
  """
  kernel_spatial, features = kernel.shape[:-2], kernel.shape[-1]
  kt = kernel_spatial[0]
  cols = _gather_taps(x, kernel_spatial[1:], strides[1:], out_shape[1:])  # [B, T + kt - 1, ...]
  wide = jnp.moveaxis(kernel.reshape(kt, -1, features), 0, 1).reshape(-1, kt * features)
  z = _dot_channels(cols, wide).reshape(*cols.shape[:-1], kt, features)
  y = None
  for j in range(kt):
    part = lax.index_in_dim(lax.slice_in_dim(z, j, j + out_shape[0], axis=1), j, -2, False)
    y = part if y is None else y + part
  return y


def _time_taps_as_dots(x, kernel, strides, out_shape):
  """Padded `x` laid out time-major, so each time tap is a contiguous slice of the gathered
  columns; one dot per time tap, summed (r3d_18's layer4 at 2 frames: 1.5x faster forward and
  1.8x with the gradients than `_time_taps_in_output`, which would multiply 4 frames for 2)."""
  kernel_spatial = kernel.shape[:-2]
  cols = _gather_taps(jnp.moveaxis(x, 1, 0), kernel_spatial[1:], strides[1:], out_shape[1:])
  y = None
  for j in range(kernel_spatial[0]):
    frames = lax.slice_in_dim(cols, j, j + out_shape[0], axis=0)
    part = _dot_channels(frames, kernel[j].reshape(-1, kernel.shape[-1]))
    y = part if y is None else y + part
  return jnp.moveaxis(y, 0, 1)


def _gather_taps(x, kernel_spatial, strides, out_shape):
  """Padded `x [lead, *spatial, C]` -> `[lead, *out_shape, prod(kernel_spatial) * C]`, the channel
  axis in the order of `kernel.reshape(-1, O)`: taps row-major over the kernel's axes, then `C`."""
  first = x.ndim - 1 - len(kernel_spatial)  # the first spatial axis of x
  if x.shape[-1] >= 16:
    taps = []
    for offsets in np.ndindex(*kernel_spatial):
      view = tuple(slice(j, j + s * (n - 1) + 1, s) for j, s, n in zip(offsets, strides, out_shape))
      taps.append(x[(slice(None),) * first + view])
    return taps[0] if len(taps) == 1 else jnp.concatenate(taps, axis=-1)
  for axis in reversed(range(len(kernel_spatial))):
    k, s, n = kernel_spatial[axis], strides[axis], out_shape[axis]
    taps = [lax.slice_in_dim(x, j, j + s * (n - 1) + 1, s, axis=first + axis) for j in range(k)]
    x = taps[0] if k == 1 else jnp.concatenate(taps, axis=-1)
  return x


def winograd_axes(kernel_spatial, strides, padding) -> tuple[int, ...] | None:
  """The spatial axes Winograd F(m, 3) applies to, or None if the convolution does not fit it.

  Fits when every spatial axis either has kernel 3, stride 1 and padding of 0 to 2 on each side (a
  Winograd axis), or kernel 1 and no padding (any stride), and at least one axis is a Winograd axis.
  """
  axes = []
  for i, (k, s, p) in enumerate(zip(kernel_spatial, strides, padding)):
    if k == 3 and s == 1 and all(0 <= q <= 2 for q in p):
      axes.append(i)
    elif not (k == 1 and tuple(p) == (0, 0)):
      return None
  return tuple(axes) or None


def _combine(parts, row):
  """sum_j row[j] * parts[j], skipping zero coefficients (constants fold into fused loops)."""
  out = None
  for c, part in zip(row, parts):
    if c == 0:
      continue
    # A Python float is weakly typed, so bfloat16 parts stay bfloat16 (a numpy scalar would not).
    term = part if c == 1 else (-part if c == -1 else part * float(c))
    out = term if out is None else out + term
  return out


def _split(x, axis, size, count, stride):
  """`size` strided views of `x` along `axis`: view j holds x[j + stride * i] for i < count."""
  return [lax.slice_in_dim(x, j, j + stride * (count - 1) + 1, stride, axis) for j in range(size)]


def winograd_conv(x, kernel, strides, padding, tile: int | Sequence[int] = 2):
  """A convolution by Winograd F(tile, 3) on every axis `winograd_axes` finds.

  At stride 1 its gradient is written out (`_winograd_grads`): both gradients start from the
  output gradient taken back through the output transform, once.

  Args:
    x: `[B, *spatial, C]`.
    kernel: `[*kernel_spatial, C, O]`, each spatial extent 3 (Winograd axis) or 1.
    strides: per spatial axis; 1 on Winograd axes.
    padding: explicit pairs; 0 to 2 on each side of Winograd axes, (0, 0) elsewhere.
    tile: outputs per tile, 2 or 4, for all Winograd axes or one per Winograd axis. 4 does fewer
      products but rounds a little more.

  Returns:
    `[B, *out_spatial, O]`, the convolution.
  """
  kernel_spatial = kernel.shape[:-2]
  axes = winograd_axes(kernel_spatial, strides, padding)
  if axes is None:
    raise ValueError(
      f"Kernel {kernel.shape}, strides {strides}, padding {padding} do not fit Winograd F(m, 3)."
    )
  tiles = (tile,) * len(axes) if isinstance(tile, int) else tuple(tile)
  padding = tuple(tuple(p) for p in padding)
  if all(s == 1 for s in strides):
    return _winograd_unit_stride(x, kernel, padding, tiles)
  return _winograd(x, kernel, tuple(strides), padding, tiles)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _winograd_unit_stride(x, kernel, padding, tiles):
  return _winograd(x, kernel, (1,) * (x.ndim - 2), padding, tiles)


def _winograd_unit_stride_fwd(x, kernel, padding, tiles):
  return _winograd_unit_stride(x, kernel, padding, tiles), (x, kernel)


def _winograd_unit_stride_bwd(padding, tiles, residuals, dy):
  x, kernel = residuals
  return _winograd_grads(x, kernel, padding, tiles, dy)


_winograd_unit_stride.defvjp(_winograd_unit_stride_fwd, _winograd_unit_stride_bwd)


def temporal_conv(x, kernel, strides, padding):
  """A stride-1 convolution along the first spatial axis only (kernel `(3, 1, ..., 1)`): at
  inference XLA's 2D convolution over (time, pixels), under differentiation Winograd F(m, 3).

  For the temporal convolutions of (2+1)D models. Folding the other spatial axes into one makes
  them a 3x1 convolution of a 2D image, which XLA's CPU gives to YNNPACK's convolution:
  r2plus1d_18's layer1 temporal convolution (144 -> 64 channels at 4x16x56x56) ran forward in 27
  ms against Winograd's 44 ms, 420 GFLOP/s (2026-12-08, a 2-core AMD EPYC); with few pixels per
  frame and many channels it is slower (1152 -> 256 at 2x4x14x14: 13 against 6 ms), hence
  `choose_lowering`'s thresholds. Under differentiation (`jax.grad`, `jax.vjp`) both passes are
  Winograd's (`winograd_conv`): with YNNPACK's forward before Winograd's written-out gradients,
  forward and backward together ran as fast at the layer1 shape (104 against 103 ms) and 2x slower
  at the stem's 45 -> 64 channels (99 against 49 ms).

  Args:
    x: `[B, T, *spatial, C]`.
    kernel: `[3, 1, ..., 1, C, O]`.
    strides: all 1.
    padding: explicit pairs; 0 to 2 on each side in time, (0, 0) elsewhere.

  Returns:
    `[B, T', *spatial, O]`, the convolution.

  Example:
    >>> y = temporal_conv(x, kernel, (1, 1, 1), ((1, 1), (0, 0), (0, 0)))   # kernel [3,1,1,C,O]
  """
  if any(s != 1 for s in strides) or winograd_axes(kernel.shape[:-2], strides, padding) != (0,):
    raise ValueError(
      f"temporal_conv takes kernels (3, 1, ..., 1) at stride 1 with time padding 0 to 2, got "
      f"kernel {kernel.shape}, strides {strides}, padding {padding}."
    )
  padding = tuple(tuple(p) for p in padding)
  return _temporal(x, kernel, padding, default_tiles(x.shape, (0,)))


def _temporal_forward(x, kernel, padding):
  b, t = x.shape[:2]
  y = lax.conv_general_dilated(
    x.reshape(b, t, -1, x.shape[-1]),
    kernel.reshape(kernel.shape[0], 1, *kernel.shape[-2:]),
    (1, 1),
    (padding[0], (0, 0)),
    dimension_numbers=("NHWC", "HWIO", "NHWC"),
  )
  return y.reshape(b, y.shape[1], *x.shape[2:-1], kernel.shape[-1])


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _temporal(x, kernel, padding, tiles):
  return _temporal_forward(x, kernel, padding)


_temporal.defvjp(_winograd_unit_stride_fwd, _winograd_unit_stride_bwd)


def _winograd(x, kernel, strides, padding, ms):
  """`winograd_conv`'s computation, with validated arguments and one tile size per Winograd axis."""
  axes = winograd_axes(kernel.shape[:-2], strides, padding)
  v, meta = _input_transform(x, axes, strides, padding, ms)
  u = _kernel_transform(kernel, len(axes), ms).astype(v.dtype)
  # One batched product over the transformed positions: [P, N, C] x [P, C, O] -> [P, N, O].
  prod = lax.dot_general(v, u, (((2,), (1,)), ((0,), (0,))), preferred_element_type=v.dtype)
  return _output_transform(prod, *meta)


def _input_transform(x, axes, strides, padding, ms):
  """(v [P, N, C], the static arguments of `_output_transform` after `prod`): B^T d per axis."""
  # Axes of kernel 1: subsample the input by their stride (the kernel drops them).
  if any(s != 1 for s in strides):
    x = x[(slice(None),) + tuple(slice(None, None, s) for s in strides)]
  out_shape = [x.shape[1 + a] + sum(padding[a]) - 2 for a in axes]
  tiles = [-(-n // m) for n, m in zip(out_shape, ms)]
  # Pad each Winograd axis by its low padding in front and up to tiles * m + 2 in all.
  pads = [(0, 0)] * x.ndim
  for a, n, t, m in zip(axes, out_shape, tiles, ms):
    lo = padding[a][0]
    pads[1 + a] = (lo, t * m + 2 - x.shape[1 + a] - lo)
  x = jnp.pad(x, pads)
  # Each axis' transform adds a leading axis of size alpha = m + 2.
  v = x
  for a, t, m in zip(axes, tiles, ms):
    axis = v.ndim - x.ndim + 1 + a
    parts = _split(v, axis, m + 2, t, m)
    v = jnp.stack([_combine(parts, row) for row in _WINOGRAD[m]["BT"]], axis=0)
  batch_shape = v.shape[len(axes) : -1]
  v = v.reshape(-1, int(np.prod(batch_shape)), x.shape[-1])
  return v, (x.ndim - 2, tuple(axes), tuple(ms), tuple(batch_shape), tuple(out_shape))


def _kernel_transform(kernel, num_axes, ms):
  """G g on every Winograd axis, as one matmul -> `u [P, C, O]` in the input transform's order.

  `_kernel_transform_matrix(ms)` [P, 3^n] times the kernel's taps [3^n, C * O]. XLA fused the
  per-axis stacks of combinations it replaces into one loop that re-read the taps for every
  position; alternated in one process, the matmul made r3d_18 / mc3_18 / r2plus1d_18's forward
  2% / 1% / 0% and their train steps 1% / 3% / 1% faster.
  """
  taps = kernel.reshape(3**num_axes, -1)
  matrix = jnp.asarray(_kernel_transform_matrix(tuple(ms)), taps.dtype)
  u = jnp.dot(matrix, taps, preferred_element_type=taps.dtype)
  return u.reshape(-1, *kernel.shape[-2:])


@functools.lru_cache(maxsize=None)
def _kernel_transform_matrix(ms):
  """`[P, 3^n]`: row (a_{n-1}, .., a_0) (the last axis outermost, as the input transform orders
  positions), column (j_0, .., j_{n-1}) (the kernel's taps row-major), entry prod_i G_i[a_i, j_i]."""
  matrix = np.ones((1, 1))
  for m in ms:
    g = _WINOGRAD[m]["G"]
    matrix = np.einsum("aj,rc->arcj", g, matrix).reshape(g.shape[0] * matrix.shape[0], -1)
  return matrix.astype(np.float32)


def _winograd_grads(x, kernel, padding, ms, dy):
  """(input gradient, kernel gradient) of a unit-stride Winograd convolution, in its own domain.

  With `v` the transformed input, `u` the transformed kernel and `prod[p] = v[p] u[p]`, the output
  gradient taken back through the output transform, `dprod`, serves both: the kernel gradient is
  `v[p]^T dprod[p]` (then `G^T`), the input gradient `dprod[p] u[p]^T` taken back through the input
  transform (autodiff of its strided slices: pads and adds that XLA fuses into one pass). An earlier
  version computed the input gradient as the Winograd convolution of `dy` with the flipped kernel,
  which transforms `dy` anew; this one skips that transform (and the output transform of the
  result). Alternated in one process, r2plus1d_18's layer1 block (64 -> 144 -> 64 channels at
  16x56x56) ran forward+backward in 1335 ms instead of 1589 and layer2's in 435 instead of 487
  (torch: 1431 and 588); the whole r2plus1d_18 train step 5.50 s instead of 6.06 (medians of 6).

  The kernel gradient's product contracts the long tile axis. XLA's CPU runs that form
  (contraction not last on the left) outside YNNPACK, well with 128 or more channels (145-210
  GFLOP/s) but at ~60 with 64 or fewer in and out (r3d_18 / mc3_18 layer1). There `v` is
  transposed once and the tiles split into two batch halves, which YNNPACK runs at ~105 (r3d_18
  layer1, [216, 3136, 64]: 93 -> 53 ms with the transpose; the whole train step 9% faster); with
  more channels that form measured slower. The barrier keeps XLA from folding the transpose back
  into the product.
  """
  strides = (1,) * (x.ndim - 2)
  axes = winograd_axes(kernel.shape[:-2], strides, padding)
  # The transform's static arguments of `_output_transform` come back as (non-array) aux data.
  v, input_transform_vjp, meta = jax.vjp(
    lambda x: _input_transform(x, axes, strides, padding, ms), x, has_aux=True
  )
  positions, count, cin = v.shape
  cout = kernel.shape[-1]
  dprod = _output_transform_bwd(*meta, (positions, count, cout), dy)[0]
  u, kernel_transform_vjp = jax.vjp(
    lambda k: _kernel_transform(k, len(axes), ms).astype(v.dtype), kernel
  )
  dv = lax.dot_general(dprod, u, (((2,), (2,)), ((0,), (0,))), preferred_element_type=v.dtype)
  if max(cin, cout) <= 64 and count % 2 == 0:
    v_t = lax.optimization_barrier(jnp.swapaxes(v.reshape(positions, 2, count // 2, cin), -1, -2))
    du = lax.dot_general(
      v_t,
      dprod.reshape(positions, 2, count // 2, cout),
      (((3,), (2,)), ((0, 1), (0, 1))),
      preferred_element_type=v.dtype,
    ).sum(1)
  else:
    du = lax.dot_general(v, dprod, (((1,), (1,)), ((0,), (0,))), preferred_element_type=v.dtype)
  return input_transform_vjp(dv)[0], kernel_transform_vjp(du)[0]


def _output_passes(ms, kron_first: bool = True):
  """(done, matrix) of each pass of `_output_transform`, in the order they run.

  Each pass multiplies `matrix [m, alpha]` into the outermost transformed axis still left, batched
  over the `done` output offsets already made. With two or more Winograd axes the first pass
  covers the two outermost at once with their Kronecker product (`[m_a * m_b, alpha_a * alpha_b]`,
  the same result in the same order): one read and write of the products instead of two.
  """
  ats = [_WINOGRAD[m]["AT"] for m in reversed(ms)]
  if kron_first and len(ats) >= 2:
    ats = [np.kron(ats[0], ats[1])] + ats[2:]
  passes, done = [], 1
  for at in ats:
    passes.append((done, at))
    done *= at.shape[0]
  return passes


def _batched_matmul(matrix, y):
  """`matrix [a, b]` times `y [batch, b, rest]` for every batch entry -> `[batch, a, rest]`."""
  lhs = jnp.broadcast_to(jnp.asarray(matrix, y.dtype), (y.shape[0],) + matrix.shape)
  return lax.dot_general(lhs, y, (((2,), (1,)), ((0,), (0,))), preferred_element_type=y.dtype)


def _interleave_perm(spatial, axes):
  """Permutation [m_last .. m_first, B, s_0 .. s_k, O] -> [B, s_0, (m_0), .., O]."""
  lead = len(axes)
  perm = [lead]
  for i in range(spatial):
    perm.append(lead + 1 + i)
    if i in axes:
      perm.append(lead - 1 - axes.index(i))
  return perm + [lead + 1 + spatial]


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4, 5))
def _output_transform(prod, spatial, axes, ms, batch_shape, out_shape):
  """A^T on every Winograd axis of the products `prod [P, N, O]`, as batched matmuls.

  The positions `P` are the alphas of the last Winograd axis outermost, so each pass contracts
  the outermost alpha still left, batched over the output offsets already made: [done, alpha,
  rest] -> [done, m, rest]; the first pass takes the two outermost axes at once (`_output_passes`:
  whole r3d_18 / mc3_18 / r2plus1d_18 train steps 3%, 3% and 8% faster than one pass per axis).
  These are plain matmuls that XLA runs at memory speed, where a stack of strided combinations ran
  2-3x slower (r3d_18 layer1). One transpose at the end interleaves each axis' m outputs with its
  tiles. Its VJP (below) is written out because autodiff of these matmuls puts the alpha axis last
  and then transposes the whole gradient back, once per pass.
  """
  y = prod
  for done, at in _output_passes(ms):
    y = _batched_matmul(at, y.reshape(done, at.shape[1], -1))
  y = y.reshape(tuple(reversed(ms)) + batch_shape + (prod.shape[-1],))
  y = jnp.transpose(y, _interleave_perm(spatial, axes))
  sizes = [n * ms[axes.index(i)] if i in axes else n for i, n in enumerate(batch_shape[1:])]
  y = y.reshape((batch_shape[0], *sizes, prod.shape[-1]))
  crop = (slice(None),) + tuple(
    slice(0, out_shape[axes.index(i)]) if i in axes else slice(None) for i in range(spatial)
  )
  return y[crop]


def _output_transform_fwd(prod, spatial, axes, ms, batch_shape, out_shape):
  return _output_transform(prod, spatial, axes, ms, batch_shape, out_shape), prod.shape


def _output_transform_bwd(spatial, axes, ms, batch_shape, out_shape, prod_shape, dy):
  # The transpose of each step, in reverse: un-crop (zeros), un-interleave, A (= (A^T)^T) per pass.
  pads = (
    [(0, 0)]
    + [
      (0, n * ms[axes.index(i)] - out_shape[axes.index(i)]) if i in axes else (0, 0)
      for i, n in enumerate(batch_shape[1:])
    ]
    + [(0, 0)]
  )
  dy = jnp.pad(dy, pads)
  perm = _interleave_perm(spatial, axes)
  interleaved = [batch_shape[0]]
  for i, n in enumerate(batch_shape[1:]):
    interleaved += [n, ms[axes.index(i)]] if i in axes else [n]
  dy = dy.reshape(interleaved + [prod_shape[-1]])
  dy = jnp.transpose(dy, np.argsort(perm))
  for done, at in reversed(_output_passes(ms)):
    dy = _batched_matmul(at.T, dy.reshape(done, at.shape[0], -1))
  return (dy.reshape(prod_shape),)


_output_transform.defvjp(_output_transform_fwd, _output_transform_bwd)


def default_tiles(x_shape: Sequence[int], axes: Sequence[int]) -> tuple[int, ...]:
  """Winograd tile per axis: F(4, 3) on axes of 7 or more, F(2, 3) on shorter ones.

  An axis of n outputs in tiles of m has ceil(n / m) * (m + 2) transformed positions (n = 7: 12
  with F(4, 3), 16 with F(2, 3); n = 56: 84 and 112). On all three axes of r3d_18's
  layer1 (16x56x56) it transforms the input to 3.4x its size instead of 4.5x with F(2, 3) in time
  and does 25% fewer products: the whole r3d_18 train step ran about 15% faster (forward 9%), with
  relative error 6e-6 instead of 2e-6 against XLA's conv. Short axes keep F(2, 3) although F(4, 3)
  has fewer positions for n = 3 and 4: at r3d_18's layer3 (4x14x14, 256 channels, 64 tiles at
  batch 4) the larger transformed kernel outweighed that, and the train step measured 5.5 s against
  5.1 s.
  """
  return tuple(4 if x_shape[1 + a] >= 7 else 2 for a in axes)


def choose_lowering(
  kernel_spatial: Sequence[int],
  strides: Sequence[int],
  padding,
  backend: str | None = None,
  x_shape: Sequence[int] | None = None,
  features: int | None = None,
) -> str:
  """The lowering `auto` picks for a convolution on `backend` (default: JAX's default backend).

  On CPU: 1x..x1 kernels -> `pointwise`; kernels of 3 with stride 1 on some axes and 1 elsewhere ->
  `winograd`, unless (with `x_shape` and `features` given) there are fewer than `features / 4`
  Winograd tiles in all: then the transformed kernel outweighs the data it multiplies (r3d_18's
  layer4 at 2x7x7, where im2col ran 2x faster forward and backward); 3x1x1 kernels (with `x_shape`
  given) on frames of at least `TEMPORAL_MIN_PIXELS` pixels and `TEMPORAL_MIN_CHANNELS` input
  channels -> `temporal`; 2D kernels on images of more than `WINOGRAD_2D_MAX_PIXELS` pixels (with
  `x_shape` given) -> `native`; everything else (strided 3x3(x3), stems) -> `im2col`. Elsewhere:
  `native`.

  Example:
    >>> choose_lowering((3, 3, 3), (1, 1, 1), ((1, 1),) * 3, backend="cpu")
    'winograd'
  """
  backend = backend or jax.default_backend()
  if backend != "cpu":
    return "native"
  if all(k == 1 for k in kernel_spatial):
    return "pointwise"
  axes = winograd_axes(kernel_spatial, strides, padding)
  if axes is None:
    return "im2col"
  if len(kernel_spatial) == 2 and x_shape is not None:
    if x_shape[1] * x_shape[2] > WINOGRAD_2D_MAX_PIXELS:
      return "native"
  if x_shape is not None and features is not None:
    out = _output_shape(x_shape, kernel_spatial, strides, padding)
    tiles = default_tiles(x_shape, axes)
    num_tiles = x_shape[0] * np.prod(
      [-(-n // tiles[axes.index(i)]) if i in axes else n for i, n in enumerate(out)]
    )
    if 4 * num_tiles < features:
      return "im2col"
  if axes == (0,) and len(kernel_spatial) > 1 and x_shape is not None:
    if np.prod(x_shape[2:-1]) >= TEMPORAL_MIN_PIXELS and x_shape[-1] >= TEMPORAL_MIN_CHANNELS:
      return "temporal"
  return "winograd"


def choose_grouped_lowering(
  in_features: int, feature_group_count: int, features: int, backend: str | None = None
) -> str:
  """The lowering `auto` picks for a grouped convolution (`feature_group_count > 1`).

  On CPU, depthwise convolutions (one group per input channel) -> `depthwise`; other grouped ones
  and every backend but CPU -> `native`. XLA's CPU grouped convolution runs depthwise ones
  group by group, tens to hundreds of times slower than `depthwise` at csn_r101's depthwise
  3x3x3 convs (`python -m benchmarks.grouped_convs`; figures in benchmarks/README.md, "What the
  CPU figures rest on").

  Example:
    >>> choose_grouped_lowering(64, 64, 64, backend="cpu")
    'depthwise'
  """
  backend = backend or jax.default_backend()
  if backend == "cpu" and feature_group_count == in_features == features:
    return "depthwise"
  return "native"


_LOWERED: dict[str, Callable] = {
  "native": native_conv,
  "winograd": winograd_conv,
  "temporal": temporal_conv,
  "im2col": im2col_conv,
  "pointwise": pointwise_conv,
  "depthwise": depthwise_conv,
}


def conv(
  x: jax.Array,
  kernel: jax.Array,
  strides: int | Sequence[int] = 1,
  padding: Padding = "SAME",
  lowering: str = "auto",
  feature_group_count: int = 1,
) -> jax.Array:
  """A channels-last convolution, lowered as asked.

  Args:
    x: `[B, *spatial, C]` (1 to 3 spatial axes).
    kernel: `[*kernel_spatial, C // feature_group_count, O]`.
    strides: int or one per spatial axis.
    padding: "SAME", "VALID" or one (low, high) pair per spatial axis.
    lowering: one of `LOWERINGS`. Grouped convolutions take `native` or `depthwise` (depthwise
      ones only); asked for another, they get `choose_grouped_lowering`'s choice.
    feature_group_count: groups of input (and output) channels convolved separately; `C` for a
      depthwise convolution.

  Returns:
    `[B, *out_spatial, O]`, equal to `lax.conv_general_dilated` up to float rounding.

  Example:
    >>> y = conv(x, kernel, strides=(1, 2, 2), padding=((0, 0), (1, 1), (1, 1)), lowering="im2col")
  """
  strides, padding = _normalise(x.ndim, kernel.shape, strides, padding)
  padding = _explicit_padding(x.shape, kernel.shape, strides, padding)
  if lowering not in LOWERINGS:
    raise ValueError(f"Unknown lowering {lowering!r}; choose one of {LOWERINGS}.")
  if feature_group_count != 1 or lowering == "depthwise":
    if lowering not in GROUPED_LOWERINGS:
      lowering = choose_grouped_lowering(x.shape[-1], feature_group_count, kernel.shape[-1])
    if lowering == "depthwise":
      if feature_group_count != x.shape[-1]:
        raise ValueError(
          f"The depthwise lowering needs one group per input channel "
          f"({x.shape[-1]}), got feature_group_count={feature_group_count}."
        )
      return depthwise_conv(x, kernel, strides, padding)
    return native_conv(x, kernel, strides, padding, feature_group_count)
  if lowering == "auto":
    lowering = choose_lowering(
      kernel.shape[:-2], strides, padding, x_shape=x.shape, features=kernel.shape[-1]
    )
  if lowering not in _LOWERED:
    raise ValueError(f"Unknown lowering {lowering!r}; choose one of {LOWERINGS}.")
  if lowering == "winograd":
    axes = winograd_axes(kernel.shape[:-2], strides, padding)
    if axes is not None:
      return winograd_conv(x, kernel, strides, padding, tile=default_tiles(x.shape, axes))
  return _LOWERED[lowering](x, kernel, strides, padding)


class Conv(nn.Module):
  """A drop-in for `flax.linen.Conv` that picks its lowering per backend.

  Same parameters as `nn.Conv`: `kernel` of shape
  `kernel_size + (in_features // feature_group_count, features)` and, with `use_bias`, `bias` of
  shape `(features,)`.

  Attributes:
    features: output channels.
    kernel_size: one extent per spatial axis.
    strides: int or one per spatial axis.
    padding: "SAME", "VALID" or one (low, high) pair (or int) per spatial axis.
    use_bias: add a bias.
    dtype: compute dtype (None: from the inputs and parameters, as flax promotes).
    param_dtype: parameter dtype.
    kernel_init, bias_init: initialisers.
    lowering: one of `LOWERINGS`; "auto" picks by backend and kernel shape (`choose_lowering`,
      `choose_grouped_lowering`).
    feature_group_count: channel groups (as `nn.Conv`); `in_features` for depthwise.
    kernel_dilation: int or one per spatial axis; dilated kernels keep XLA's convolution (none of
      the lowerings takes the gaps between their taps).

  Example:
    >>> layer = Conv(64, kernel_size=(3, 3, 3), padding=((1, 1),) * 3, use_bias=False)
    >>> variables = layer.init(jax.random.key(0), jnp.zeros((1, 8, 32, 32, 3)))
  """

  features: int
  kernel_size: Sequence[int]
  strides: Union[int, Sequence[int]] = 1
  padding: Padding = "SAME"
  use_bias: bool = True
  dtype: Any = None
  param_dtype: Any = jnp.float32
  kernel_init: Callable = nn.initializers.lecun_normal()
  bias_init: Callable = nn.initializers.zeros
  lowering: str = "auto"
  feature_group_count: int = 1
  kernel_dilation: Union[int, Sequence[int]] = 1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel_size = tuple(self.kernel_size)
    groups = self.feature_group_count
    if x.shape[-1] % groups or self.features % groups:
      raise ValueError(
        f"feature_group_count={groups} must divide the input channels "
        f"({x.shape[-1]}) and the features ({self.features})."
      )
    kernel = self.param(
      "kernel",
      self.kernel_init,
      kernel_size + (x.shape[-1] // groups, self.features),
      self.param_dtype,
    )
    bias = (
      self.param("bias", self.bias_init, (self.features,), self.param_dtype)
      if self.use_bias
      else None
    )
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    padding = self.padding
    if isinstance(padding, int):
      padding = ((padding, padding),) * len(kernel_size)
    dilation = self.kernel_dilation
    if isinstance(dilation, int):
      dilation = (dilation,) * len(kernel_size)
    if any(d != 1 for d in dilation):
      strides, padding = _normalise(x.ndim, kernel.shape, self.strides, padding)
      y = lax.conv_general_dilated(
        x,
        kernel,
        strides,
        padding,
        rhs_dilation=tuple(dilation),
        dimension_numbers=_dimension_numbers(x.ndim),
        feature_group_count=groups,
      )
    else:
      y = conv(x, kernel, self.strides, padding, self.lowering, groups)
    return y if bias is None else y + bias
