"""The name -> model registry behind `jaxres.models.get`."""

from __future__ import annotations

import dataclasses
from typing import Callable

import flax.linen as nn

from jaxres.models import (
  basicvsr,
  basicvsrpp,
  iconvsr,
  pytorchvideo_resnet,
  resnet,
  slowfast,
  sr,
  video,
  x3d,
)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """What the registry knows of a model.

  Attributes:
    constructor: builds the module from keyword arguments.
    input_rank: 5 for clips `[B, T, H, W, C]`, 4 for images `[B, H, W, C]`.
    task: "classification" or "super_resolution" (decides the batch format it trains on).
    num_frames: frames of the clip the model was published with (None: no default clip).
    frame_stride: sampling stride of those frames in the source video (None: no default).
    crop_size: spatial crop (height = width) of the default clip (None: no default).
  """

  constructor: Callable[..., nn.Module]
  input_rank: int
  task: str = "classification"
  num_frames: int | None = None
  frame_stride: int | None = None
  crop_size: int | None = None

  def default_input_shape(self, batch: int = 1) -> tuple[int, ...]:
    """`(batch, num_frames, crop_size, crop_size, 3)` (or without frames for images).

    Raises:
      ValueError: the model has no default clip.
    """
    if self.crop_size is None or (self.input_rank == 5 and self.num_frames is None):
      raise ValueError("This model has no default input size in the registry.")
    frames = (self.num_frames,) if self.input_rank == 5 else ()
    return (batch, *frames, self.crop_size, self.crop_size, 3)


_MODELS: dict[str, ModelSpec] = {}


def register(
  name: str,
  constructor: Callable[..., nn.Module],
  *,
  input_rank: int,
  task: str = "classification",
  num_frames: int | None = None,
  frame_stride: int | None = None,
  crop_size: int | None = None,
) -> None:
  """Adds a model under `name` (fields as `ModelSpec`'s); raises ValueError if the name is taken."""
  if name in _MODELS:
    raise ValueError(f"A model named {name!r} is already registered.")
  _MODELS[name] = ModelSpec(constructor, input_rank, task, num_frames, frame_stride, crop_size)


def get(name: str, **kwargs) -> nn.Module:
  """Builds the registered model `name`.

  Args:
    name: one of `names()`, e.g. "r2plus1d_18".
    **kwargs: module fields, e.g. `num_classes=101, dtype=jnp.bfloat16`.

  Returns:
    The (unbound) flax module.

  Example:
    >>> model = jaxres.models.get("r3d_18", num_classes=101)
  """
  return spec(name).constructor(**kwargs)


def spec(name: str) -> ModelSpec:
  """The `ModelSpec` of `name`; raises KeyError naming the known models if it is unknown."""
  try:
    return _MODELS[name]
  except KeyError:
    raise KeyError(f"Unknown model {name!r}; known models: {', '.join(names())}.") from None


def names() -> list[str]:
  """The registered model names, sorted."""
  return sorted(_MODELS)


for _name in ("r3d_18", "r3d_34", "mc3_18", "mc3_34", "r2plus1d_18", "r2plus1d_34", "r3d_tiny"):
  register(_name, getattr(video, _name), input_rank=5)
# PyTorchVideo's model zoo, with the clips its Kinetics-400 weights were trained on
# (frames x sampling stride, crop): SLOW_8x8, C2D_8x8, I3D_8x8, CSN_32x2, R2PLUS1D_16x4.
for _name, _frames, _stride in (
  ("slow_r50", 8, 8),
  ("c2d_r50", 8, 8),
  ("i3d_r50", 8, 8),
  ("csn_r101", 32, 2),
  ("ir_csn_152", 32, 2),
  ("r2plus1d_r50", 16, 4),
):
  register(
    _name,
    getattr(pytorchvideo_resnet, _name),
    input_rank=5,
    num_frames=_frames,
    frame_stride=_stride,
    crop_size=224,
  )
# SLOWFAST_8x8_R50: the clip is the fast pathway's 32 frames at stride 2 (slow: 8 of them, inside).
register(
  "slowfast_r50", slowfast.slowfast_r50, input_rank=5, num_frames=32, frame_stride=2, crop_size=224
)
for _name in (
  "resnet18",
  "resnet34",
  "resnet50",
  "resnet101",
  "resnet152",
  "resnet20",
  "resnet32",
  "resnet44",
  "resnet56",
  "resnet110",
):
  register(_name, getattr(resnet, _name), input_rank=4)
# Per-frame (TSN-style) video baselines: the 2D network on every frame, features averaged over time.
# Same parameter tree as the 2D model, so converted ImageNet weights load as they are.
for _name in ("resnet18", "resnet50"):
  register(f"tsn_{_name}", getattr(resnet, _name), input_rank=5)
# TSM: the same per-frame ResNet-50 with a temporal shift in every block; 8 segments (one frame each,
# spread over the video, so no fixed frame stride), 224 crops (MMAction2's tsm_r50 1x1x8 recipe).
register("tsm_r50", resnet.tsm_r50, input_rank=5, num_frames=8, crop_size=224)
# X3D (PyTorchVideo), with the clip each size is trained on: (frames, frame stride, crop).
for _name, (_frames, _stride, _crop) in x3d.CLIPS.items():
  register(
    _name,
    getattr(x3d, _name),
    input_rank=5,
    num_frames=_frames,
    frame_stride=_stride,
    crop_size=_crop,
  )
# Super-resolution (jaxres.models.sr): image networks take [B,H,W,3] and also run per frame on clips.
for _name in (
  "edsr_baseline",
  "edsr",
  "edsr_bicubic_baseline",
  "edsr_bicubic",
  "edsr_bicubic_tiny",
  "vdsr",
  "vdsr_tiny",
):
  register(_name, getattr(sr, _name), input_rank=4, task="super_resolution")
for _name in ("recurrent_vsr", "recurrent_vsr_tiny"):
  register(_name, getattr(sr, _name), input_rank=5, task="super_resolution")
# Video SR exact to BasicSR 1.4.2 (x4 only).
register("basicvsr", basicvsr.BasicVSR, input_rank=5, task="super_resolution")
register("basicvsrpp", basicvsrpp.BasicVSRPlusPlus, input_rank=5, task="super_resolution")
register("iconvsr", iconvsr.IconVSR, input_rank=5, task="super_resolution")
