"""Residual super-resolution x2 with a small EDSR on the built-in demo videos (CPU: minutes).

Patches of 64x64 HR pixels (32x32 LR, bicubic antialiased degradation) from 5-frame clips; EDSR runs
per frame. Charbonnier loss, AdamW, cosine schedule; eval reports per-clip PSNR/SSIM (RGB and Y,
border crop = scale) against the bicubic baseline (`psnr_y_bicubic`, `gain_y`).

  $ jaxres train --config sr_edsr_demo --workdir runs/sr_edsr
  $ jaxres upscale in.mp4 out.mp4 --checkpoint runs/sr_edsr

The model is jaxres' bicubic-skip EDSR (`edsr_bicubic_baseline`: starts from the bicubic image);
BasicSR's form is `--config.model.name=edsr_baseline`. For the full size at x4:
--config.model.num_blocks=16 --config.model.features=64 --config.model.scale=4 (the scale is shared
by model and task).
"""

import ml_collections

from jaxres.train.config import default_config


def get_config() -> ml_collections.ConfigDict:
  c = default_config()
  scale = ml_collections.FieldReference(2)  # one value for model, task and data
  c.model = ml_collections.ConfigDict({
      "name": "edsr_bicubic_baseline", "scale": scale, "num_blocks": 4, "features": 32,
      "dtype": "float32"})
  # LR frames are made from the HR crops on device (`jaxres.tasks.degradation`).
  c.task = ml_collections.ConfigDict({"scale": scale, "loss": "charbonnier", "blur_sigma": 0.0,
                                      "noise_sigma": 0.0})
  c.data.num_frames = 5
  c.data.flip = False  # the demo source refuses flips (they would relabel its motions)
  c.data.resize = 0  # HR patches at the videos' own resolution
  c.data.crop_size = 64  # HR patch side, a multiple of the scale
  c.data.mean, c.data.std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)  # frames in [0, 1]
  c.global_batch_size = 8
  c.num_train_steps = 2000
  c.optimizer.name = "adamw"
  c.optimizer.learning_rate = 1e-3
  c.optimizer.weight_decay = 0.0
  c.schedule.name = "cosine"
  c.schedule.warmup_steps = 50
  c.checkpoint.best_metric = "psnr_y"
  c.checkpoint.best_mode = "max"
  c.eval_every_steps = 500
  return c
