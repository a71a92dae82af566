"""Small models for the training tests: cheap to compile, with the pieces that parallel training
has to get right (3D convolutions, jaxres BatchNorm with cross-device statistics, a residual
connection, a classifier)."""

import functools

import flax.linen as nn
import jax.numpy as jnp

from jaxres.models import BatchNorm
from jaxres.models.conv import Conv

# The classification batch the tests train TinyVideoNet on: [B, T, H, W, C], 4 classes.
TINY_VIDEO_SHAPE = (8, 4, 8, 8, 3)


class TinyVideoNet(nn.Module):
  """A video ResNet-like net of 4 classes built from jaxres's `Conv` (with `conv_lowering`) and
  `BatchNorm` (reducing its batch statistics over `bn_axis_name`, for pmap)."""

  bn_axis_name: str | None = None
  conv_lowering: str = "auto"

  @nn.compact
  def __call__(self, x, train=False):
    conv = functools.partial(Conv, lowering=self.conv_lowering)
    norm = lambda name: BatchNorm(
      use_running_average=not train, axis_name=self.bn_axis_name, name=name
    )
    x = nn.relu(norm("bn1")(conv(16, (3, 3, 3), use_bias=False, name="conv1")(x)))
    y = conv(16, (3, 3, 3), use_bias=False, name="conv2")(x)
    x = nn.relu(x + norm("bn2")(y))
    x = conv(64, (1, 3, 3), strides=(1, 2, 2), name="conv3")(x)
    return nn.Dense(4, name="fc")(jnp.mean(x, axis=(1, 2, 3)))
