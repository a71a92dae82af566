"""Import weights from other libraries (torchvision) and save/load jaxres variables.

Example:
  >>> from jaxres.convert import from_torchvision, save_variables, load_variables
  >>> variables = from_torchvision(torch.load("r3d_18.pth"), "r3d_18")
  >>> save_variables(variables, "r3d_18.msgpack")
"""

from jaxres.convert.files import load_variables, save_variables
from jaxres.convert.torchvision import ARCHS, ConversionError, from_torchvision
from jaxres.convert.pytorchvideo_x3d import from_pytorchvideo_x3d
from jaxres.convert.mmaction2 import from_mmaction2_tsm
