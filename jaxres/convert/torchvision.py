"""torchvision `state_dict` -> jaxres variables.

Torch tensors are read through `.numpy()`, so this module does not import torch: a state dict of
numpy arrays (e.g. from `np.load`) converts too.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import flax
import jax
import jax.numpy as jnp
import numpy as np

from jaxres import models

# Module-path rules: torch module path (regex) -> jaxres module path. Leaves are mapped separately.
_BLOCKS_3D = [
    (r"^layer(\d)\.(\d+)\.conv(\d)\.0\.0$", r"layer\1_\2/conv\3/spatial"),  # (2+1)D spatial conv
    (r"^layer(\d)\.(\d+)\.conv(\d)\.0\.1$", r"layer\1_\2/conv\3/bn"),       # (2+1)D mid BN
    (r"^layer(\d)\.(\d+)\.conv(\d)\.0\.3$", r"layer\1_\2/conv\3/temporal"),  # (2+1)D temporal conv
    (r"^layer(\d)\.(\d+)\.conv(\d)\.0$", r"layer\1_\2/conv\3"),
    (r"^layer(\d)\.(\d+)\.conv(\d)\.1$", r"layer\1_\2/bn\3"),
]
_COMMON = [
    (r"^layer(\d)\.(\d+)\.downsample\.0$", r"layer\1_\2/downsample/conv"),
    (r"^layer(\d)\.(\d+)\.downsample\.1$", r"layer\1_\2/downsample/bn"),
    (r"^fc$", "fc"),
]
_RULES = {
    "r3d": [(r"^stem\.0$", "stem/conv"), (r"^stem\.1$", "stem/bn")] + _BLOCKS_3D + _COMMON,
    "r2plus1d": [(r"^stem\.0$", "stem/conv1"), (r"^stem\.1$", "stem/bn1"),
                 (r"^stem\.3$", "stem/conv2"), (r"^stem\.4$", "stem/bn2")] + _BLOCKS_3D + _COMMON,
    "resnet": [(r"^conv1$", "stem/conv"), (r"^bn1$", "stem/bn"),
               (r"^layer(\d)\.(\d+)\.(conv|bn)(\d)$", r"layer\1_\2/\3\4")] + _COMMON,
}
_FAMILY = {
    "r3d_18": "r3d", "r3d_34": "r3d", "mc3_18": "r3d", "mc3_34": "r3d",
    "r2plus1d_18": "r2plus1d", "r2plus1d_34": "r2plus1d",
    **{name: "resnet" for name in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                                   "tsn_resnet18", "tsn_resnet50")},
}
ARCHS = tuple(sorted(_FAMILY))


class ConversionError(ValueError):
  """A state dict does not fit the architecture; the message lists every offending key."""


def _to_numpy(value: Any) -> np.ndarray:
  if hasattr(value, "detach"):  # a torch tensor
    value = value.detach().cpu().numpy()
  return np.asarray(value)


def _target(torch_key: str, value: np.ndarray, rules) -> tuple[str, str] | None:
  """(collection, 'path/to/leaf') of a torch key, or None if no rule knows it."""
  module_path, _, leaf = torch_key.rpartition(".")
  for pattern, replacement in rules:
    if re.match(pattern, module_path):
      path = re.sub(pattern, replacement, module_path)
      break
  else:
    return None
  if leaf == "weight":
    return "params", f"{path}/{'scale' if value.ndim == 1 else 'kernel'}"
  if leaf == "bias":
    return "params", f"{path}/bias"
  if leaf == "running_mean":
    return "batch_stats", f"{path}/mean"
  if leaf == "running_var":
    return "batch_stats", f"{path}/var"
  return None


def _to_jax_layout(value: np.ndarray, leaf: str) -> np.ndarray:
  # torch conv [O, I, *k] -> [*k, I, O]; linear [O, I] -> [I, O].
  if leaf == "kernel":
    return np.transpose(value, tuple(range(2, value.ndim)) + (1, 0))
  return value


def from_torchvision(state_dict: Mapping[str, Any], arch: str, *, dtype: Any = np.float32
                     ) -> dict[str, Any]:
  """Converts a torchvision ResNet `state_dict` into jaxres variables.

  The number of classes is read from `fc.weight`. Every key must map to a jaxres parameter of the
  right shape and every jaxres parameter must be filled; otherwise a `ConversionError` lists the
  unknown keys, the missing parameters and the shape mismatches by name.

  Args:
    state_dict: `model.state_dict()` of a torchvision video ResNet (r3d_18, mc3_18, r2plus1d_18 and
      their 34-layer twins) or ImageNet ResNet; torch tensors or numpy arrays.
    arch: the jaxres name of the architecture, one of `ARCHS` (`tsn_resnet*` take ImageNet weights).
    dtype: dtype of the returned arrays.

  Returns:
    `{"params": ..., "batch_stats": ...}` of numpy arrays, ready for `model.apply`.

  Example:
    >>> sd = torchvision.models.video.r2plus1d_18(weights="KINETICS400_V1").state_dict()
    >>> variables = from_torchvision(sd, "r2plus1d_18")
    >>> logits = jaxres.models.get("r2plus1d_18").apply(variables, clips, train=False)
  """
  if arch not in _FAMILY:
    raise ConversionError(f"No torchvision layout known for {arch!r}; convertible: {', '.join(ARCHS)}.")
  rules = _RULES[_FAMILY[arch]]
  arrays = {key: _to_numpy(value) for key, value in state_dict.items()
            if not key.endswith("num_batches_tracked")}
  if "fc.weight" not in arrays:
    raise ConversionError(f"The state dict has no 'fc.weight'; is it a torchvision {arch}?")
  num_classes = arrays["fc.weight"].shape[0]

  model = models.get(arch, num_classes=num_classes)
  rank = models.spec(arch).input_rank
  dummy = jax.ShapeDtypeStruct((1, 4, 32, 32, 3) if rank == 5 else (1, 32, 32, 3), jnp.float32)
  expected = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), dummy)
  expected = {col: flax.traverse_util.flatten_dict(flax.core.unfreeze(expected[col]), sep="/")
              for col in ("params", "batch_stats")}

  converted = {"params": {}, "batch_stats": {}}
  unknown, mismatched = [], []
  for key, value in arrays.items():
    target = _target(key, value, rules)
    if target is None or target[1] not in expected[target[0]]:
      unknown.append(key)
      continue
    collection, path = target
    value = _to_jax_layout(value, path.rpartition("/")[2])
    want = expected[collection][path].shape
    if value.shape != want:
      mismatched.append(f"{key} {tuple(value.shape)} -> {collection}/{path} {tuple(want)}")
      continue
    converted[collection][path] = value.astype(dtype)
  missing = [f"{col}/{path}" for col in expected for path in expected[col]
             if path not in converted[col]]
  if unknown or missing or mismatched:
    lines = [f"Cannot convert this state dict to {arch}:"]
    for title, items in (("unknown keys", unknown), ("missing parameters", missing),
                         ("shape mismatches", mismatched)):
      if items:
        lines.append(f"  {title} ({len(items)}): " + ", ".join(items))
    raise ConversionError("\n".join(lines))
  return {col: flax.traverse_util.unflatten_dict(converted[col], sep="/") for col in converted}
