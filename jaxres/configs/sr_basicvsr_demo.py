"""Video super-resolution x2 with a small bidirectional recurrent network (BasicVSR-style).

Like `sr_edsr_demo.py` but the model propagates features across the 5 frames of each clip, aligned
by a learned flow (see `jaxres.models.sr.RecurrentVSR`). Slower per step than EDSR on CPU.

  $ jaxres train --config sr_basicvsr_demo --workdir runs/sr_basicvsr
  $ jaxres upscale in.mp4 out.mp4 --checkpoint runs/sr_basicvsr --chunk 16 --overlap 4
"""

import ml_collections

from jaxres.train.config import default_config


def get_config() -> ml_collections.ConfigDict:
  c = default_config()
  scale = ml_collections.FieldReference(2)
  c.model = ml_collections.ConfigDict({
      "name": "basicvsr", "scale": scale, "num_blocks": 2, "features": 24, "align": "flow",
      "dtype": "float32"})
  # LR frames are made from the HR crops on device (`jaxres.tasks.degradation`).
  c.task = ml_collections.ConfigDict({"scale": scale, "loss": "charbonnier", "blur_sigma": 0.0,
                                      "noise_sigma": 0.0})
  c.data.num_frames = 5
  c.data.resize = 0  # HR patches at the videos' own resolution
  c.data.crop_size = 64  # HR patch side, a multiple of the scale
  c.data.mean, c.data.std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)  # frames in [0, 1]
  c.global_batch_size = 8
  c.num_train_steps = 1000
  c.optimizer.name = "adamw"
  c.optimizer.learning_rate = 1e-3
  c.optimizer.weight_decay = 0.0
  c.schedule.name = "cosine"
  c.schedule.warmup_steps = 50
  c.checkpoint.best_metric = "psnr_y"
  c.checkpoint.best_mode = "max"
  c.eval_every_steps = 500
  return c
