"""What the parity tests share about their torch references: BatchNorm layers with random running
statistics and affine terms (so that a converted BatchNorm is really compared), the relative error
they are judged by, the channels-last twin of a torch input, and the alias of the torchvision
module that PyTorchVideo and BasicSR import by its old name.

Import it after `pytest.importorskip("torch")`: torch is imported where it is used, not here.
"""

import sys

import numpy as np


def alias_renamed_torchvision_modules():
  """Makes `torchvision.transforms.functional_tensor` importable (tests only).

  PyTorchVideo 0.1.5 and BasicSR 1.4.2 import it by that name; torchvision 0.17 renamed it
  `_functional_tensor`. Call before importing either of them.
  """
  import torchvision  # pylint: disable=import-outside-toplevel

  sys.modules.setdefault(
    "torchvision.transforms.functional_tensor", torchvision.transforms._functional_tensor
  )


def randomise_batchnorm(model, seed=None):
  """Gives every BatchNorm layer of torch `model` random running statistics and affine terms.

  Fresh layers have mean 0, variance 1, scale 1 and shift 0, under which a conversion that drops or
  swaps any of them still gives the right numbers. Draws from torch's global generator, reseeded
  with `seed` first when one is given.

  Returns:
    `model`, changed in place.
  """
  import torch  # pylint: disable=import-outside-toplevel

  if seed is not None:
    torch.manual_seed(seed)
  with torch.no_grad():
    for module in model.modules():
      if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
        module.running_mean.normal_(0, 0.2)
        module.running_var.uniform_(0.5, 1.5)
        module.weight.uniform_(0.5, 1.5)
        module.bias.normal_(0, 0.2)
  return model


def rel_err(a, b):
  """The largest absolute difference of `a` from the reference `b`, relative to `b`'s largest
  magnitude (in float64)."""
  return float(np.abs(np.asarray(a, np.float64) - b).max() / np.abs(b).max())


def channels_last(x):
  """The channels-last NumPy twin of torch tensor `x` ([N, C, ...] -> [N, ..., C])."""
  return np.moveaxis(x.numpy(), 1, -1)
