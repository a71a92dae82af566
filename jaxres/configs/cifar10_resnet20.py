"""CIFAR-10 ResNet-20 (He et al. 2015): SGD 0.1, momentum 0.9, weight decay 1e-4, batch 128,
64k steps with x0.1 at 32k and 48k; images are 1-frame clips from TFDS "cifar10"."""

from jaxres.configs.common import cifar10_recipe


def get_config():
  return cifar10_recipe("resnet20")
