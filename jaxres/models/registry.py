"""The name -> model registry behind `jaxres.models.get`."""

from __future__ import annotations

import dataclasses
from typing import Callable

import flax.linen as nn

from jaxres.models import basicvsr, basicvsrpp, iconvsr, resnet, sr, video


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """What the registry knows of a model.

  Attributes:
    constructor: builds the module from keyword arguments.
    input_rank: 5 for clips `[B, T, H, W, C]`, 4 for images `[B, H, W, C]`.
    task: "classification" or "super_resolution" (decides the batch format it trains on).
  """

  constructor: Callable[..., nn.Module]
  input_rank: int
  task: str = "classification"


_MODELS: dict[str, ModelSpec] = {}


def register(name: str, constructor: Callable[..., nn.Module], *, input_rank: int,
             task: str = "classification") -> None:
  """Adds a model under `name`; raises ValueError if the name is taken."""
  if name in _MODELS:
    raise ValueError(f"A model named {name!r} is already registered.")
  _MODELS[name] = ModelSpec(constructor, input_rank, task)


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
# Super-resolution (jaxres.models.sr): image networks take [B,H,W,3] and also run per frame on clips.
for _name in ("edsr_baseline", "edsr", "edsr_bicubic_baseline", "edsr_bicubic", "edsr_bicubic_tiny",
              "vdsr", "vdsr_tiny"):
  register(_name, getattr(sr, _name), input_rank=4, task="super_resolution")
for _name in ("recurrent_vsr", "recurrent_vsr_tiny"):
  register(_name, getattr(sr, _name), input_rank=5, task="super_resolution")
# Video SR exact to BasicSR 1.4.2 (x4 only).
register("basicvsr", basicvsr.BasicVSR, input_rank=5, task="super_resolution")
register("basicvsrpp", basicvsrpp.BasicVSRPlusPlus, input_rank=5, task="super_resolution")
register("iconvsr", iconvsr.IconVSR, input_rank=5, task="super_resolution")
