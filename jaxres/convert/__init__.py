"""Import weights from other libraries (torchvision, PyTorchVideo, BasicSR/mmagic) and save/load
jaxres variables.

Example:
  >>> from jaxres.convert import from_torchvision, save_variables, load_variables
  >>> variables = from_torchvision(torch.load("r3d_18.pth"), "r3d_18")
  >>> save_variables(variables, "r3d_18.msgpack")
  >>> variables = from_pytorchvideo(load_torch_state_dict("SLOW_8x8_R50.pyth"), "slow_r50")
"""

from jaxres.convert import basicsr
from jaxres.convert.basicsr import from_basicsr, model_fields
from jaxres.convert.files import (
  UnreadableWeightsError,
  load_torch_state_dict,
  load_variables,
  save_variables,
)
from jaxres.convert.mmaction2 import from_mmaction2_tsm
from jaxres.convert.pytorchvideo import CONVERTERS, from_pytorchvideo, pytorchvideo_archs
from jaxres.convert.pytorchvideo_x3d import from_pytorchvideo_x3d
from jaxres.convert.state_dict import ConversionError
from jaxres.convert.torch_checkpoint import UnsafeCheckpointError, read_torch_checkpoint
from jaxres.convert.torchvision import ARCHS, from_torchvision
