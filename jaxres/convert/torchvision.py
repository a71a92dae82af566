"""torchvision `state_dict` -> jaxres variables.

Torch tensors are read through `.numpy()`, so this module does not import torch: a state dict of
numpy arrays (e.g. from `np.load`) converts too.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from jaxres.convert.state_dict import ConversionError, convert_state_dict

# Module-path rules: torch module path (regex) -> jaxres module path. Leaves are mapped separately.
_BLOCKS_3D = [
  (r"^layer(\d)\.(\d+)\.conv(\d)\.0\.0$", r"layer\1_\2/conv\3/spatial"),  # (2+1)D spatial conv
  (r"^layer(\d)\.(\d+)\.conv(\d)\.0\.1$", r"layer\1_\2/conv\3/bn"),  # (2+1)D mid BN
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
  "r2plus1d": [
    (r"^stem\.0$", "stem/conv1"),
    (r"^stem\.1$", "stem/bn1"),
    (r"^stem\.3$", "stem/conv2"),
    (r"^stem\.4$", "stem/bn2"),
  ]
  + _BLOCKS_3D
  + _COMMON,
  "resnet": [
    (r"^conv1$", "stem/conv"),
    (r"^bn1$", "stem/bn"),
    (r"^layer(\d)\.(\d+)\.(conv|bn)(\d)$", r"layer\1_\2/\3\4"),
  ]
  + _COMMON,
}
_FAMILY = {
  "r3d_18": "r3d",
  "r3d_34": "r3d",
  "mc3_18": "r3d",
  "mc3_34": "r3d",
  "r2plus1d_18": "r2plus1d",
  "r2plus1d_34": "r2plus1d",
  **{
    name: "resnet"
    for name in (
      "resnet18",
      "resnet34",
      "resnet50",
      "resnet101",
      "resnet152",
      "tsn_resnet18",
      "tsn_resnet50",
    )
  },
}
ARCHS = tuple(sorted(_FAMILY))


def from_torchvision(
  state_dict: Mapping[str, Any], arch: str, *, dtype: Any = np.float32
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
    raise ConversionError(
      f"No torchvision layout known for {arch!r}; convertible: {', '.join(ARCHS)}."
    )
  return convert_state_dict(
    state_dict,
    arch,
    _RULES[_FAMILY[arch]],
    classifier_key="fc.weight",
    reference="torchvision",
    dtype=dtype,
  )
