"""Per-video PSNR/SSIM of an SR model against bicubic on whole held-out videos.

Unlike the training engine's eval (patches of the eval split), this runs whole frames through the
same chunked path as `jaxres upscale` (`jaxres.sr.upscale.Upscaler`), so it measures what a user
gets. HR videos are degraded with `jaxres.tasks.degradation` (mod-crop, antialiased bicubic); the
output is clipped and rounded to 8 bits; metrics crop `scale` pixels at the borders.

Command line: by default the run's own held-out videos (its data config's eval split, e.g. the
`sr_edsr_demo` pans over photographs it never trained on), whole; `--footage generated` uses
generated footage from a seed never used for training instead:

  $ python -m jaxres.sr.evaluate --checkpoint runs/sr_edsr
  $ python -m jaxres.sr.evaluate --checkpoint runs/sr_edsr --footage generated --videos 4 --size 96

Example:
  >>> table = evaluate_videos(model, variables, hr_videos, scale=2, clip_model=False)
  >>> print(format_table(table))
"""

from __future__ import annotations

import argparse
import os
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


def held_out_videos(data_config: Any) -> list[tuple[str, np.ndarray]]:
  """The whole videos of a data config's eval split (folder or built-in demo sources).

  Args:
    data_config: a run's `config.data` (the demo data are written first if missing).

  Returns:
    `(file name, uint8 [T, H, W, 3])` per video, in the split's order.

  Raises:
    ValueError: the source is not a folder of videos ("folder" or "demo").

  Example:
    >>> videos = held_out_videos(read_config("runs/sr_edsr").data)
  """
  if data_config.source not in ("demo", "folder"):
    raise ValueError(f"data.source={data_config.source!r}: only folder and demo eval splits are "
                     "read as whole videos here; use --footage generated.")
  from jaxres.data import catalog, video  # pylint: disable=import-outside-toplevel
  return [(os.path.basename(e.path), video.read_video(e.path).frames)
          for e in catalog.video_list(data_config, "eval").entries]


def format_table(rows: list[dict], names: Sequence[str] | None = None) -> str:
  """A plain-text table of `evaluate_videos` rows (named by `names`, else numbered) plus their mean."""
  names = [str(n) for n in names] if names is not None else [str(i) for i in range(len(rows))]
  width = max([6] + [len(n) for n in names])
  head = (f"{'video':>{width}}  {'PSNR-Y':>7} {'bicubic':>7} {'gain':>6}  {'SSIM-Y':>6} "
          f"{'bicubic':>7}  {'PSNR':>6} {'bicubic':>7}")
  lines = [head]
  mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
  for name, r in list(zip(names, rows)) + [("mean", mean)]:
    lines.append(f"{name:>{width}}  {r['psnr_y']:7.2f} {r['bicubic_psnr_y']:7.2f} "
                 f"{r['psnr_y'] - r['bicubic_psnr_y']:+6.2f}  {r['ssim_y']:6.4f} "
                 f"{r['bicubic_ssim_y']:7.4f}  {r['psnr']:6.2f} {r['bicubic_psnr']:7.2f}")
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m jaxres.sr.evaluate",
      description="Per-video PSNR/SSIM of a trained SR model vs bicubic on held-out videos, whole.")
  parser.add_argument("--checkpoint", required=True, help="the training workdir")
  parser.add_argument("--config", default=None, help="the run's config file (if no config.json)")
  parser.add_argument("--footage", choices=("eval-split", "generated"), default="eval-split",
                      help="the run's held-out eval split (default) or generated footage")
  parser.add_argument("--videos", type=int, default=4, help="generated videos")
  parser.add_argument("--frames", type=int, default=16, help="generated frames per video")
  parser.add_argument("--size", type=int, default=96, help="generated frame height and width")
  parser.add_argument("--seed", type=int, default=HELD_OUT_SEED, help="generated footage seed")
  parser.add_argument("--chunk", type=int, default=16)
  parser.add_argument("--overlap", type=int, default=6)
  from jaxres.train.config import split_overrides  # pylint: disable=import-outside-toplevel
  argv, overrides = split_overrides(list(sys.argv[1:] if argv is None else argv))
  args = parser.parse_args(argv)
  from jaxres.sr import checkpoint  # pylint: disable=import-outside-toplevel
  from jaxres.train import run  # pylint: disable=import-outside-toplevel
  try:
    if args.config:
      from jaxres.train.config import load_config  # pylint: disable=import-outside-toplevel
      config = load_config(args.config, overrides)
    else:
      config = run.read_config(args.checkpoint)
    loaded = checkpoint.load_sr_model(args.checkpoint, config=config)
    if args.footage == "eval-split":
      names, videos = zip(*held_out_videos(config.data))
      what = f"the {len(videos)} held-out videos of its eval split"
    else:
      videos = footage.generate_clips(args.seed, args.videos, args.frames, args.size, args.size)
      names = None
      what = (f"{args.videos} held-out generated videos of {args.frames}x{args.size}x{args.size} "
              f"(seed {args.seed})")
  except (FileNotFoundError, ValueError) as error:
    print(f"evaluate: {error}", file=sys.stderr)
    return 1
  rows = evaluate_videos(loaded.model, loaded.variables, list(videos), scale=loaded.scale,
                         clip_model=loaded.clip_model,
                         options=upscale.UpscaleOptions(chunk=args.chunk, overlap=args.overlap))
  print(f"{loaded.name} x{loaded.scale} (step {loaded.step}) on {what}:")
  print(format_table(rows, names))
  return 0


if __name__ == "__main__":
  sys.exit(main())
