"""Super-resolution x2 with a small EDSR trained on real photographs (2 CPU cores: under 3 minutes).

The data (`data.demo.kind = "photos"`, `jaxres.data.photo_demo`, written to a cache folder on first
use, no downloads) are camera pans over 13 photographs that scikit-image ships, at their own size and
area-downscaled x0.75 / x0.5; three other photographs (`chelsea`, `coffee`, `camera`) are never
trained on and are the held-out footage: one 8-frame 192x256 pan over each. The LR input is made
from the HR frames on device (`jaxres.tasks.degradation`: antialiased bicubic x2, as `upscale` and
`jaxres evaluate` do).

  $ jaxres train --config sr_edsr_demo --workdir runs/sr_edsr
  $ jaxres evaluate --checkpoint runs/sr_edsr                  # whole held-out pans vs bicubic
  $ jaxres upscale in.mp4 out.mp4 --checkpoint runs/sr_edsr

`jaxres evaluate` reports the gain over bicubic in PSNR-Y (2-pixel border crop) on the whole
held-out frames; the figures per seed are in benchmarks/README.md ("The SR demo's recipe").

Why the recipe looks like this: what a small SR network learns in minutes is how real edges and
textures look after a bicubic x2 downsampling, so the data decide the result. Generated shapes
teach sharp synthetic edges, which carry over poorly to real video; real photographs (faces, text,
gravel, grass, coins, microscopy, a motorcycle) at two extra downscales give the network real
statistics and a range of detail densities. Each example is one frame (`num_frames` 1: the model is
per-frame, so more distinct patches per step cost nothing more) as a random 64x64 HR crop, flipped
at random (real images have no preferred side). EDSR with 4 blocks of 32 features has the capacity
to gain well over 1 dB at x2 and is cheap enough per batch of 16 to train in minutes on 2 cores.
The bicubic skip (the model adds its prediction to the bicubic upsampling, and its last conv starts
at zero) makes step 0 exactly bicubic, so training starts from the baseline rather than from noise,
and Adam at 1e-3 with a cosine decay makes most of the gain in the first third of the 600 steps.
L1 loss, as EDSR.

The model is jaxres' bicubic-skip EDSR (`edsr_bicubic_baseline`); BasicSR's form, without the skip,
is `--config.model.name=edsr_baseline`. For the full size at x4: --config.model.num_blocks=16
--config.model.features=64 --config.model.scale=4 (the scale is shared by model and task).
"""

import ml_collections

from jaxres.configs.common import super_resolution_recipe


def get_config() -> ml_collections.ConfigDict:
  # One scale (model.scale) for model and task; LR frames are made from the HR crops on device
  # (`jaxres.tasks.degradation`).
  c = super_resolution_recipe(
    {
      "name": "edsr_bicubic_baseline",
      "num_blocks": 4,
      "features": 32,
      "dtype": "float32",
      "conv_lowering": "auto",
    },
    {"loss": "l1", "blur_sigma": 0.0, "noise_sigma": 0.0},
    scale=2,
  )
  c.data.demo.kind = "photos"  # pans over scikit-image's photographs (jaxres.data.photo_demo)
  c.data.demo.videos_per_class = 8  # pans per training photo
  c.data.demo.num_frames = 8
  c.data.demo.size = 128
  c.data.num_frames = 1  # one frame per example: the model runs per frame
  c.data.flip = True
  c.data.resize = 0  # HR patches at the videos' own resolution
  c.data.crop_size = 64  # HR patch side, a multiple of the scale
  c.data.eval_clips = 4  # eval: centre crops of 4 frames of each held-out pan
  c.global_batch_size = 16
  c.num_train_steps = 600
  c.optimizer.name = "adamw"
  c.optimizer.learning_rate = 1e-3
  c.optimizer.weight_decay = 0.0
  c.schedule.name = "cosine"
  c.schedule.warmup_steps = 20
  c.checkpoint.best_metric = "psnr_y"
  c.checkpoint.best_mode = "max"
  c.checkpoint.every_steps = 200
  c.eval_every_steps = 200
  c.log_every_steps = 50
  return c
