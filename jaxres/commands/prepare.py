"""`jaxres prepare SRC OUT`: decode a video folder once into TFRecord shards of JPEG frames.

SRC has one subfolder per class (UCF101 / Kinetics / HMDB layout), or holds frame folders with
`--layout sequences|vimeo|rawframes` (REDS / Vid4, Vimeo-90K, MMAction2 rawframes; lists are
sequence lists, e.g. `--eval-list meta_info_REDS4.txt`; with `--resize 0` the images are stored as
they are). Splits come from `--train-list`
/ `--eval-list` (UCF101 `trainlist01.txt` lines or `path,label` CSV), from `trainlist01.txt` and
`testlist01.txt` inside SRC, or from `--holdout-fraction`; otherwise everything is `train`.
Rerunning after an interruption finishes the missing shards only. Train from OUT with
`config.data.source = "prepared"` and `config.data.path = OUT`.
"""

from __future__ import annotations

import argparse
import logging
import os

from jaxres.atomic_files import check_output
from jaxres.commands.common import report
from jaxres.commands.help import HelpFormatter


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(
    prog="jaxres prepare", description=__doc__, formatter_class=HelpFormatter
  )
  parser.add_argument("src", help="folder of class subfolders of videos, or of frame folders")
  parser.add_argument(
    "--layout",
    default="",
    choices=("", "sequences", "vimeo", "rawframes"),
    help="SRC holds frame folders laid out so (see jaxres.data.sequences; '': "
    "class folders of videos)",
  )
  parser.add_argument(
    "--holdout-sequences",
    nargs="+",
    default=(),
    metavar="SEQ",
    help="frame folders: these sequences are the eval split, e.g. 000 011 015 020",
  )
  parser.add_argument(
    "--lr",
    default="",
    help="frame folders: LR folders mirroring SRC (REDS train_sharp_bicubic/X4), "
    "stored next to the HR frames (with --resize 0; '': none)",
  )
  parser.add_argument("--lr-scale", type=int, default=4, help="the HR/LR factor of --lr")
  parser.add_argument(
    "--frame-pattern",
    default="*",
    help="frame folders: the glob frame images match ('img_*' for MMAction2 "
    "folders holding flow too)",
  )
  parser.add_argument("out", help="output folder for shards, manifest.json and classes.txt")
  parser.add_argument(
    "--train-list",
    default=None,
    help="split list of the train split (None: trainlist01.txt in SRC, if any)",
  )
  parser.add_argument(
    "--eval-list",
    default=None,
    help="split list of the eval split (None: testlist01.txt in SRC, if any)",
  )
  parser.add_argument(
    "--holdout-fraction",
    type=float,
    default=0.0,
    help="without lists: hold out this fraction of each class for eval",
  )
  parser.add_argument(
    "--resize",
    type=int,
    default=128,
    help="shrink frames so the short side is at most this (0: keep)",
  )
  parser.add_argument("--quality", type=int, default=90, help="JPEG quality")
  parser.add_argument("--shards", type=int, default=0, help="shards per split (0: automatic)")
  parser.add_argument("--workers", type=int, default=0, help="processes (0: CPU count)")
  parser.add_argument(
    "--verbose",
    action="store_true",
    help="show TensorFlow's start-up lines and an error's traceback",
  )
  args = parser.parse_args(argv)
  logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

  from jaxres.data.prepare import check_options, prepare_dataset
  from jaxres.data.skips import SKIPPED

  try:  # every option before any work
    check_options(
      args.src,
      args.out,
      lr_src=args.lr,
      resize=args.resize,
      quality=args.quality,
      num_shards=args.shards,
      workers=args.workers,
      holdout_fraction=args.holdout_fraction,
      lr_scale=args.lr_scale,
    )
    check_output(  # the write rule (jaxres.atomic_files): a writable folder, not an input
      args.out,
      inputs=[args.src, args.lr, args.train_list or "", args.eval_list or ""],
      kind="folder",
    )
  except (FileNotFoundError, ValueError) as e:
    return report("jaxres prepare", e, args.verbose, 2)
  split_lists = None
  if args.train_list or args.eval_list:
    split_lists = {"train": args.train_list or ""}
    if args.eval_list:
      split_lists["eval"] = args.eval_list
  try:
    manifest = prepare_dataset(
      args.src,
      args.out,
      split_lists=split_lists,
      holdout_fraction=args.holdout_fraction,
      resize=args.resize,
      quality=args.quality,
      num_shards=args.shards,
      workers=args.workers or None,
      layout=args.layout,
      holdout_sequences=tuple(args.holdout_sequences),
      frame_pattern=args.frame_pattern,
      lr_src=args.lr,
      lr_scale=args.lr_scale,
    )
  except (FileNotFoundError, ValueError, KeyError) as e:
    return report("jaxres prepare", e, args.verbose, 1)
  if SKIPPED.total():
    print(f"skipped files: {SKIPPED.counts()} (listed in {args.out}/manifest.json)")
  shards = sum(len(split["shards"]) for split in manifest["splits"].values())
  print(f"wrote {shards} shard(s), manifest.json and classes.txt in {os.path.abspath(args.out)}")
  return 0
