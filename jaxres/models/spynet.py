"""SPyNet optical flow (Ranjan & Black 2017) as BasicSR 1.4.2 builds it, channels-last.

BasicVSR, IconVSR and BasicVSR++ estimate the motion between neighbouring LR frames with it. The
frames are normalised by the ImageNet mean/std, resized (bilinear) up to multiples of 32, and
average-pooled into a 6-level pyramid; from the coarsest level up, the flow so far is upsampled x2
(bilinear, `align_corners=True`, values doubled), the second frame is warped by it (border
padding) and a 5-convolution `BasicModule` (7x7 kernels, 8 -> 32 -> 64 -> 32 -> 16 -> 2) adds a
correction. The flow is resized back to the input size and rescaled. 1,440,300 parameters.

BasicSR's `SpyNet` fails on frames of 32 pixels or less (its coarsest level is 1 pixel and the
zero flow it starts from is 0 pixels); here the coarsest flow starts at zero at that level's size,
which equals BasicSR's for every input it accepts (> 32 px) and also runs on smaller frames.

Example:
  >>> spynet = SpyNet()
  >>> a = jnp.zeros((1, 64, 64, 3))
  >>> variables = spynet.init(jax.random.key(0), a, a)
  >>> spynet.apply(variables, a, a).shape
  (1, 64, 64, 2)
"""

from __future__ import annotations

import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxres.models.sampling import flow_warp, resize_bilinear

LEVELS = 6
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class BasicModule(nn.Module):
  """Five 7x7 convolutions with ReLU between them: [ref, warped supp, flow] (8 ch) -> flow residual."""

  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    conv = functools.partial(
      nn.Conv, kernel_size=(7, 7), padding=3, dtype=self.dtype, param_dtype=self.param_dtype
    )
    for i, features in enumerate((32, 64, 32, 16)):
      x = nn.relu(conv(features, name=f"conv_{i}")(x))
    return conv(2, name="conv_4")(x)


def _avg_pool2(x: jax.Array) -> jax.Array:
  return nn.avg_pool(x, (2, 2), strides=(2, 2))


class SpyNet(nn.Module):
  """Flow from `ref` to `supp`: `flow_warp(supp, SpyNet()(ref, supp))` looks like `ref`.

  Attributes:
    dtype: compute dtype of the convolutions (sampling runs in float32); the flow is float32.
    param_dtype: parameter dtype.
  """

  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, ref: jax.Array, supp: jax.Array) -> jax.Array:
    """Estimates the flow.

    Args:
      ref: `[N, h, w, 3]` frames in [0, 1].
      supp: frames of the same shape.

    Returns:
      `[N, h, w, 2]` flow in pixels, (dx, dy).
    """
    if ref.shape != supp.shape or ref.ndim != 4:
      raise ValueError(
        f"SpyNet takes two [N, h, w, 3] batches of one shape, got {ref.shape} and {supp.shape}."
      )
    h, w = ref.shape[1:3]
    hf, wf = 32 * math.ceil(h / 32), 32 * math.ceil(w / 32)
    mean = jnp.asarray(_MEAN, jnp.float32)
    std = jnp.asarray(_STD, jnp.float32)
    prepare = lambda x: (
      (resize_bilinear(x.astype(jnp.float32), (hf, wf), align_corners=False) - mean) / std
    )
    refs, supps = [prepare(ref)], [prepare(supp)]
    for _ in range(LEVELS - 1):
      refs.insert(0, _avg_pool2(refs[0]))
      supps.insert(0, _avg_pool2(supps[0]))
    flow = jnp.zeros(refs[0].shape[:-1] + (2,), jnp.float32)
    for level in range(LEVELS):
      if level:
        size = refs[level].shape[1:3]
        flow = 2.0 * resize_bilinear(flow, size, align_corners=True)
      warped = flow_warp(supps[level], flow, padding="border")
      inputs = jnp.concatenate([refs[level], warped, flow], axis=-1).astype(self.dtype)
      module = BasicModule(self.dtype, self.param_dtype, name=f"basic_module_{level}")
      flow = module(inputs).astype(jnp.float32) + flow
    flow = resize_bilinear(flow, (h, w), align_corners=False)
    return flow * jnp.asarray([w / wf, h / hf], jnp.float32)
