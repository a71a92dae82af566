"""PyTorchVideo X3D `state_dict` (`hub.x3d_{xs,s,m,l}`, `create_x3d`) -> jaxres variables.

PyTorchVideo's layout: `blocks.0` the stem, `blocks.1`..`blocks.4` the stages (`res_blocks.J`),
`blocks.5` the head. Its stem names the two convolutions the other way round from what they do:
`conv.conv_t` is the 1x3x3 spatial conv and `conv.conv_xy` the depthwise 5x1x1 temporal one (it runs
`conv_t` first); jaxres names them by what they do (`stem/conv_xy`, `stem/conv_t`). The rules
run through `jaxres.convert.state_dict`, so torch is not imported: tensors are read through
`.numpy()`.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from jaxres.convert.state_dict import ConversionError, convert_state_dict

ARCHS = ("x3d_xs", "x3d_s", "x3d_m", "x3d_l")

# torch module path (regex) -> jaxres module path.
_RULES = [
  (r"^blocks\.0\.conv\.conv_t$", "stem/conv_xy"),  # 1x3x3 (named conv_t by PyTorchVideo)
  (r"^blocks\.0\.conv\.conv_xy$", "stem/conv_t"),  # depthwise 5x1x1
  (r"^blocks\.0\.norm$", "stem/bn"),
  (r"^blocks\.([1-4])\.res_blocks\.(\d+)\.branch1_conv$", r"layer\1_\2/downsample_conv"),
  (r"^blocks\.([1-4])\.res_blocks\.(\d+)\.branch1_norm$", r"layer\1_\2/downsample_bn"),
  (r"^blocks\.([1-4])\.res_blocks\.(\d+)\.branch2\.conv_a$", r"layer\1_\2/conv1"),
  (r"^blocks\.([1-4])\.res_blocks\.(\d+)\.branch2\.norm_a$", r"layer\1_\2/bn1"),
  (r"^blocks\.([1-4])\.res_blocks\.(\d+)\.branch2\.conv_b$", r"layer\1_\2/conv2"),
  (r"^blocks\.([1-4])\.res_blocks\.(\d+)\.branch2\.norm_b\.0$", r"layer\1_\2/bn2"),
  (r"^blocks\.([1-4])\.res_blocks\.(\d+)\.branch2\.norm_b\.1\.block\.0$", r"layer\1_\2/se/reduce"),
  (r"^blocks\.([1-4])\.res_blocks\.(\d+)\.branch2\.norm_b\.1\.block\.2$", r"layer\1_\2/se/expand"),
  (r"^blocks\.([1-4])\.res_blocks\.(\d+)\.branch2\.conv_c$", r"layer\1_\2/conv3"),
  (r"^blocks\.([1-4])\.res_blocks\.(\d+)\.branch2\.norm_c$", r"layer\1_\2/bn3"),
  (r"^blocks\.5\.pool\.pre_conv$", "head/pre_conv"),
  (r"^blocks\.5\.pool\.pre_norm$", "head/pre_bn"),
  (r"^blocks\.5\.pool\.post_conv$", "head/post_conv"),
  (r"^blocks\.5\.proj$", "head/fc"),
]


def from_pytorchvideo_x3d(
  state_dict: Mapping[str, Any], arch: str, *, dtype: Any = np.float32, **model_fields
) -> dict[str, Any]:
  """Converts a PyTorchVideo X3D `state_dict` into jaxres variables for `models.get(arch)`.

  The number of classes is read from `blocks.5.proj.weight`. Every key must map to a jaxres
  parameter of the right shape and every jaxres parameter must be filled; otherwise a
  `ConversionError` lists the unknown keys, the missing parameters and the shape mismatches by
  name. x3d_xs, x3d_s and x3d_m share one layout (their weights convert to any of them); x3d_l is
  deeper.

  Args:
    state_dict: `model.state_dict()` of `pytorchvideo.models.hub.x3d_*` (torch tensors or numpy
      arrays), or a loaded `.pyth` checkpoint, whose `model_state` holds it.
    arch: "x3d_xs", "x3d_s", "x3d_m" or "x3d_l".
    dtype: dtype of the returned arrays.
    **model_fields: `X3D` fields of a model built with other `create_x3d` arguments, e.g.
      `depth_factor=0.4` for `create_x3d(depth_factor=0.4)`.

  Returns:
    `{"params": ..., "batch_stats": ...}` of numpy arrays, ready for `model.apply`.

  Example:
    >>> checkpoint = torch.load("X3D_M.pyth", map_location="cpu")
    >>> variables = from_pytorchvideo_x3d(checkpoint, "x3d_m")
    >>> logits = jaxres.models.get("x3d_m").apply(variables, clips, train=False)
  """
  if arch not in ARCHS:
    raise ConversionError(
      f"No PyTorchVideo X3D layout known for {arch!r}; convertible: {', '.join(ARCHS)}."
    )
  if "model_state" in state_dict:  # a .pyth checkpoint
    state_dict = state_dict["model_state"]
  return convert_state_dict(
    state_dict,
    arch,
    _RULES,
    classifier_key="blocks.5.proj.weight",
    reference="PyTorchVideo",
    dtype=dtype,
    model_fields=model_fields,
  )
