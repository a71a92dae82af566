"""Resampling as PyTorch does it, in JAX: bilinear resize, flow warping, modulated deformable conv.

The video SR networks of BasicSR (`jaxres.models.basicvsr`, `jaxres.models.basicvsrpp`) are built
on three PyTorch operations; these are their channels-last twins, exact to float rounding:

- `resize_bilinear`: `F.interpolate(mode="bilinear", antialias=False)` with either
  `align_corners` (source coordinate `dst * (n - 1) / (out - 1)` if True, else
  `(dst + 0.5) * n / out - 0.5` clamped at 0).
- `flow_warp`: BasicSR's `flow_warp`, i.e. `F.grid_sample(mode="bilinear", align_corners=True)` at
  `pixel + flow`, with `padding="zeros"` (taps outside the frame read 0) or `"border"`
  (coordinates clamped to the frame).
- `modulated_deform_conv`: `torchvision.ops.deform_conv2d` with a mask (DCNv2): every kernel tap
  of every output pixel reads the input at its own fractional offset (bilinear, zeros outside),
  weighted by the mask, then a plain convolution sum.

Sampling is a gather of the four neighbours of every sampling point (`jnp.take` per batch
element), which XLA runs on every backend and differentiates with respect to the input, the
flow/offsets and the mask.

Example:
  >>> x = jnp.zeros((1, 8, 8, 16))
  >>> flow_warp(x, jnp.zeros((1, 8, 8, 2))).shape
  (1, 8, 8, 16)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

PADDINGS = ("zeros", "border")


def _interp_axis(x: jax.Array, axis: int, out: int, align_corners: bool) -> jax.Array:
  n = x.shape[axis]
  dst = np.arange(out, dtype=np.float64)
  if align_corners:
    src = dst * ((n - 1) / (out - 1) if out > 1 else 0.0)
  else:
    src = np.maximum((dst + 0.5) * (n / out) - 0.5, 0.0)
  i0 = np.minimum(np.floor(src).astype(np.int64), n - 1)
  i1 = np.minimum(i0 + 1, n - 1)
  shape = [1] * x.ndim
  shape[axis] = out
  w1 = jnp.asarray((src - i0).reshape(shape), x.dtype)
  return jnp.take(x, i0, axis=axis) * (1 - w1) + jnp.take(x, i1, axis=axis) * w1


def resize_bilinear(x: jax.Array, size: tuple[int, int], *, align_corners: bool) -> jax.Array:
  """Bilinear resize of `[..., h, w, C]` to `[..., *size, C]`, as `torch.nn.functional.interpolate`.

  No antialiasing (PyTorch's default): downscaling reads the two nearest source pixels only.

  Args:
    x: channels-last array, floating point.
    size: output `(height, width)`.
    align_corners: PyTorch's flag (see the module notes).

  Returns:
    The resized array.

  Example:
    >>> resize_bilinear(jnp.zeros((2, 5, 7, 3)), (20, 28), align_corners=False).shape
    (2, 20, 28, 3)
  """
  x = _interp_axis(x, x.ndim - 3, size[0], align_corners)
  return _interp_axis(x, x.ndim - 2, size[1], align_corners)


def bilinear_sample(
  x: jax.Array, sx: jax.Array, sy: jax.Array, padding: str = "zeros"
) -> jax.Array:
  """Samples `x[b]` bilinearly at pixel coordinates `(sx[b, ...], sy[b, ...])`.

  Args:
    x: `[B, H, W, C]`.
    sx: `[B, ...]` column coordinates (0 is the centre of the first column).
    sy: row coordinates, same shape as `sx`.
    padding: "zeros" (neighbours outside the frame read 0) or "border" (coordinates clamped).

  Returns:
    `[B, ..., C]`.

  Example:
    >>> bilinear_sample(x, jnp.full((1, 3), 0.5), jnp.zeros((1, 3))).shape  # x: [1, H, W, C]
    (1, 3, C)
  """
  if padding not in PADDINGS:
    raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}.")
  b, h, w, c = x.shape
  coords_shape = sx.shape
  sx = sx.reshape(b, -1).astype(jnp.float32)
  sy = sy.reshape(b, -1).astype(jnp.float32)
  if padding == "border":
    sx = jnp.clip(sx, 0, w - 1)
    sy = jnp.clip(sy, 0, h - 1)
  flat = x.reshape(b, h * w, c)
  gather = jax.vmap(lambda image, index: jnp.take(image, index, axis=0))
  out = 0
  for row, col, weight in _corners(sx, sy, h, w, x.dtype):
    out = out + gather(flat, row * w + col) * weight[..., None]
  return out.reshape(*coords_shape, c)


def _corners(sx: jax.Array, sy: jax.Array, h: int, w: int, dtype):
  """The four bilinear neighbours of float32 `(sx, sy)` in an `h x w` frame: (row, column, weight)
  each, rows and columns clamped into the frame, the weight 0 (in `dtype`) for neighbours outside
  it (zero padding)."""
  x0 = jnp.floor(sx)
  y0 = jnp.floor(sy)
  fx = sx - x0
  fy = sy - y0
  x0 = x0.astype(jnp.int32)
  y0 = y0.astype(jnp.int32)
  for dy, wy in ((0, 1 - fy), (1, fy)):
    for dx, wx in ((0, 1 - fx), (1, fx)):
      yy, xx = y0 + dy, x0 + dx
      inside = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
      weight = jnp.where(inside, wx * wy, 0).astype(dtype)
      yield jnp.clip(yy, 0, h - 1), jnp.clip(xx, 0, w - 1), weight


def flow_warp(x: jax.Array, flow: jax.Array, padding: str = "zeros") -> jax.Array:
  """Backward warp, BasicSR's `flow_warp`: `out[y, x] = x[y + flow_y, x + flow_x]`, bilinear.

  Args:
    x: `[B, H, W, C]` frames or features.
    flow: `[B, H, W, 2]` displacements in pixels, (dx, dy) order.
    padding: "zeros" (BasicSR's default, used by BasicVSR's propagation) or "border" (SpyNet).

  Returns:
    The warped `[B, H, W, C]`.

  Example:
    >>> flow_warp(feats, jnp.zeros(feats.shape[:-1] + (2,)))  # identity
  """
  _, h, w, _ = x.shape
  if flow.shape[1:3] != (h, w) or flow.shape[-1] != 2:
    raise ValueError(f"flow_warp: flow {flow.shape} does not fit features {x.shape}.")
  gy, gx = jnp.meshgrid(
    jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij"
  )
  flow = flow.astype(jnp.float32)
  return bilinear_sample(x, gx + flow[..., 0], gy + flow[..., 1], padding)


def modulated_deform_conv(
  x: jax.Array,
  offset: jax.Array,
  mask: jax.Array,
  kernel: jax.Array,
  bias: jax.Array | None = None,
  *,
  padding: int = 1,
  deformable_groups: int = 1,
) -> jax.Array:
  """Modulated deformable convolution (DCNv2), stride 1, as `torchvision.ops.deform_conv2d`.

  Channel layouts are torchvision's, channels-last: `offset[..., (g * K + k) * 2 + {0: dy, 1: dx}]`
  and `mask[..., g * K + k]` for deformable group `g` and kernel tap `k = i * kw + j`; input channel
  `c` belongs to group `c // (C / deformable_groups)`.

  Args:
    x: `[B, H, W, C]` input.
    offset: `[B, Ho, Wo, 2 * G * kh * kw]` offsets in pixels.
    mask: `[B, Ho, Wo, G * kh * kw]` modulation (BasicVSR++ passes a sigmoid).
    kernel: `[kh, kw, C, O]` weights (flax `nn.Conv` layout).
    bias: `[O]` or None.
    padding: zero padding on every side, in pixels.
    deformable_groups: G, which must divide C.

  Returns:
    `[B, Ho, Wo, O]` with `Ho = H + 2 * padding - kh + 1` (likewise `Wo`).

  Example:
    >>> x = jnp.zeros((1, 8, 8, 16)); k = jnp.zeros((3, 3, 16, 4))
    >>> modulated_deform_conv(x, jnp.zeros((1, 8, 8, 18)), jnp.ones((1, 8, 8, 9)), k).shape
    (1, 8, 8, 4)
  """
  b, h, w, c = x.shape
  kh, kw, cin, out = kernel.shape
  g = deformable_groups
  if cin != c or c % g:
    raise ValueError(
      f"modulated_deform_conv: input has {c} channels, kernel expects {cin}, "
      f"deformable groups {g} must divide them."
    )
  k = kh * kw
  ho, wo = h + 2 * padding - kh + 1, w + 2 * padding - kw + 1
  if offset.shape != (b, ho, wo, 2 * g * k) or mask.shape != (b, ho, wo, g * k):
    raise ValueError(
      f"modulated_deform_conv: offset {offset.shape} / mask {mask.shape} should be "
      f"{(b, ho, wo, 2 * g * k)} / {(b, ho, wo, g * k)}."
    )
  offset = offset.reshape(b, ho, wo, g, k, 2).astype(jnp.float32)
  ky, kx = np.meshgrid(np.arange(kh), np.arange(kw), indexing="ij")
  base_y = (np.arange(ho)[:, None, None, None] - padding + ky.reshape(1, 1, 1, k)).astype(
    np.float32
  )
  base_x = (np.arange(wo)[None, :, None, None] - padding + kx.reshape(1, 1, 1, k)).astype(
    np.float32
  )
  sy = base_y + offset[..., 0]  # [B, Ho, Wo, G, K]
  sx = base_x + offset[..., 1]
  columns = _group_columns(x, sx, sy, g)  # [B, Ho, Wo, G, K, C/G]
  columns = columns * mask.reshape(b, ho, wo, g, k, 1).astype(columns.dtype)
  weights = jnp.transpose(kernel.reshape(k, g, c // g, out), (1, 0, 2, 3)).astype(columns.dtype)
  y = jnp.einsum("bhwgkc,gkco->bhwo", columns, weights)
  return y if bias is None else y + bias.astype(y.dtype)


def _group_columns(x: jax.Array, sx: jax.Array, sy: jax.Array, groups: int) -> jax.Array:
  """`x [B, H, W, C]` sampled bilinearly (zeros outside) at `(sx, sy) [B, Ho, Wo, G, K]`, group `g`
  reading channels `g * C/G ...`: `[B, Ho, Wo, G, K, C/G]`.

  Each corner is one gather of `C/G`-channel rows of `x` viewed as `[B * H * W * G, C/G]`, by a row
  index computed per sample point, so the result comes out in the order the products take it.
  Gathering per group under `vmap` (one image per group) computed the same columns 3.1x slower
  (IconVSR's [2, 180, 320, 64] alignment with 8 groups: 795 -> 255 ms): XLA fused it into the
  products' operand with the groups moved outermost, redoing each point's coordinates per channel.
  """
  b, h, w, c = x.shape
  rows = x.reshape(b * h * w * groups, c // groups)
  batch = np.arange(b).reshape((b,) + (1,) * (sx.ndim - 1))
  group = np.arange(groups).reshape((1,) * (sx.ndim - 2) + (groups, 1))
  out = 0
  for row, col, weight in _corners(sx.astype(jnp.float32), sy.astype(jnp.float32), h, w, x.dtype):
    index = ((batch * h + row) * w + col) * groups + group
    out = out + jnp.take(rows, index, axis=0, mode="clip") * weight[..., None]
  return out
