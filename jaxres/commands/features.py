"""`jaxres features VIDEO_OR_FOLDER... --out DIR --checkpoint RUN | --weights NAME`: window features.

Writes one `.npy` per video into DIR (float32 `[windows, C]`: the `--layer` of the model on each
window, averaged over time and space for the stage maps unless `--no-pool`, and over the window's
views) and a `.json` beside it with each window's start and end times and how the features were
made. A folder given is searched for videos (subfolders too; DIR mirrors its layout), and every
video goes through one compiled model. Windows are as in `jaxres predict --window` (default: one
clip of the model per window, tiling the video); each is read once, streaming. A file that does
not decode is skipped, counted and named at the end; the exit code is 1 only when all fail. An
existing file in DIR that is not an earlier output of this command is never replaced.

Example:
  $ jaxres features videos/ --out feats --checkpoint runs/demo --layer pre_logits
  $ jaxres features a.mp4 b.mp4 --out feats --weights r3d_18.kinetics400 --layer stage4 --stride 0.5
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from jaxres.commands.common import add_verbose_argument, report
from jaxres.commands.help import HelpFormatter

WRITTEN_BY = "jaxres features"


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(
    prog="jaxres features", description=__doc__, formatter_class=HelpFormatter
  )
  parser.add_argument("inputs", nargs="+", metavar="VIDEO_OR_FOLDER", help="videos, or folders")
  parser.add_argument("--out", required=True, metavar="DIR", help="folder for the .npy files")
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument("--checkpoint", metavar="RUN", help="the `jaxres train` workdir")
  source.add_argument(
    "--weights", metavar="NAME", help="published weights by name (`jaxres weights list`)"
  )
  parser.add_argument("--step", type=int, default=None, help="checkpoint step (None: the latest)")
  parser.add_argument(
    "--layer", default="pre_logits", help="stem, stage1..stage4 or pre_logits (the model's names)"
  )
  parser.add_argument(
    "--no-pool", action="store_true", help="keep a stage's [t, h, w, C] map per window"
  )
  parser.add_argument("--window", type=float, default=None, help="seconds per window")
  parser.add_argument("--stride", type=float, default=None, help="seconds between window starts")
  parser.add_argument("--window-frames", type=int, default=None, help="frames per window")
  parser.add_argument("--stride-frames", type=int, default=None, help="frames between starts")
  parser.add_argument("--clips", type=int, default=1, help="clips per window, averaged")
  parser.add_argument("--crops", type=int, default=1, choices=(1, 3), help="crops per clip")
  parser.add_argument("--batch-size", type=int, default=4, help="windows per forward pass")
  parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
  add_verbose_argument(parser)
  args = parser.parse_args(argv)

  from jaxres import features, inference, predict  # pylint: disable=import-outside-toplevel
  from jaxres.data.windows import Windowing  # pylint: disable=import-outside-toplevel
  from jaxres.weights import WeightsError  # pylint: disable=import-outside-toplevel

  try:
    windowing = Windowing(args.window, args.stride, args.window_frames, args.stride_frames)
    if args.batch_size < 1:
      raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}.")
    outputs = output_paths(args.inputs, args.out)
  except (ValueError, FileNotFoundError) as error:
    return report("jaxres features", error, args.verbose, 2)
  try:
    if args.weights:
      model, variables, info = inference.load_pretrained(
        args.weights, progress=not args.no_progress
      )
      model_name, data_config = info.arch, predict.pretrained_data_config(info.preprocessing)
      origin = {"weights": args.weights}
    else:
      run = inference.load_run(args.checkpoint, step=args.step)
      model, variables, model_name = run.model, run.variables, run.config.model.name
      data_config, origin = run.config.data, {"checkpoint": os.path.abspath(args.checkpoint)}
      origin["step"] = run.step
    data = predict.view_config(data_config, clips=args.clips, crops=args.crops)
    crop = data.eval_crop_size or data.crop_size
    layers = features.feature_layers(model, variables, (data.num_frames, crop, crop, 3))
    if args.layer not in layers:
      return report(
        "jaxres features",
        ValueError(f"--layer {args.layer!r} is not one of {model_name}'s: {', '.join(layers)}."),
        args.verbose,
        2,
      )
    failed: list = []
    bar = None if args.no_progress else _bar(len(outputs))

    def skip(path, error):
      failed.append((path, error))
      if bar is not None:
        bar.update(1)

    written = 0
    for path, times, values in features.extract_features(
      list(outputs),
      model,
      variables,
      data,
      layer=args.layer,
      windowing=windowing,
      pool=not args.no_pool,
      batch_size=args.batch_size,
      on_error=skip,
    ):
      sidecar = {
        "written_by": WRITTEN_BY,
        "video": os.path.abspath(path),
        **origin,
        "model": model_name,
        "layer": args.layer,
        "pooled": not args.no_pool,
        "shape": list(values.shape),
        "views": {"clips": data.eval_clips, "crops": data.eval_crops},
        "times": [[float(a), float(b)] for a, b in times],
      }
      _write(outputs[path], values, sidecar)
      written += 1
      if bar is not None:
        bar.update(1)
    if bar is not None:
      bar.close()
  except (OSError, ValueError, KeyError, WeightsError) as error:  # OSError: e.g. a full disk
    return report("jaxres features", error, args.verbose, 1)
  for path, error in failed:
    print(f"warning: skipped {path}: {error}", file=sys.stderr)
  print(
    f"wrote features of {written} of {len(outputs)} video(s) to {args.out} "
    f"({model_name} {args.layer})"
    + (f"; skipped {len(failed)} unreadable: {', '.join(p for p, _ in failed)}" if failed else "")
  )
  return 0 if written else 1


def _bar(total: int):
  from tqdm import tqdm  # pylint: disable=import-outside-toplevel

  return tqdm(total=total, unit="video", file=sys.stderr, dynamic_ncols=True)


def _is_ours(sidecar: str) -> bool:
  """Whether `sidecar` is a `.json` this command wrote (so its pair may be replaced)."""
  try:
    with open(sidecar) as f:
      return json.load(f).get("written_by") == WRITTEN_BY
  except (OSError, ValueError, AttributeError):
    return False


def output_paths(inputs: list[str], out: str) -> dict[str, str]:
  """Video -> the `.npy` it is written to (its `.json` beside it), checked before any work.

  A folder's videos keep their path below the folder; a file given by itself goes to the top of
  `out`. Refused (one line): an input that does not exist, a folder with no videos, two videos
  that would share an output, and an existing output that an earlier `jaxres features` did not
  write (its `.json` must say so).

  Example:
    >>> output_paths(["videos"], "feats")
    {'videos/a/x.mp4': 'feats/a/x.npy', 'videos/y.mp4': 'feats/y.npy'}
  """
  from jaxres.atomic_files import check_output  # pylint: disable=import-outside-toplevel
  from jaxres.data.video import VIDEO_SUFFIXES  # pylint: disable=import-outside-toplevel

  check_output(out, inputs=inputs, kind="folder", option="--out")
  outputs: dict[str, str] = {}
  for given in inputs:
    if os.path.isdir(given):
      found = sorted(
        os.path.join(folder, name)
        for folder, _, names in os.walk(given)
        for name in names
        if os.path.splitext(name)[1].lower() in VIDEO_SUFFIXES and not name.startswith(".")
      )
      if not found:
        raise FileNotFoundError(
          f"No videos in {given} (suffixes: {' '.join(VIDEO_SUFFIXES)}); give video files or "
          "folders of them."
        )
      pairs = [(path, os.path.relpath(path, given)) for path in found]
    elif os.path.exists(given):
      pairs = [(given, os.path.basename(given))]
    else:
      raise FileNotFoundError(f"No such video or folder: {given}")
    for path, relative in pairs:
      npy = os.path.join(out, os.path.splitext(relative)[0] + ".npy")
      clash = [p for p, o in outputs.items() if o == npy]
      if clash:
        raise ValueError(
          f"{clash[0]} and {path} would both write {npy}; give them in separate runs "
          "(or as one folder, which keeps their subfolders)."
        )
      outputs[path] = npy
  for npy in outputs.values():
    sidecar = os.path.splitext(npy)[0] + ".json"
    for target in (npy, sidecar):
      if os.path.lexists(target) and not _is_ours(sidecar):
        raise ValueError(
          f"--out: {target} exists and was not written by jaxres features; choose another "
          "--out or move it away."
        )
  return outputs


def _write(npy: str, values, sidecar: dict) -> None:
  """The features and their sidecar, each written whole (the `.json` last: it marks the pair).

  When either write fails, the `.npy` it wrote and the folders it created for them (`--out`
  itself on the first write, a subfolder, their missing parents) are removed again, so a run that
  writes nothing leaves no folder; a folder that was there before is never removed.
  """
  import numpy as np  # pylint: disable=import-outside-toplevel

  from jaxres.atomic_files import atomic_open, write_atomic  # pylint: disable=import-outside-toplevel

  folder = os.path.abspath(os.path.dirname(npy) or ".")
  created = []  # the missing folders, deepest first
  while not os.path.lexists(folder):
    created.append(folder)
    folder = os.path.dirname(folder)
  os.makedirs(os.path.dirname(npy) or ".", exist_ok=True)
  wrote = False
  try:
    with atomic_open(npy, "wb") as f:
      np.save(f, np.asarray(values, np.float32))
    wrote = True
    write_atomic(os.path.splitext(npy)[0] + ".json", json.dumps(sidecar, indent=2) + "\n")
  except BaseException:
    if wrote:  # features without the sidecar that marks them ours would block every rerun
      os.remove(npy)
    for folder in created:
      try:
        os.rmdir(folder)  # only while empty: another process may have written into it
      except OSError:
        break
    raise
