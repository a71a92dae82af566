"""Pure linen models: 2D and video ResNets, super-resolution networks, and their registry.

Example:
  >>> from jaxres import models
  >>> model = models.get("r2plus1d_18", num_classes=101)
  >>> models.names()[:3]
"""

from jaxres.models.basicvsr import BasicVSR
from jaxres.models.basicvsrpp import BasicVSRPlusPlus
from jaxres.models.blocks import (
  BasicBlock,
  BottleneckBlock,
  Conv2Plus1D,
  ProjectionShortcut,
  ZeroPadShortcut,
)
from jaxres.models.configured import from_config
from jaxres.models.features import features
from jaxres.models.iconvsr import IconVSR
from jaxres.models.macs import count_macs, count_params
from jaxres.models.norm import BatchNorm
from jaxres.models.registry import ModelSpec, get, names, register, spec
from jaxres.models.resnet import ResNet, cifar_resnet
from jaxres.models.spynet import SpyNet
from jaxres.models.sr import EDSR, VDSR, BicubicEDSR, RecurrentVSR, bicubic_upsample, pixel_shuffle
from jaxres.models.video import VideoResNet
