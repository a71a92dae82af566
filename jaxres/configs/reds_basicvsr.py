"""BasicVSR x4 on REDS (Chan et al., "BasicVSR: The Search for Essential Components in Video
Super-Resolution and Beyond", CVPR 2021), BasicSR's `train_BasicVSR_REDS.yml` recipe.

Published (paper, Sec. 4): Adam with cosine annealing over 300K iterations, learning rate 2e-4 for
the network and 2.5e-5 for SPyNet (whose weights stay fixed for the first 5,000 iterations), batch
8, LR patches of 64x64 (HR 256x256), 15-frame clips on REDS, Charbonnier loss, flips and rotations;
REDS4 (sequences 000, 011, 015, 020) held out. REDS4 x4: 31.42 dB PSNR (RGB).

SPyNet's rate and frozen start are parameter groups (`optimizer.lr_multipliers`,
`optimizer.frozen_until`). BasicSR starts SPyNet from its pretrained weights: convert them with
`jaxres convert --from basicsr --arch spynet` and pass them with `--config.init_from` (a file of
SPyNet's variables alone does not fit the whole model: start from a BasicVSR file). BasicSR's
`random_reverse` (off in this recipe) does not exist.

  $ jaxres train --config reds_basicvsr --workdir runs/reds_basicvsr \\
      --config.data.path=/data/REDS/train_sharp \\
      --config.data.lr_path=/data/REDS/train_sharp_bicubic/X4
  $ jaxres evaluate --checkpoint runs/reds_basicvsr \\
      --hr /data/REDS/train_sharp --lr /data/REDS/train_sharp_bicubic/X4 \\
      --sequences 000 011 015 020 --crop 0           # REDS4, RGB column
"""

import ml_collections

from jaxres.configs.common import super_resolution_recipe


def get_config() -> ml_collections.ConfigDict:
  # One scale (model.scale) for model, task and the LR frames (data.lr_scale).
  c = super_resolution_recipe(
    {"name": "basicvsr", "dtype": "float32"},
    {"loss": "charbonnier", "charbonnier_eps": 1e-6},  # BasicSR's eps
    scale=4,
  )
  c.data.source, c.data.layout = "frames", "sequences"
  c.data.path = "/data/REDS/train_sharp"
  c.data.lr_path = "/data/REDS/train_sharp_bicubic/X4"  # the LR frames as given, not degraded here
  c.data.holdout_sequences = ("000", "011", "015", "020")  # REDS4
  c.data.num_frames, c.data.frame_stride = 15, 1
  c.data.resize, c.data.crop_size = 0, 256  # HR 256 (LR 64) patches at the frames' own size
  c.data.flip = c.data.rotate = True  # use_hflip, use_rot
  c.data.eval_clips = c.data.eval_crops = 1
  c.global_batch_size = 8
  c.num_train_steps = 300_000
  c.optimizer.name = "adamw"  # with weight_decay 0: Adam
  c.optimizer.learning_rate = 2e-4
  c.optimizer.b2 = 0.99  # BasicSR's betas (0.9, 0.99)
  c.optimizer.weight_decay = 0.0
  # SPyNet at 2.5e-5 (0.125 x 2e-4) and fixed for the first 5,000 iterations (fix_flow_iter).
  c.optimizer.lr_multipliers = (("^spynet/", 0.125),)
  c.optimizer.frozen_until = (("^spynet/", 5_000),)
  c.schedule.name = "cosine"
  c.schedule.warmup_steps = 0
  c.checkpoint.best_metric = "psnr"
  c.checkpoint.best_mode = "max"
  c.checkpoint.every_steps = 5_000
  c.eval_every_steps = 5_000
  c.eval_steps = 50
  return c
