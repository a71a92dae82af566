"""The degradation that makes low-resolution training frames from high-resolution ones.

HR frames `[..., H, W, 3]` in [0, 1] become LR frames `[..., H/s, W/s, 3]` by, in order:

1. mod-crop: H and W are cropped (bottom/right) to multiples of the scale `s`, so LR and HR stay
   pixel-aligned (`hr[s*i : s*i+s]` covers `lr[i]`);
2. optional isotropic Gaussian blur of standard deviation `blur_sigma` HR pixels (kernel radius
   `ceil(3 sigma)`, edges replicated);
3. bicubic downsampling with antialiasing: `jax.image.resize(..., "bicubic", antialias=True)`, Keys'
   kernel (a = -0.5) stretched by `s` (MATLAB `imresize` semantics, as in the "BI" degradation of
   the SR literature), with the out-of-frame weights dropped and the rest renormalised; this is the
   same kernel `jaxres.models.sr.bicubic_upsample` uses;
4. optional additive Gaussian noise of standard deviation `noise_sigma` (in [0, 1] units; needs an
   rng key);
5. clipping to [0, 1] and, if `quantize`, rounding to 8-bit levels (LR frames as saved to files).

Everything is jax.numpy, so it runs jitted on a batch; a numpy array in gives a jax array out.

Example:
  >>> lr = degrade(hr, Degradation(scale=4))                        # [B, T, H/4, W/4, 3]
  >>> lr = degrade(hr, Degradation(4, blur_sigma=1.0, noise_sigma=0.01), rng=jax.random.key(0))
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Degradation:
  """Parameters of `degrade`.

  Attributes:
    scale: integer downsampling factor.
    blur_sigma: Gaussian blur before downsampling, in HR pixels (0 = none).
    noise_sigma: additive Gaussian noise after downsampling, in [0, 1] units (0 = none).
    quantize: round LR to multiples of 1/255.
  """

  scale: int = 4
  blur_sigma: float = 0.0
  noise_sigma: float = 0.0
  quantize: bool = True

  def __post_init__(self):
    if not isinstance(self.scale, int) or self.scale < 1:
      raise ValueError(f"scale must be a positive int, got {self.scale!r}.")
    if self.blur_sigma < 0 or self.noise_sigma < 0:
      raise ValueError("blur_sigma and noise_sigma must be >= 0.")


def mod_crop(hr, scale: int):
  """Crops `[..., H, W, C]` at the bottom/right to multiples of `scale` (numpy or jax arrays).

  Args:
    hr: channels-last frames.
    scale: integer factor.

  Returns:
    `hr[..., :H - H % scale, :W - W % scale, :]`.

  Example:
    >>> mod_crop(np.zeros((2, 35, 50, 3)), 4).shape
    (2, 32, 48, 3)
  """
  h, w = hr.shape[-3], hr.shape[-2]
  if h < scale or w < scale:
    raise ValueError(f"A {h}x{w} frame is smaller than the scale {scale}.")
  return hr[..., : h - h % scale, : w - w % scale, :]


def bicubic_downsample(x, scale: int) -> jax.Array:
  """Antialiased bicubic downsampling of `[..., H, W, C]` by `scale` (H, W divisible by it).

  Args:
    x: channels-last float frames.
    scale: integer factor.

  Returns:
    `[..., H/scale, W/scale, C]` float.

  Example:
    >>> bicubic_downsample(jnp.zeros((64, 64, 3)), 4).shape
    (16, 16, 3)
  """
  *lead, h, w, c = x.shape
  if h % scale or w % scale:
    raise ValueError(f"{h}x{w} is not divisible by the scale {scale}; mod_crop first.")
  return jax.image.resize(
    jnp.asarray(x, jnp.float32), (*lead, h // scale, w // scale, c), "bicubic", antialias=True
  )


def gaussian_blur(x, sigma: float) -> jax.Array:
  """Separable Gaussian blur of `[..., H, W, C]` with replicated edges (`sigma` in pixels)."""
  radius = max(1, math.ceil(3 * sigma))
  taps = jnp.exp(-0.5 * (jnp.arange(-radius, radius + 1) / sigma) ** 2)
  taps = taps / taps.sum()
  x = jnp.asarray(x, jnp.float32)
  for axis in (-3, -2):
    n = x.shape[axis]
    padded = jnp.pad(
      x, [(0, 0)] * (x.ndim + axis) + [(radius, radius)] + [(0, 0)] * (-axis - 1), mode="edge"
    )
    x = sum(
      taps[i] * jax.lax.slice_in_dim(padded, i, i + n, axis=x.ndim + axis)
      for i in range(2 * radius + 1)
    )
  return x


def degrade(hr, degradation: Degradation, *, rng: jax.Array | None = None) -> jax.Array:
  """Makes LR frames from HR frames (see the module notes for the exact steps).

  Args:
    hr: `[..., H, W, 3]` float in [0, 1] (uint8 is converted); H, W need not divide by the scale,
      they are mod-cropped (crop the HR target the same way with `mod_crop`).
    degradation: the parameters.
    rng: a key, needed only when `noise_sigma > 0`.

  Returns:
    `[..., H // s, W // s, 3]` float32 in [0, 1].

  Example:
    >>> hr = mod_crop(frames, 4); lr = degrade(hr, Degradation(scale=4))
  """
  hr = jnp.asarray(hr)
  hr = hr.astype(jnp.float32) / 255.0 if hr.dtype == jnp.uint8 else hr.astype(jnp.float32)
  x = mod_crop(hr, degradation.scale)
  if degradation.blur_sigma > 0:
    x = gaussian_blur(x, degradation.blur_sigma)
  x = bicubic_downsample(x, degradation.scale) if degradation.scale > 1 else x
  if degradation.noise_sigma > 0:
    if rng is None:
      raise ValueError("noise_sigma > 0 needs an rng key.")
    x = x + degradation.noise_sigma * jax.random.normal(rng, x.shape, x.dtype)
  x = jnp.clip(x, 0.0, 1.0)
  if degradation.quantize:
    x = jnp.round(x * 255.0) / 255.0
  return x


def random_aligned_patches(hr, patch: int, scale: int, rng: jax.Array):
  """One random `patch*scale`-pixel HR crop per clip, at a multiple of `scale` (same for all frames).

  Crop HR first and degrade the crop: LR and HR patches are then aligned by construction.

  Args:
    hr: `[B, T, H, W, 3]` or `[B, H, W, 3]` frames (H, W >= patch * scale).
    patch: LR patch size; the HR crop is `patch * scale` square.
    scale: the SR factor.
    rng: a key.

  Returns:
    `[B, (T,) patch*scale, patch*scale, 3]`.

  Example:
    >>> hr_patch = random_aligned_patches(hr, 32, 4, key); lr_patch = degrade(hr_patch, Degradation(4))
  """
  hr = jnp.asarray(hr)
  size = patch * scale
  h, w = hr.shape[-3], hr.shape[-2]
  if h < size or w < size:
    raise ValueError(f"HR frames {h}x{w} are smaller than the patch {size}x{size}.")
  b = hr.shape[0]
  ky, kx = jax.random.split(rng)
  ys = jax.random.randint(ky, (b,), 0, (h - size) // scale + 1) * scale
  xs = jax.random.randint(kx, (b,), 0, (w - size) // scale + 1) * scale

  def crop(clip, y, x):
    start = (0,) * (clip.ndim - 3) + (y, x, 0)
    return jax.lax.dynamic_slice(clip, start, clip.shape[:-3] + (size, size, clip.shape[-1]))

  return jax.vmap(crop)(hr, ys, xs)
