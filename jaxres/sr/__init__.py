"""Residual super-resolution: degradation, PSNR/SSIM, chunked video upscaling and the training task.

The networks are in `jaxres.models.sr` (registered as `edsr_baseline`, `edsr`, `vdsr`, `basicvsr`
and `*_tiny` variants, task "super_resolution"). Modules:

- `degradation`: HR -> LR (mod-crop, optional blur, antialiased bicubic, optional noise, 8 bits).
- `metrics`: PSNR/SSIM on RGB or BT.601 Y with a border crop.
- `task`: `SuperResolutionTask` for the training engine (L1/Charbonnier; per-video eval reports).
- `upscale`: chunked/tiled streaming upscaling of video files (`jaxres upscale`).
- `checkpoint`: rebuilding a trained model from a `jaxres train` workdir.
- `evaluate`: per-video PSNR/SSIM vs bicubic on whole held-out videos.
- `footage`: generated textured footage with sub-pixel motion (video I/O is `jaxres.data.video`).

Example:
  >>> from jaxres.sr import degradation, metrics
  >>> lr = degradation.degrade(hr, degradation.Degradation(scale=4))
  >>> metrics.psnr(sr, hr, crop=4, y_channel=True)
"""
