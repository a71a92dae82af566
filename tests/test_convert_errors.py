"""Every converter reports a state dict that does not fit in one format.

Each case is a state dict with one unknown key, a classifier (or last conv) of the wrong shapes and
nothing else, so every other parameter is missing. Numpy arrays stand in for torch tensors.
"""

import re

import numpy as np
import pytest

from jaxres.convert import (
  ConversionError,
  from_basicsr,
  from_mmaction2_tsm,
  from_pytorchvideo_x3d,
  from_torchvision,
)


def _head(prefix: str) -> dict[str, np.ndarray]:
  """A 4-class classifier `prefix` with 7 inputs and 5 biases, and an unknown key."""
  return {
    f"{prefix}.weight": np.zeros((4, 7)),
    f"{prefix}.bias": np.zeros(5),
    "extra.weight": np.zeros(3),
  }


_EDSR = {
  "conv_first.weight": np.zeros((8, 3, 3, 3)),
  "upsample.0.weight": np.zeros((32, 8, 3, 3)),
  "conv_last.weight": np.zeros((3, 7, 3, 3)),
  "conv_last.bias": np.zeros(5),
  "extra.weight": np.zeros(3),
}

# name: (convert, arch, state dict, the shape-mismatch entries, a parameter that must be missing)
CASES = {
  "torchvision": (
    lambda sd: from_torchvision(sd, "r3d_18"),
    "r3d_18",
    _head("fc"),
    "fc.weight (4, 7) -> params/fc/kernel (512, 4), fc.bias (5,) -> params/fc/bias (4,)",
    "batch_stats/layer2_0/bn1/var",
  ),
  "x3d": (
    lambda sd: from_pytorchvideo_x3d(sd, "x3d_xs"),
    "x3d_xs",
    _head("blocks.5.proj"),
    "blocks.5.proj.weight (4, 7) -> params/head/fc/kernel (2048, 4), "
    "blocks.5.proj.bias (5,) -> params/head/fc/bias (4,)",
    "params/stem/conv_t/kernel",
  ),
  "mmaction2": (
    from_mmaction2_tsm,
    "tsm_r50",
    _head("cls_head.fc_cls"),
    "cls_head.fc_cls.weight (4, 7) -> params/fc/kernel (2048, 4), "
    "cls_head.fc_cls.bias (5,) -> params/fc/bias (4,)",
    "batch_stats/layer2_0/downsample/bn/var",
  ),
  "basicsr": (
    lambda sd: from_basicsr(sd, "edsr_baseline"),
    "edsr_baseline",
    _EDSR,
    "conv_last.weight (3, 7, 3, 3) -> params/conv_last/kernel (3, 3, 8, 3), "
    "conv_last.bias (5,) -> params/conv_last/bias (3,)",
    "params/conv_after_body/kernel",
  ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_unknown_missing_and_mismatched_keys_are_reported_in_one_format(name):
  convert, arch, state_dict, mismatches, a_missing_one = CASES[name]
  with pytest.raises(ConversionError) as error:
    convert(state_dict)
  header, unknown, missing, mismatched = str(error.value).split("\n")
  assert header == f"Cannot convert this state dict to {arch}:"
  assert unknown == "  unknown keys (1): extra.weight"
  count, paths = re.fullmatch(r"  missing parameters \((\d+)\): (.*)", missing).groups()
  paths = paths.split(", ")
  assert len(paths) == int(count) and a_missing_one in paths
  assert all(re.fullmatch(r"(params|batch_stats)/[\w/]+", path) for path in paths)
  assert mismatched == f"  shape mismatches (2): {mismatches}"  # torch's layout, then jaxres'
