"""mc3_18 on ucf101: the torchvision video-classification recipe (see torchvision_video_recipe).

Set data.path (and the split files) to where the dataset is, e.g.
  jaxres train --config ucf101_mc3_18 --workdir runs/ucf101_mc3_18 --config.data.path=/data/...
"""

from jaxres.configs.common import torchvision_video_recipe


def get_config():
  return torchvision_video_recipe("mc3_18", "ucf101")
