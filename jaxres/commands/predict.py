"""`jaxres predict VIDEO... --checkpoint RUN | --weights NAME`: classify video files.

The model is a training run's (`--checkpoint`) or published weights by name (`--weights`, see
`jaxres weights list`). Each video is decoded as `jaxres eval` decodes its eval videos: the run's
eval views, or the publisher's preprocessing for published weights (clips x crops,
`--clips`/`--crops` to change them), whose logits are averaged; the top-k classes are printed
with their probabilities. Class names come from the run (`classes.txt`), the published entry, or
`--labels`. Unreadable files are skipped and counted; the exit code is 1 only when no video could
be read.

Example:
  $ jaxres predict clip.mp4 other.avi --checkpoint runs/demo --top-k 3
  $ jaxres predict clip.mp4 --weights x3d_m.kinetics400 --top-k 5 --clips 1 --crops 1
  $ jaxres predict videos/*.mp4 --checkpoint runs/ucf --clips 10 --crops 3 --json predictions.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from jaxres.atomic_files import atomic_open, check_output
from jaxres.commands.help import HelpFormatter


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(
    prog="jaxres predict", description=__doc__, formatter_class=HelpFormatter
  )
  parser.add_argument(
    "videos",
    nargs="+",
    metavar="VIDEO",
    help="video files to classify, or folders of a video's frames as images",
  )
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument("--checkpoint", metavar="RUN", help="the `jaxres train` workdir")
  source.add_argument(
    "--weights", metavar="NAME", help="published weights by name (`jaxres weights list`)"
  )
  parser.add_argument("--step", type=int, default=None, help="checkpoint step (None: the latest)")
  parser.add_argument("--top-k", type=int, default=5, help="classes shown per video")
  parser.add_argument(
    "--clips", type=int, default=None, help="clips per video (None: the run's data.eval_clips)"
  )
  parser.add_argument(
    "--crops",
    type=int,
    default=None,
    choices=(1, 3),
    help="crops per clip (None: the run's data.eval_crops)",
  )
  parser.add_argument(
    "--batch-size",
    type=int,
    default=0,
    help="views per forward pass (0: all views of a video at once)",
  )
  parser.add_argument(
    "--labels",
    default=None,
    metavar="FILE",
    help="class names, one per line (None: the run's classes.txt or the published entry's)",
  )
  parser.add_argument(
    "--json",
    default=None,
    metavar="FILE",
    help="also write the predictions (top-k and all probabilities) here",
  )
  parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
  parser.add_argument(
    "--verbose", action="store_true", help="show TensorFlow's start-up lines and tracebacks"
  )
  args = parser.parse_args(argv)

  from jaxres import (
    inference,  # pylint: disable=import-outside-toplevel
    predict,  # pylint: disable=import-outside-toplevel
  )
  from jaxres.weights import WeightsError  # pylint: disable=import-outside-toplevel

  try:
    if args.json:  # the write rule (jaxres.atomic_files), before any model work
      check_output(args.json, inputs=[*args.videos, args.labels or ""], option="--json")
    if args.weights:
      model, variables, info = inference.load_pretrained(
        args.weights, progress=not args.no_progress
      )
      model_name, step, names = info.arch, None, info.class_names
      data_config = predict.pretrained_data_config(info.preprocessing)
      origin = {"weights": args.weights}
    else:
      run = inference.load_run(args.checkpoint, step=args.step)
      model, variables, model_name, step = run.model, run.variables, run.config.model.name, run.step
      data_config = run.config.data
      names = predict.run_class_names(args.checkpoint)
      origin = {"checkpoint": os.path.abspath(args.checkpoint), "step": step}
    predict.check_classifier(model_name)
    num_classes = int(model.num_classes)
    if args.labels:
      names = predict.read_labels(args.labels)
      if len(names) != num_classes:
        raise ValueError(
          f"--labels {args.labels} has {len(names)} names, the model {num_classes} classes."
        )
    data = predict.view_config(data_config, clips=args.clips, crops=args.crops)
  except (FileNotFoundError, ValueError, WeightsError) as error:
    if args.verbose:
      raise
    print(f"jaxres predict: {error}", file=sys.stderr)
    return 1
  except KeyError as error:
    if args.verbose:
      raise
    print(f"jaxres predict: {error.args[0]}", file=sys.stderr)
    return 1
  if names is None:
    print(
      f"(no classes.txt in {args.checkpoint} and no --labels: classes are shown as numbers)",
      file=sys.stderr,
    )

  bar = None
  if not args.no_progress and len(args.videos) > 1:
    from tqdm import tqdm  # pylint: disable=import-outside-toplevel

    bar = tqdm(total=len(args.videos), unit="video", file=sys.stderr, dynamic_ncols=True)
  say = bar.write if bar is not None else print

  def warn(text):
    (bar.write if bar is not None else print)(text, file=sys.stderr)

  rows, skipped = [], {}
  results = predict.predict_videos(args.videos, model, variables, data, batch_size=args.batch_size)
  for path, result in results:
    if isinstance(result, Exception):
      reason = getattr(result, "reason", "missing")
      skipped[reason] = skipped.get(reason, 0) + 1
      warn(f"warning: skipping {path}: {result}")
    else:
      top = result.top_k(args.top_k, names)
      say(f"{path}: " + ", ".join(f"{name} {p:.3f}" for name, p in top))
      rows.append(
        {
          "path": path,
          "num_views": result.num_views,
          "top_k": [{"class": name, "probability": p} for name, p in top],
          "probabilities": [float(p) for p in result.probabilities],
        }
      )
    if bar is not None:
      bar.update(1)
  if bar is not None:
    bar.close()

  views = f"{data.eval_clips} clip(s) x {data.eval_crops} crop(s)"
  weights_or_step = f"weights {args.weights}" if args.weights else f"step {step}"
  print(
    f"classified {len(rows)} of {len(args.videos)} video(s) with {model_name} "
    f"({weights_or_step}, {views} each)"
    + (f"; skipped {sum(skipped.values())} unreadable: {skipped}" if skipped else "")
  )
  if args.json:
    with atomic_open(args.json) as f:
      json.dump(
        {
          **origin,
          "model": model_name,
          "class_names": list(names or []),
          "views": {"clips": data.eval_clips, "crops": data.eval_crops},
          "predictions": rows,
          "skipped": skipped,
        },
        f,
        indent=2,
      )
    print(f"wrote {args.json}")
  return 0 if rows else 1
