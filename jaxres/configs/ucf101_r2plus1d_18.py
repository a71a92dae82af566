"""r2plus1d_18 on ucf101: the torchvision video-classification recipe (see torchvision_video_recipe).

Set data.path (and the split files) to where the dataset is, e.g.
  jaxres train --config ucf101_r2plus1d_18 --workdir runs/ucf101_r2plus1d_18 --config.data.path=/data/...
"""

from jaxres.configs.common import torchvision_video_recipe


def get_config():
  return torchvision_video_recipe("r2plus1d_18", "ucf101")
