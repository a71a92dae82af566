"""Per-video PSNR/SSIM of an SR model against bicubic on whole held-out videos.

Unlike the training engine's eval (patches of the eval split), this runs whole frames through the
same chunked path as `jaxres upscale` (`jaxres.sr.upscale.Upscaler`), so it measures what a user
gets. HR videos are degraded with `jaxres.tasks.degradation` (mod-crop, antialiased bicubic); the
output is clipped and rounded to 8 bits; metrics crop `scale` pixels at the borders.

Command line (held-out generated footage, a seed never used for training):

  $ python -m jaxres.sr.evaluate --checkpoint runs/sr_edsr --videos 4 --frames 16 --size 96

Example:
  >>> table = evaluate_videos(model, variables, hr_videos, scale=2, clip_model=False)
  >>> print(format_table(table))
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

import numpy as np

from jaxres.sr import footage, upscale
from jaxres.tasks import degradation
from jaxres.tasks import image_metrics as metrics

HELD_OUT_SEED = 20261122  # footage seed never used for training data


def evaluate_videos(model: Any, variables: Any, hr_videos: Sequence[np.ndarray], *, scale: int,
                    clip_model: bool,
                    degrade: degradation.Degradation | None = None,
                    options: upscale.UpscaleOptions = upscale.UpscaleOptions()) -> list[dict]:
  """PSNR/SSIM (RGB and Y) of the model and of bicubic, per video.

  Args:
    model: the SR module; variables: its variables.
    hr_videos: uint8 `[T, H, W, 3]` HR videos.
    scale: the model's factor.
    clip_model: whether the model takes clips.
    degrade: how LR frames are made (default: bicubic x `scale`, quantised).
    options: chunking/tiling of the upscale.

  Returns:
    One dict per video: `psnr`, `psnr_y`, `ssim`, `ssim_y` and the same with a `bicubic_` prefix,
    each the mean over the video's frames.

  Example:
    >>> rows = evaluate_videos(model, variables, [video], scale=2, clip_model=True)
  """
  degrade = degrade or degradation.Degradation(scale)
  up = upscale.Upscaler(model, variables, scale, clip_model=clip_model, options=options)
  rows = []
  for video in hr_videos:
    hr = np.asarray(degradation.mod_crop(np.asarray(video), scale)).astype(np.float32) / 255.0
    lr = np.asarray(degradation.degrade(hr, degrade))
    sr = np.stack([upscale.to_uint8(f) for f in up.frames(lr)]).astype(np.float32) / 255.0
    bic = upscale.to_uint8(np.asarray(upscale.bicubic_upsample(lr, scale))).astype(np.float32) / 255.0
    row = {}
    for prefix, pred in (("", sr), ("bicubic_", bic)):
      for y in (False, True):
        suffix = "_y" if y else ""
        row[f"{prefix}psnr{suffix}"] = float(np.mean(metrics.psnr(pred, hr, crop=scale, y_channel=y)))
        row[f"{prefix}ssim{suffix}"] = float(np.mean(metrics.ssim(pred, hr, crop=scale, y_channel=y)))
    rows.append(row)
  return rows


def format_table(rows: list[dict]) -> str:
  """A plain-text table of `evaluate_videos` rows plus their mean."""
  head = (f"{'video':>6}  {'PSNR-Y':>7} {'bicubic':>7} {'gain':>6}  {'SSIM-Y':>6} {'bicubic':>7}  "
          f"{'PSNR':>6} {'bicubic':>7}")
  lines = [head]
  mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
  for name, r in [(str(i), r) for i, r in enumerate(rows)] + [("mean", mean)]:
    lines.append(f"{name:>6}  {r['psnr_y']:7.2f} {r['bicubic_psnr_y']:7.2f} "
                 f"{r['psnr_y'] - r['bicubic_psnr_y']:+6.2f}  {r['ssim_y']:6.4f} "
                 f"{r['bicubic_ssim_y']:7.4f}  {r['psnr']:6.2f} {r['bicubic_psnr']:7.2f}")
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m jaxres.sr.evaluate",
      description="Per-video PSNR/SSIM of a trained SR model vs bicubic on held-out generated footage.")
  parser.add_argument("--checkpoint", required=True, help="the training workdir")
  parser.add_argument("--config", default=None, help="the run's config file (if no config.json)")
  parser.add_argument("--videos", type=int, default=4)
  parser.add_argument("--frames", type=int, default=16)
  parser.add_argument("--size", type=int, default=96, help="HR frame height and width")
  parser.add_argument("--seed", type=int, default=HELD_OUT_SEED)
  parser.add_argument("--chunk", type=int, default=16)
  parser.add_argument("--overlap", type=int, default=6)
  from jaxres.train.config import split_overrides  # pylint: disable=import-outside-toplevel
  argv, overrides = split_overrides(list(sys.argv[1:] if argv is None else argv))
  args = parser.parse_args(argv)
  from jaxres.sr import checkpoint  # pylint: disable=import-outside-toplevel
  config = None
  if args.config:
    from jaxres.train.config import load_config  # pylint: disable=import-outside-toplevel
    config = load_config(args.config, overrides)
  try:
    loaded = checkpoint.load_sr_model(args.checkpoint, config=config)
  except (FileNotFoundError, ValueError) as error:
    print(f"evaluate: {error}", file=sys.stderr)
    return 1
  videos = footage.generate_clips(args.seed, args.videos, args.frames, args.size, args.size)
  rows = evaluate_videos(loaded.model, loaded.variables, list(videos), scale=loaded.scale,
                         clip_model=loaded.clip_model,
                         options=upscale.UpscaleOptions(chunk=args.chunk, overlap=args.overlap))
  print(f"{loaded.name} x{loaded.scale} (step {loaded.step}) on {args.videos} held-out generated "
        f"videos of {args.frames}x{args.size}x{args.size} (seed {args.seed}):")
  print(format_table(rows))
  return 0


if __name__ == "__main__":
  sys.exit(main())
