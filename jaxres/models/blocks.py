"""Residual blocks, parameterised by the convolution, normalisation and activation they use.

One block class serves 2D, 3D, (2+1)D and per-frame networks: the network builds `conv`, `norm` and
`shortcut` with `functools.partial` and the block only wires them. Blocks take channels-last input.

Example:
  >>> conv = functools.partial(nn.Conv, kernel_size=(3, 3), padding=((1, 1), (1, 1)), use_bias=False)
  >>> pointwise = functools.partial(nn.Conv, kernel_size=(1, 1), use_bias=False)
  >>> norm = functools.partial(BatchNorm, use_running_average=True)
  >>> shortcut = functools.partial(ProjectionShortcut, conv=pointwise, norm=norm)
  >>> block = BasicBlock(128, conv=conv, norm=norm, shortcut=shortcut, strides=(2, 2))
"""

from __future__ import annotations

from typing import Any, Callable, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

ModuleDef = Any
Strides = Union[int, Sequence[int]]


def _last_bn_init(zero: bool) -> dict:
  """The keyword arguments of a residual branch's last norm: a zero scale when `zero`."""
  return {"scale_init": nn.initializers.zeros} if zero else {}


def _is_unit_stride(strides: Strides) -> bool:
  return all(s == 1 for s in ((strides,) if isinstance(strides, int) else strides))


class ProjectionShortcut(nn.Module):
  """The shortcut `norm(conv1x1(x))` used when a block changes width or resolution."""

  features: int
  strides: Strides
  conv: ModuleDef  # a 1x1(x1) convolution factory: conv(features, strides=..., name=...)
  norm: ModuleDef

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = self.conv(self.features, strides=self.strides, name="conv")(x)
    return self.norm(name="bn")(x)


class ZeroPadShortcut(nn.Module):
  """Parameter-free shortcut of He et al. (2015), "option A": subsample, then zero-pad channels."""

  features: int
  strides: Strides

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    spatial = x.ndim - 2
    strides = (self.strides,) * spatial if isinstance(self.strides, int) else tuple(self.strides)
    x = x[(slice(None),) + tuple(slice(None, None, s) for s in strides)]
    extra = self.features - x.shape[-1]
    return jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(extra // 2, extra - extra // 2)])


class BasicBlock(nn.Module):
  """Two 3x3-style convolutions with a residual connection (ResNet-18/34, video ResNets).

  Attributes:
    features: output width.
    conv: factory of the block's main convolution, called `conv(features, strides=..., name=...)`;
      a 3x3 conv, a 3x3x3 conv, or a (2+1)D unit.
    norm: normalisation factory, called `norm(name=...)`.
    shortcut: factory called `shortcut(features, strides, name=...)` when the block changes width or
      stride (ProjectionShortcut or ZeroPadShortcut).
    strides: stride of the first convolution and of the shortcut.
    act: activation.
    shift: a parameter-free function applied to the input of the residual branch only (TSM's
      temporal shift), or None.
    zero_init_last_bn: initialise the residual branch's last BatchNorm scale to 0, so that the
      block starts as `act(shortcut(x))` (torchvision's `zero_init_residual`; Goyal et al. 2017).
  """

  features: int
  conv: ModuleDef
  norm: ModuleDef
  shortcut: ModuleDef
  strides: Strides = 1
  act: Callable = nn.relu
  shift: Callable | None = None
  zero_init_last_bn: bool = False
  expansion = 1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = self.conv(self.features, strides=self.strides, name="conv1")(
      x if self.shift is None else self.shift(x)
    )
    y = self.act(self.norm(name="bn1")(y))
    y = self.conv(self.features, name="conv2")(y)
    y = self.norm(name="bn2", **_last_bn_init(self.zero_init_last_bn))(y)
    residual = x
    # Structural test (as torchvision), not a shape test: a stride-2 conv of a length-1 axis keeps it.
    if not _is_unit_stride(self.strides) or x.shape[-1] != self.features:
      residual = self.shortcut(self.features, self.strides, name="downsample")(x)
    return self.act(residual + y)


class BottleneckBlock(nn.Module):
  """1x1 -> 3x3 (strided, ResNet v1.5) -> 1x1 expanding 4x, with a residual connection (ResNet-50+).

  Attributes are those of `BasicBlock` (`shift` and `zero_init_last_bn`, here `bn3`, included)
  plus `pointwise`, the 1x1 convolution factory.
  """

  features: int
  conv: ModuleDef
  pointwise: ModuleDef
  norm: ModuleDef
  shortcut: ModuleDef
  strides: Strides = 1
  act: Callable = nn.relu
  shift: Callable | None = None
  zero_init_last_bn: bool = False
  expansion = 4

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    out_features = self.features * self.expansion
    y = self.pointwise(self.features, name="conv1")(x if self.shift is None else self.shift(x))
    y = self.act(self.norm(name="bn1")(y))
    y = self.conv(self.features, strides=self.strides, name="conv2")(y)
    y = self.act(self.norm(name="bn2")(y))
    y = self.pointwise(out_features, name="conv3")(y)
    y = self.norm(name="bn3", **_last_bn_init(self.zero_init_last_bn))(y)
    residual = x
    if not _is_unit_stride(self.strides) or x.shape[-1] != out_features:
      residual = self.shortcut(out_features, self.strides, name="downsample")(x)
    return self.act(residual + y)


def is_bottleneck(block_cls: ModuleDef) -> bool:
  """Whether `block_cls` is a `BottleneckBlock` (or one wrapped by `remat_block`): it then takes `pointwise`."""
  return isinstance(block_cls, type) and issubclass(block_cls, BottleneckBlock)


class Conv2Plus1D(nn.Module):
  """A (2+1)D convolution unit: 1xkxk spatial conv -> norm -> act -> kx1x1 temporal conv.

  Stands in for one 3x3x3 convolution (Tran et al. 2018); `mid_features` is chosen by the network
  so that the unit has about as many parameters as the 3x3x3 conv it replaces.

  Attributes:
    features: output width.
    mid_features: width between the spatial and temporal convolutions.
    conv: convolution factory without kernel, padding or strides (e.g. `partial(nn.Conv, use_bias=False)`).
    norm: normalisation factory.
    strides: int or (t, h, w): h, w go to the spatial conv, t to the temporal one.
    act: activation between the two convolutions.
  """

  features: int
  mid_features: int
  conv: ModuleDef
  norm: ModuleDef
  strides: Strides = 1
  act: Callable = nn.relu

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    st, sh, sw = (self.strides,) * 3 if isinstance(self.strides, int) else tuple(self.strides)
    y = self.conv(
      self.mid_features,
      kernel_size=(1, 3, 3),
      strides=(1, sh, sw),
      padding=((0, 0), (1, 1), (1, 1)),
      name="spatial",
    )(x)
    y = self.act(self.norm(name="bn")(y))
    return self.conv(
      self.features,
      kernel_size=(3, 1, 1),
      strides=(st, 1, 1),
      padding=((1, 1), (0, 0), (0, 0)),
      name="temporal",
    )(y)


REMAT_POLICIES = ("none", "block")  # plus any name of `jax.checkpoint_policies`


def remat_block(block_cls: ModuleDef, policy: str = "block") -> ModuleDef:
  """`block_cls` rematerialised: its activations are recomputed in the backward pass, not kept.

  Memory for the activations inside each residual block falls to what `policy` saves; the
  parameter tree, outputs and gradients are those of `block_cls` (the class is a subclass of it).

  Args:
    block_cls: a block class (`BasicBlock`, `BottleneckBlock`, ...).
    policy: "none" (returns `block_cls` itself), "block" (save only the block's input) or the
      name of a `jax.checkpoint_policies` policy without arguments, e.g. "dots_saveable" (keep
      matrix products and convolutions, recompute the cheap element-wise work).

  Returns:
    The block class to build the network with.

  Raises:
    ValueError: an unknown policy name (the message lists the known ones).

  Example:
    >>> model = jaxres.models.get("r3d_18", block_cls=remat_block(BasicBlock, "dots_saveable"))
  """
  if policy == "none":
    return block_cls
  if policy == "block":
    return nn.remat(block_cls)
  known = [
    n for n in dir(jax.checkpoint_policies) if not n.startswith("_") and n.endswith("saveable")
  ]
  if policy not in known:
    raise ValueError(
      f"Unknown remat policy {policy!r}; use one of {', '.join(REMAT_POLICIES + tuple(known))}."
    )
  return nn.remat(block_cls, policy=getattr(jax.checkpoint_policies, policy))
