"""Residual super-resolution: degradation, PSNR/SSIM, chunked video upscaling and the training task.

The networks themselves are in `jaxres.models.sr` (registered as `edsr_baseline`, `edsr`, `vdsr`,
`basicvsr` and `*_tiny` variants).

Example:
  >>> from jaxres.sr import metrics, degradation
  >>> lr = degradation.degrade(hr, degradation.Degradation(scale=4))
  >>> metrics.psnr(sr, hr, crop=4, y_channel=True)
"""
