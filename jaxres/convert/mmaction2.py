"""MMAction2 TSM `state_dict` (`ResNetTSM` depth 50 + `TSMHead`) -> jaxres `tsm_r50` variables.

The layout assumed (MMAction2 1.x, `mmaction/models/backbones/resnet_tsm.py`; its checkpoints keep
the state dict under `state_dict`): the backbone is MMAction2's ResNet, whose convolutions are
`ConvModule`s (`.conv` and `.bn`), and "blockres" shifting wraps the `conv` of every block's
`conv1`, so that conv's weight is `conv1.conv.net.weight`:

  backbone.conv1.conv.weight, backbone.conv1.bn.{weight,bias,running_mean,running_var}
  backbone.layer{1-4}.{j}.conv1.conv.net.weight, ...conv1.bn.*      (shifted 1x1 conv)
  backbone.layer{1-4}.{j}.conv{2,3}.conv.weight, ...conv{2,3}.bn.*
  backbone.layer{1-4}.0.downsample.conv.weight, ...downsample.bn.*
  cls_head.fc_cls.{weight,bias}

`conv1.net.conv.weight` (the shift wrapping the whole `ConvModule`) is read too. The module paths
map straight onto `tsm_r50`'s (`resnet50`'s parameters) through `jaxres.convert.state_dict`.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from jaxres.convert.state_dict import convert_state_dict

# MMAction2 module path (regex) -> jaxres module path.
_RULES = [
  (r"^backbone\.conv1\.conv$", "stem/conv"),
  (r"^backbone\.conv1\.bn$", "stem/bn"),
  (r"^backbone\.layer(\d)\.(\d+)\.conv1\.(?:conv\.net|net\.conv)$", r"layer\1_\2/conv1"),
  (r"^backbone\.layer(\d)\.(\d+)\.conv(\d)\.conv$", r"layer\1_\2/conv\3"),
  (r"^backbone\.layer(\d)\.(\d+)\.conv(\d)\.(?:net\.)?bn$", r"layer\1_\2/bn\3"),
  (r"^backbone\.layer(\d)\.(\d+)\.downsample\.conv$", r"layer\1_\2/downsample/conv"),
  (r"^backbone\.layer(\d)\.(\d+)\.downsample\.bn$", r"layer\1_\2/downsample/bn"),
  (r"^cls_head\.fc_cls$", "fc"),
]


def from_mmaction2_tsm(state_dict: Mapping[str, Any], *, dtype: Any = np.float32) -> dict[str, Any]:
  """Converts an MMAction2 TSM-R50 `state_dict` into variables of `models.get("tsm_r50")`.

  The number of classes is read from `cls_head.fc_cls.weight`. Keys outside the layout in this
  module's docstring, missing parameters and shape mismatches raise a `ConversionError` that
  names them by their MMAction2 keys.

  Args:
    state_dict: the state dict (torch tensors or numpy arrays), or a loaded checkpoint holding it
      under `state_dict`.
    dtype: dtype of the returned arrays.

  Returns:
    `{"params": ..., "batch_stats": ...}` of numpy arrays.

  Example:
    >>> checkpoint = torch.load("tsm_r50_kinetics400.pth", map_location="cpu")
    >>> variables = from_mmaction2_tsm(checkpoint)
    >>> logits = jaxres.models.get("tsm_r50").apply(variables, clips, train=False)   # 8 frames
  """
  if "state_dict" in state_dict:  # an MMAction2 checkpoint
    state_dict = state_dict["state_dict"]
  return convert_state_dict(
    state_dict,
    "tsm_r50",
    _RULES,
    classifier_key="cls_head.fc_cls.weight",
    reference="MMAction2",
    dtype=dtype,
  )
