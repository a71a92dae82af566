"""BasicVSR++ x4 on Vimeo-90K septuplets (Chan et al., "BasicVSR++: Improving Video
Super-Resolution with Enhanced Propagation and Alignment", CVPR 2022), mmagic's Vimeo-90K BI recipe.

Published (paper, Sec. 4): Adam with cosine annealing, learning rate 1e-4 for the network and
2.5e-5 for SPyNet (fixed for the first 5,000 iterations), batch 8, LR patches of 64x64 (HR
256x256), Charbonnier loss; on Vimeo-90K the 7 frames of each septuplet, flipped, transposed and
mirrored in time (`MirrorSequence`). Vid4 x4 (BI): 27.79 dB PSNR-Y.

SPyNet's rate and frozen start are parameter groups (`optimizer.lr_multipliers`,
`optimizer.frozen_until`). The engine's eval reads `eval_steps` batches of crops, the paper's numbers come from
`jaxres evaluate` on whole sequences.

  $ jaxres train --config vimeo_basicvsrpp --workdir runs/vimeo_basicvsrpp \\
      --config.data.path=/data/vimeo90k/vimeo_septuplet \\
      --config.data.lr_path=/data/vimeo90k/vimeo_septuplet_matlabLRx4
  $ jaxres evaluate --checkpoint runs/vimeo_basicvsrpp \\
      --hr /data/Vid4/GT --lr /data/Vid4/BIx4 --crop 0    # Vid4, Y column
"""

import ml_collections

from jaxres.configs.common import super_resolution_recipe


def get_config() -> ml_collections.ConfigDict:
  # One scale (model.scale) for model, task and the LR frames (data.lr_scale).
  c = super_resolution_recipe(
    {"name": "basicvsrpp", "dtype": "float32"},
    {"loss": "charbonnier", "charbonnier_eps": 1e-6},
    scale=4,
  )
  c.data.source, c.data.layout = "frames", "vimeo"  # sequences/ listed by sep_{train,test}list.txt
  c.data.path = "/data/vimeo90k/vimeo_septuplet"
  c.data.lr_path = "/data/vimeo90k/vimeo_septuplet_matlabLRx4"  # mirrors path
  c.data.num_frames, c.data.frame_stride = 7, 1
  c.data.resize, c.data.crop_size = 0, 256
  c.data.flip = c.data.rotate = c.data.mirror = True
  c.data.eval_clips = c.data.eval_crops = 1
  c.global_batch_size = 8
  c.num_train_steps = 300_000
  c.optimizer.name = "adamw"  # with weight_decay 0: Adam
  c.optimizer.learning_rate = 1e-4
  c.optimizer.b2 = 0.99
  c.optimizer.weight_decay = 0.0
  # SPyNet at 2.5e-5 (0.25 x 1e-4) and fixed for the first 5,000 iterations (fix_iter).
  c.optimizer.lr_multipliers = (("^spynet/", 0.25),)
  c.optimizer.frozen_until = (("^spynet/", 5_000),)
  c.schedule.name = "cosine"
  c.schedule.warmup_steps = 0
  c.checkpoint.best_metric = "psnr"
  c.checkpoint.best_mode = "max"
  c.checkpoint.every_steps = 5_000
  c.eval_every_steps = 5_000
  c.eval_steps = 50  # sep_testlist holds 7,824 sequences
  return c
