"""Using a trained super-resolution model: chunked video upscaling and whole-video evaluation.

The networks are in `jaxres.models.sr` (task "super_resolution"); the training task, the
degradation that makes LR from HR and PSNR/SSIM are in `jaxres.tasks`. Modules here:

- `upscale`: chunked/tiled streaming upscaling of video files (`jaxres upscale`).
- `checkpoint`: `load_sr_model`, a trained SR model from a `jaxres train` workdir.
- `evaluate`: per-video PSNR/SSIM vs bicubic on whole held-out videos (a run's eval split, e.g.
  the SR demo's pans over photographs it never trained on, `jaxres.data.photo_demo`).
- `footage`: generated textured footage with sub-pixel motion, `jaxres.data.footage` (where the
  dataset writers live) under its SR name.

Example:
  >>> from jaxres.sr import checkpoint, upscale
  >>> loaded = checkpoint.load_sr_model("runs/sr_edsr")
  >>> upscale.upscale_video("in.mp4", "out.mp4", loaded.model, loaded.variables, scale=loaded.scale,
  ...                       clip_model=loaded.clip_model)
"""
