"""PyTorchVideo `state_dict` (its model zoo's `.pyth` `model_state`) -> jaxres variables.

PyTorchVideo's networks are `Net(blocks=[stem, stage1, (pool,) stage2, .., head])`; the keys name
the block by its index (`blocks.1.res_blocks.0.branch2.conv_a.weight`), so each architecture's
rules say which index is which stage. `CONVERTERS` maps each architecture to its converter: one
table, so other PyTorchVideo families add their own entry.

Example:
  >>> state_dict = torch.load("SLOW_8x8_R50.pyth", weights_only=True)["model_state"]
  >>> variables = from_pytorchvideo(state_dict, "slow_r50")
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from jaxres.convert import pytorchvideo_x3d
from jaxres.convert.state_dict import ConversionError, Rules, convert_state_dict


def _resnet_rules(stage_blocks: Sequence[int], head_block: int) -> Rules:
  """Rules of a `create_resnet`/`create_csn`/`create_r2plus1d` network whose stages are the blocks
  `stage_blocks` (stage 1 first) and whose head is block `head_block`."""
  rules = [
    (r"^blocks\.0\.conv$", "stem_conv"),
    (r"^blocks\.0\.norm$", "stem_norm"),
    (rf"^blocks\.{head_block}\.proj$", "fc"),
  ]
  for stage, block in enumerate(stage_blocks, start=1):
    prefix = rf"^blocks\.{block}\.res_blocks\.(\d+)\."
    rules += [
      (prefix + r"branch1_conv$", rf"layer{stage}_\1/downsample/conv"),
      (prefix + r"branch1_norm$", rf"layer{stage}_\1/downsample/bn"),
      (prefix + r"branch2\.conv_b\.(conv_t|conv_xy|norm)$", rf"layer{stage}_\1/conv_b/\2"),
      (prefix + r"branch2\.(conv_[abc]|norm_[abc])$", rf"layer{stage}_\1/\2"),
    ]
  return rules


def _slowfast_rules() -> Rules:
  """Rules of `create_slowfast`: block 0 holds both stems and the first fusion, blocks 1-4 both
  pathways' stages (pathway 0 slow, 1 fast) and fusions 1-3, block 6 the head."""
  rules = [(r"^blocks\.6\.proj$", "fc")]
  for index, pathway in enumerate(("slow", "fast")):
    rules += [(rf"^blocks\.0\.multipathway_blocks\.{index}\.(conv|norm)$", rf"{pathway}_stem_\1")]
    for stage in range(1, 5):
      prefix = rf"^blocks\.{stage}\.multipathway_blocks\.{index}\.res_blocks\.(\d+)\."
      rules += [
        (prefix + r"branch1_conv$", rf"{pathway}_layer{stage}_\1/downsample/conv"),
        (prefix + r"branch1_norm$", rf"{pathway}_layer{stage}_\1/downsample/bn"),
        (prefix + r"branch2\.(conv_[abc]|norm_[abc])$", rf"{pathway}_layer{stage}_\1/\2"),
      ]
  rules += [
    (r"^blocks\.(\d)\.multipathway_fusion\.conv_fast_to_slow$", r"fuse\1/conv"),
    (r"^blocks\.(\d)\.multipathway_fusion\.norm$", r"fuse\1/norm"),
  ]
  return rules


_PLAIN = _resnet_rules((1, 2, 3, 4), head_block=5)
_STAGE1_POOL = _resnet_rules((1, 3, 4, 5), head_block=6)  # block 2 is the 2x1x1 max-pool
_RULES = {
  "slow_r50": _PLAIN,
  "c2d_r50": _STAGE1_POOL,
  "i3d_r50": _STAGE1_POOL,
  "csn_r101": _PLAIN,
  "ir_csn_152": _PLAIN,
  "r2plus1d_r50": _PLAIN,
}


def _convert_resnet(
  state_dict: Mapping[str, Any], arch: str, *, dtype: Any = np.float32
) -> dict[str, Any]:
  head = 6 if _RULES[arch] is _STAGE1_POOL else 5
  return convert_state_dict(
    state_dict,
    arch,
    _RULES[arch],
    classifier_key=f"blocks.{head}.proj.weight",
    reference="PyTorchVideo",
    dtype=dtype,
  )


def _convert_slowfast(
  state_dict: Mapping[str, Any], arch: str, *, dtype: Any = np.float32
) -> dict[str, Any]:
  return convert_state_dict(
    state_dict,
    arch,
    _slowfast_rules(),
    classifier_key="blocks.6.proj.weight",
    reference="PyTorchVideo",
    dtype=dtype,
  )


# Architecture -> converter(state_dict, arch, dtype=) -> variables.
CONVERTERS: dict[str, Callable[..., dict[str, Any]]] = {
  **{arch: _convert_resnet for arch in _RULES},
  "slowfast_r50": _convert_slowfast,
  **{arch: pytorchvideo_x3d.from_pytorchvideo_x3d for arch in pytorchvideo_x3d.ARCHS},
}


def pytorchvideo_archs() -> tuple[str, ...]:
  """The architectures `from_pytorchvideo` converts, sorted."""
  return tuple(sorted(CONVERTERS))


def from_pytorchvideo(
  state_dict: Mapping[str, Any], arch: str, *, dtype: Any = np.float32
) -> dict[str, Any]:
  """Converts a PyTorchVideo model's `state_dict` into jaxres variables.

  The number of classes is read from the head's `proj.weight`. Every key must map to a jaxres
  parameter of the right shape and every jaxres parameter must be filled; otherwise a
  `ConversionError` lists the unknown keys, the missing parameters and the shape mismatches by name.

  Args:
    state_dict: `model.state_dict()` of `pytorchvideo.models.hub.<arch>()` (or the `model_state` of
      a model-zoo `.pyth`, see `jaxres.convert.load_torch_state_dict`); torch tensors or numpy
      arrays.
    arch: the jaxres (= PyTorchVideo hub) name, one of `pytorchvideo_archs()`.
    dtype: dtype of the returned arrays.

  Returns:
    `{"params": ..., "batch_stats": ...}` of numpy arrays, ready for `model.apply`.

  Example:
    >>> from pytorchvideo.models import hub
    >>> variables = from_pytorchvideo(hub.csn_r101().state_dict(), "csn_r101")
    >>> logits = jaxres.models.get("csn_r101").apply(variables, clips, train=False)
  """
  if arch not in CONVERTERS:
    raise ConversionError(
      f"No PyTorchVideo layout known for {arch!r}; convertible: {', '.join(pytorchvideo_archs())}."
    )
  return CONVERTERS[arch](state_dict, arch, dtype=dtype)
