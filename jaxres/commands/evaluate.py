"""`jaxres evaluate --checkpoint DIR`: PSNR/SSIM of a trained SR model vs bicubic, whole videos.

Runs whole frames through the `jaxres upscale` path, so it measures what a user gets (`jaxres eval`
instead scores the training engine's eval batches: patches, for SR runs). By default the run's own
held-out videos (its data config's eval split; for a `frames` source its eval sequences, with their
paired LR frames when it has them); `--footage generated` uses generated footage from a seed never
used for training; `--hr` any frame folders, printing the per-sequence table SR papers print for
Vid4 and REDS4 (mean of PSNR/SSIM on Y and RGB per sequence, then over sequences). MMagic's
BasicVSR/BasicVSR++ test configs set `crop_border=0`: pass `--crop 0` to reproduce their numbers.
See `jaxres.sr.evaluate`; `python -m jaxres.sr.evaluate ARGS` is this command too.

Example:
  $ jaxres evaluate --checkpoint runs/sr_edsr
  $ jaxres evaluate --checkpoint runs/sr_edsr --footage generated --videos 4 --size 96
  $ jaxres evaluate --checkpoint runs/basicvsr --hr /data/Vid4/GT --lr /data/Vid4/BIx4
  $ jaxres evaluate --checkpoint runs/basicvsr --hr /data/REDS/train_sharp \\
      --lr /data/REDS/train_sharp_bicubic/X4 --sequences 000 011 015 020        # REDS4
"""

from __future__ import annotations

import argparse

from jaxres.commands.common import add_verbose_argument, report
from jaxres.commands.help import HelpFormatter
from jaxres.data.sequences import LAYOUTS
from jaxres.train.config import split_overrides


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(
    prog="jaxres evaluate", description=__doc__, formatter_class=HelpFormatter
  )
  parser.add_argument("--checkpoint", required=True, help="the training workdir")
  parser.add_argument(
    "--config",
    default=None,
    help="the run's config, a shipped name or a file (None: the run's "
    "config.json), with any --config.key=value overrides",
  )
  parser.add_argument(
    "--footage",
    choices=("eval-split", "generated"),
    default="eval-split",
    help="the run's held-out eval split or generated footage",
  )
  parser.add_argument(
    "--hr", default="", help="HR frame folders, one per sequence, e.g. Vid4/GT (default: none)"
  )
  parser.add_argument(
    "--lr", default="", help="LR frame folders mirroring --hr (default: bicubic of HR)"
  )
  parser.add_argument(
    "--sequences",
    nargs="+",
    default=(),
    metavar="SEQ",
    help="only these sequences of --hr, e.g. REDS4: 000 011 015 020 (default: all)",
  )
  parser.add_argument("--layout", default="sequences", choices=LAYOUTS, help="how --hr is laid out")
  parser.add_argument(
    "--list", default="", help="a sequence list of --hr, e.g. sep_testlist.txt (default: none)"
  )
  parser.add_argument(
    "--crop", type=int, default=None, help="border pixels left out of the metrics (None: the scale)"
  )
  parser.add_argument("--videos", type=int, default=4, help="generated videos")
  parser.add_argument("--frames", type=int, default=16, help="generated frames per video")
  parser.add_argument("--size", type=int, default=96, help="generated frame height and width")
  parser.add_argument(
    "--seed",
    type=int,
    default=None,
    help="generated footage seed (None: jaxres.sr.evaluate.HELD_OUT_SEED, a "
    "seed never used for training data)",
  )
  parser.add_argument(
    "--chunk",
    type=int,
    default=None,
    help="frames per window (0: whole videos; None: 0 on frame folders, else 16)",
  )
  parser.add_argument(
    "--overlap",
    type=int,
    default=6,
    help="context frames on each side of a window (recurrent models)",
  )
  add_verbose_argument(parser)
  args, overrides = split_overrides(argv)
  args = parser.parse_args(args)

  from jaxres.sr import evaluate  # pylint: disable=import-outside-toplevel

  try:
    config = None
    if args.config:
      from jaxres.train.config import load_config  # pylint: disable=import-outside-toplevel

      config = load_config(args.config, overrides)
    result = evaluate.evaluate_run(
      args.checkpoint,
      config=config,
      footage_source=args.footage,
      hr_root=args.hr,
      lr_root=args.lr,
      sequences=args.sequences,
      layout=args.layout,
      split_list=args.list,
      crop=args.crop,
      videos=args.videos,
      frames=args.frames,
      size=args.size,
      seed=evaluate.HELD_OUT_SEED if args.seed is None else args.seed,
      chunk=args.chunk,
      overlap=args.overlap,
    )
  except (FileNotFoundError, ValueError, KeyError) as error:
    return report("jaxres evaluate", error, args.verbose, 1)
  print(result.text())
  return 0
