"""Super-resolution degradation as TensorFlow ops, for tf.data: HR patches -> their LR twins.

The same model as `jaxres.sr.degradation.degrade` (the jax version): optional Gaussian blur of
`blur_sigma` HR pixels, bicubic antialiased downsampling by `scale` (Keys a = -0.5 stretched by
`scale`, i.e. MATLAB `imresize`; `tf.image.resize(..., "bicubic", antialias=True)` is that kernel),
optional Gaussian noise of `noise_sigma`, clipping to [0, 1] and rounding to 8-bit levels. Inputs
and outputs are float32 in [0, 1]; H and W must be multiples of `scale`.

Example:
  >>> lr = degrade(hr, scale=4)                                   # [T, H/4, W/4, 3]
  >>> lr = degrade(hr, scale=4, blur_sigma=1.0, noise_sigma=0.01, seed=[0, 3])
"""

from __future__ import annotations

import math

from jaxres.data.tfhost import tf


def bicubic_downsample(hr: tf.Tensor, scale: int) -> tf.Tensor:
  """Antialiased bicubic downsampling of `[..., H, W, C]` float by the integer `scale`.

  Example:
    >>> bicubic_downsample(tf.zeros([8, 64, 64, 3]), 4).shape
    TensorShape([8, 16, 16, 3])
  """
  hr = tf.convert_to_tensor(hr)
  shape = tf.shape(hr)
  size = tf.stack([shape[-3] // scale, shape[-2] // scale])
  flat = tf.reshape(hr, tf.concat([[-1], shape[-3:]], 0))  # tf.image wants [N, H, W, C].
  lr = tf.image.resize(flat, size, "bicubic", antialias=True)
  return tf.reshape(lr, tf.concat([shape[:-3], size, shape[-1:]], 0))


def gaussian_blur(x: tf.Tensor, sigma: float) -> tf.Tensor:
  """Separable Gaussian blur of `[..., H, W, C]` (radius `ceil(3 sigma)`, edges replicated)."""
  if sigma <= 0:
    return x
  radius = int(math.ceil(3 * sigma))
  taps = tf.exp(-0.5 * (tf.range(-radius, radius + 1, dtype=tf.float32) / sigma) ** 2)
  taps /= tf.reduce_sum(taps)
  shape = tf.shape(x)
  flat = tf.reshape(x, tf.concat([[-1], shape[-3:]], 0))
  channels = x.shape[-1]
  for axis in (1, 2):
    n = tf.shape(flat)[axis]  # Replicate the edges.
    first = tf.gather(flat, tf.zeros([radius], tf.int32), axis=axis)
    last = tf.gather(flat, tf.fill([radius], n - 1), axis=axis)
    flat = tf.concat([first, flat, last], axis)
    k = tf.reshape(taps, [-1, 1, 1, 1] if axis == 1 else [1, -1, 1, 1])
    k = tf.tile(k, [1, 1, channels, 1])
    flat = tf.nn.depthwise_conv2d(flat, k, [1, 1, 1, 1], "VALID")
  return tf.reshape(flat, shape)


def degrade(hr: tf.Tensor, scale: int, *, blur_sigma: float = 0.0, noise_sigma: float = 0.0,
            quantize: bool = True, seed=None) -> tf.Tensor:
  """LR frames from HR frames (see the module docstring).

  Args:
    hr: float32 `[..., H, W, 3]` in [0, 1], H and W multiples of `scale`.
    scale: integer downsampling factor.
    blur_sigma: Gaussian blur in HR pixels before downsampling (0 = none).
    noise_sigma: Gaussian noise after downsampling, in [0, 1] units (0 = none; needs `seed`).
    quantize: round to multiples of 1/255.
    seed: `[2]` int stateless seed for the noise.

  Returns:
    float32 `[..., H/scale, W/scale, 3]` in [0, 1].

  Example:
    >>> degrade(tf.random.uniform([4, 32, 32, 3]), 2).shape
    TensorShape([4, 16, 16, 3])
  """
  lr = bicubic_downsample(gaussian_blur(tf.cast(hr, tf.float32), blur_sigma), scale)
  if noise_sigma > 0:
    if seed is None:
      raise ValueError("noise_sigma > 0 needs a seed.")
    lr += noise_sigma * tf.random.stateless_normal(tf.shape(lr), seed)
  lr = tf.clip_by_value(lr, 0.0, 1.0)
  if quantize:
    lr = tf.round(lr * 255.0) / 255.0
  return lr
