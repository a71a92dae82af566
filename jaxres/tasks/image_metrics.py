"""PSNR and SSIM as super-resolution papers report them (RGB or Y channel, border crop of `scale`).

Conventions (those of the EDSR/BasicSR/MMagic evaluation code):

- Images are float in [0, 1] (or uint8 in [0, 255], converted), channels-last `[..., H, W, 3]`.
  Metrics are computed per image, over the trailing three axes; leading axes (batch, time) stay.
- The Y channel is ITU-R BT.601 luma of studio swing, MATLAB's `rgb2ycbcr`:
  `Y = 16 + 65.481 R + 128.553 G + 24.966 B` for R, G, B in [0, 1], so Y lies in [16, 235].
- Both metrics use a data range of 255 (images are scaled to [0, 255] first); `crop` pixels are
  removed from each border first (the usual `crop = scale`).
- PSNR = 10 log10(255^2 / MSE), the MSE over all remaining pixels and channels.
- SSIM (Wang et al. 2004): Gaussian window 11x11, sigma 1.5, K1 = 0.01, K2 = 0.03, local statistics
  with population (biased) variances, only windows fully inside the image ("valid"), the map's mean;
  on RGB the mean of the per-channel SSIMs. This equals
  `skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255)`.
- Values are not quantised to 8 bits first; round the inputs yourself to mimic evaluation on PNGs.

Everything is `jax.numpy`, so the functions jit and run inside an eval step; numpy arrays work too.

Example:
  >>> psnr(sr, hr, crop=4, y_channel=True)     # [B, T] per-frame dB for clips [B, T, H, W, 3]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

_Y_WEIGHTS = (65.481, 128.553, 24.966)


def _as_float(x) -> jax.Array:
  x = jnp.asarray(x)
  if x.dtype == jnp.uint8:
    return x.astype(jnp.float32) / 255.0
  return x.astype(jnp.float32)


def rgb_to_y(rgb) -> jax.Array:
  """BT.601 studio-swing luma in [16, 235] of RGB in [0, 1]: `[..., 3]` -> `[..., 1]`.

  Args:
    rgb: channels-last RGB, float in [0, 1] or uint8.

  Returns:
    Y in the 0..255 scale, with a trailing axis of size 1.

  Example:
    >>> rgb_to_y(jnp.ones((4, 4, 3)))[0, 0, 0]   # 235.0
  """
  rgb = _as_float(rgb)
  return (
    16.0 + jnp.tensordot(rgb, jnp.asarray(_Y_WEIGHTS, jnp.float32), axes=[[-1], [0]])[..., None]
  )


def _prepare(x, y, crop: int, y_channel: bool) -> tuple[jax.Array, jax.Array]:
  x, y = _as_float(x), _as_float(y)
  if x.shape != y.shape:
    raise ValueError(f"Shapes differ: {x.shape} vs {y.shape}.")
  if x.shape[-1] != 3:
    raise ValueError(f"Expected RGB images [..., H, W, 3], got shape {x.shape}.")
  if crop:
    if 2 * crop >= min(x.shape[-3], x.shape[-2]):
      raise ValueError(f"crop={crop} leaves nothing of a {x.shape[-3]}x{x.shape[-2]} image.")
    x = x[..., crop:-crop, crop:-crop, :]
    y = y[..., crop:-crop, crop:-crop, :]
  if y_channel:
    return rgb_to_y(x), rgb_to_y(y)
  return x * 255.0, y * 255.0


def psnr(x, y, *, crop: int = 0, y_channel: bool = False) -> jax.Array:
  """Peak signal-to-noise ratio in dB of images `x` against references `y`.

  Args:
    x: `[..., H, W, 3]` prediction, float in [0, 1] or uint8.
    y: the reference, same shape.
    crop: pixels removed from every border (the scale, by convention).
    y_channel: measure on BT.601 Y instead of RGB.

  Returns:
    `[...]` PSNR per image (infinite for identical images).

  Example:
    >>> psnr(jnp.full((8, 8, 3), 0.5), jnp.full((8, 8, 3), 0.6))   # 20.0 dB
  """
  x, y = _prepare(x, y, crop, y_channel)
  mse = jnp.mean(jnp.square(x - y), axis=(-3, -2, -1))
  return 10.0 * jnp.log10(255.0**2 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
  g = np.exp(-0.5 * ((np.arange(size) - (size - 1) / 2) / sigma) ** 2)
  return (g / g.sum()).astype(np.float32)


def _filter_valid(x: jax.Array, window: np.ndarray) -> jax.Array:
  """Separable 'valid' filtering of `[N, H, W, C]` per channel."""
  k = window.shape[0]
  c = x.shape[-1]
  dn = ("NHWC", "HWIO", "NHWC")
  rows = jnp.tile(jnp.asarray(window).reshape(k, 1, 1, 1), (1, 1, 1, c))
  cols = jnp.tile(jnp.asarray(window).reshape(1, k, 1, 1), (1, 1, 1, c))
  conv = lambda z, w: jax.lax.conv_general_dilated(
    z,
    w,
    (1, 1),
    "VALID",
    dimension_numbers=dn,
    feature_group_count=c,
    precision=jax.lax.Precision.HIGHEST,
  )
  return conv(conv(x, rows), cols)


def ssim(x, y, *, crop: int = 0, y_channel: bool = False) -> jax.Array:
  """Structural similarity (Wang et al. 2004) of images `x` against references `y`.

  Args:
    x: `[..., H, W, 3]` prediction, float in [0, 1] or uint8.
    y: the reference, same shape.
    crop: pixels removed from every border before measuring.
    y_channel: measure on BT.601 Y instead of the mean over R, G, B.

  Returns:
    `[...]` SSIM per image. Images must be at least 11x11 after the crop.

  Example:
    >>> ssim(sr, hr, crop=4, y_channel=True)
  """
  x, y = _prepare(x, y, crop, y_channel)
  lead = x.shape[:-3]
  h, w, c = x.shape[-3:]
  if min(h, w) < 11:
    raise ValueError(f"SSIM needs at least 11x11 pixels after the crop, got {h}x{w}.")
  x = x.reshape(-1, h, w, c)
  y = y.reshape(-1, h, w, c)
  window = _gaussian_window()
  c1, c2 = (0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2
  # Second moments of images centred on their mean: E[x^2] - E[x]^2 cancels badly in float32 for
  # values near 255, and (co)variances do not change with the shift.
  xc = x - jnp.mean(x, axis=(1, 2), keepdims=True)
  yc = y - jnp.mean(y, axis=(1, 2), keepdims=True)
  # One filtering pass over the seven statistics stacked as channels.
  stats = _filter_valid(jnp.concatenate([x, y, xc, yc, xc * xc, yc * yc, xc * yc], axis=-1), window)
  mu_x, mu_y, mu_xc, mu_yc, xx, yy, xy = jnp.split(stats, 7, axis=-1)
  var_x = xx - mu_xc**2
  var_y = yy - mu_yc**2
  cov = xy - mu_xc * mu_yc
  ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
    (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
  )
  return jnp.mean(ssim_map, axis=(-3, -2, -1)).reshape(lead)
