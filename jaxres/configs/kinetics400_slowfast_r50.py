"""slowfast_r50 on Kinetics-400: PyTorchVideo's SLOWFAST_8x8_R50 recipe (PySlowFast
`configs/Kinetics/pytorchvideo/SLOWFAST_8x8_R50.yaml`, the model zoo's 76.94 top-1 at 3 x 10 views).

Its data, solver and head settings are those of `kinetics400_csn_r101` (this config starts from it):
32-frame clips at sampling rate 2 (the fast pathway; the model takes the slow pathway's 8 frames
from them), short side jittered in [256, 320], 224 crops, flips, mean 0.45 / std 0.225; SGD
momentum 0.9, weight decay 1e-4, learning rate 0.1 for a batch of 64 (scaled linearly), cosine over
196 epochs after 34 epochs of linear warm-up; dropout 0.5; zero-initialised last BatchNorm of
every block; precise BatchNorm statistics from 200 batches before each evaluation; 10 clips x 3
crops of 256 (short side 256) at evaluation. The
model: alpha 4, beta 1/8, fusion conv 7x1x1 with channel ratio 2 (`jaxres.models.slowfast`).
Differences from the recipe are those listed in `kinetics400_csn_r101`.
"""

from jaxres.configs import kinetics400_csn_r101


def get_config():
  c = kinetics400_csn_r101.get_config()
  c.model.name = "slowfast_r50"
  return c
