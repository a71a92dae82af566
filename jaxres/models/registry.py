"""The name -> model registry behind `jaxres.models.get`."""

from __future__ import annotations

import dataclasses
from typing import Callable

import flax.linen as nn

from jaxres.models import resnet, sr, video, x3d


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """What the registry knows of a model.

  Attributes:
    constructor: builds the module from keyword arguments.
    input_rank: 5 for clips `[B, T, H, W, C]`, 4 for images `[B, H, W, C]`.
    task: "classification" or "super_resolution" (decides the batch format it trains on).
    clip_frames: frames of the clip the model is trained and evaluated on (None: any).
    frame_stride: sampling stride of those frames in the source video (None: not fixed).
    crop_size: side of its square crop (None: any).
  """

  constructor: Callable[..., nn.Module]
  input_rank: int
  task: str = "classification"
  clip_frames: int | None = None
  frame_stride: int | None = None
  crop_size: int | None = None


_MODELS: dict[str, ModelSpec] = {}


def register(name: str, constructor: Callable[..., nn.Module], *, input_rank: int,
             task: str = "classification", clip_frames: int | None = None,
             frame_stride: int | None = None, crop_size: int | None = None) -> None:
  """Adds a model under `name` (fields as in `ModelSpec`); raises ValueError if the name is taken."""
  if name in _MODELS:
    raise ValueError(f"A model named {name!r} is already registered.")
  _MODELS[name] = ModelSpec(constructor, input_rank, task, clip_frames, frame_stride, crop_size)


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
for _name in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
              "resnet20", "resnet32", "resnet44", "resnet56", "resnet110"):
  register(_name, getattr(resnet, _name), input_rank=4)
# Per-frame (TSN-style) video baselines: the 2D network on every frame, features averaged over time.
# Same parameter tree as the 2D model, so converted ImageNet weights load as they are.
for _name in ("resnet18", "resnet50"):
  register(f"tsn_{_name}", getattr(resnet, _name), input_rank=5)
# TSM: the same per-frame ResNet-50 with a temporal shift in every block; 8 segments (one frame each,
# spread over the video, so no fixed frame stride), 224 crops (MMAction2's tsm_r50 1x1x8 recipe).
register("tsm_r50", resnet.tsm_r50, input_rank=5, clip_frames=8, crop_size=224)
# X3D (PyTorchVideo), with the clip each size is trained on: (frames, frame stride, crop).
for _name, (_frames, _stride, _crop) in x3d.CLIPS.items():
  register(_name, getattr(x3d, _name), input_rank=5, clip_frames=_frames, frame_stride=_stride,
           crop_size=_crop)
# Super-resolution (jaxres.models.sr): image networks take [B,H,W,3] and also run per frame on clips.
for _name in ("edsr_baseline", "edsr", "edsr_tiny", "vdsr", "vdsr_tiny"):
  register(_name, getattr(sr, _name), input_rank=4, task="super_resolution")
for _name in ("basicvsr", "basicvsr_tiny"):
  register(_name, getattr(sr, _name), input_rank=5, task="super_resolution")
