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

`conv1.net.conv.weight` (the shift wrapping the whole `ConvModule`) is read too. Keys become
torchvision's and `from_torchvision` converts them: `tsm_r50` has `resnet50`'s parameters.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np

from jaxres.convert.state_dict import ConversionError
from jaxres.convert.torchvision import from_torchvision

# MMAction2 key (regex) -> torchvision key.
_RULES = [
    (r"^backbone\.conv1\.conv\.(\w+)$", r"conv1.\1"),
    (r"^backbone\.conv1\.bn\.(\w+)$", r"bn1.\1"),
    (r"^backbone\.(layer\d\.\d+)\.conv1\.(?:conv\.net|net\.conv)\.(\w+)$", r"\1.conv1.\2"),
    (r"^backbone\.(layer\d\.\d+)\.conv(\d)\.conv\.(\w+)$", r"\1.conv\2.\3"),
    (r"^backbone\.(layer\d\.\d+)\.conv(\d)\.(?:net\.)?bn\.(\w+)$", r"\1.bn\2.\3"),
    (r"^backbone\.(layer\d\.\d+)\.downsample\.conv\.(\w+)$", r"\1.downsample.0.\2"),
    (r"^backbone\.(layer\d\.\d+)\.downsample\.bn\.(\w+)$", r"\1.downsample.1.\2"),
    (r"^cls_head\.fc_cls\.(\w+)$", r"fc.\1"),
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
  renamed, unknown, names = {}, [], {}
  for key, value in state_dict.items():
    if key.endswith("num_batches_tracked"):
      continue
    for pattern, replacement in _RULES:
      if re.match(pattern, key):
        new = re.sub(pattern, replacement, key)
        renamed[new], names[new] = value, key
        break
    else:
      unknown.append(key)
  if unknown:
    raise ConversionError(f"Cannot convert this state dict to tsm_r50: unknown keys "
                          f"({len(unknown)}): {', '.join(unknown)} (MMAction2's TSM-R50 layout is "
                          "in jaxres.convert.mmaction2's docstring).")
  if "fc.weight" not in renamed:
    raise ConversionError("The state dict has no 'cls_head.fc_cls.weight'; is it MMAction2's TSM?")
  try:
    return from_torchvision(renamed, "tsn_resnet50", dtype=dtype)
  except ConversionError as error:  # say it in MMAction2's names
    message = str(error).replace("tsn_resnet50", "tsm_r50")
    pattern = "|".join(re.escape(k) for k in sorted(names, key=len, reverse=True))
    raise ConversionError(re.sub(rf"(?<![\w.])({pattern})(?![\w.])",
                                 lambda m: names[m.group(1)], message)) from None
