"""`jaxres predict VIDEO... --checkpoint RUN | --weights NAME`: classify video files.

The model is a training run's (`--checkpoint`) or published weights by name (`--weights`, see
`jaxres weights list`). Each video is decoded as `jaxres eval` decodes its eval videos: the run's
eval views, or the publisher's preprocessing for published weights (clips x crops,
`--clips`/`--crops` to change them), whose logits are averaged; the top-k classes are printed
with their probabilities. Class names come from the run (`classes.txt`), the published entry, or
`--labels`. Unreadable files are skipped and counted; the exit code is 1 only when no video could
be read.

Timeline: with `--window`/`--stride` (seconds) or `--window-frames`/`--stride-frames`, every
window of each video is classified instead (one clip and one crop per window unless
`--clips`/`--crops` say otherwise), streaming: the video is read once, forward, and memory does
not grow with its length. `--json`/`--csv` get each window's times and top-k, `--plot` a picture
of the class probabilities over time (one video). Giving only `--stride-frames` or `--stride`
keeps one clip of the model per window.

Example:
  $ jaxres predict clip.mp4 other.avi --checkpoint runs/demo --top-k 3
  $ jaxres predict clip.mp4 --weights x3d_m.kinetics400 --top-k 5 --clips 1 --crops 1
  $ jaxres predict videos/*.mp4 --checkpoint runs/ucf --clips 10 --crops 3 --json predictions.json
  $ jaxres predict long.mp4 --weights x3d_m.kinetics400 --window 3 --stride 1 --csv t.csv --plot t.png
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
  timeline = parser.add_argument_group("timeline (a prediction per window)")
  timeline.add_argument("--window", type=float, default=None, help="seconds per window")
  timeline.add_argument(
    "--stride", type=float, default=None, help="seconds between window starts (None: the window)"
  )
  timeline.add_argument(
    "--window-frames", type=int, default=None, help="frames per window (None: one model clip)"
  )
  timeline.add_argument(
    "--stride-frames", type=int, default=None, help="frames between window starts"
  )
  timeline.add_argument(
    "--csv", default=None, metavar="FILE", help="write each window's times and top-k here"
  )
  timeline.add_argument(
    "--plot", default=None, metavar="PNG", help="draw the class probabilities over time here"
  )
  parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
  parser.add_argument(
    "--verbose", action="store_true", help="show TensorFlow's start-up lines and tracebacks"
  )
  args = parser.parse_args(argv)
  windowed = any(
    v is not None for v in (args.window, args.stride, args.window_frames, args.stride_frames)
  )
  if not windowed and (args.csv or args.plot):
    parser.error("--csv and --plot write a timeline: give --window/--stride (or their -frames).")
  if args.plot and len(args.videos) != 1:
    parser.error(f"--plot draws one video's timeline; {len(args.videos)} videos were given.")
  if windowed:
    from jaxres.data.windows import Windowing  # pylint: disable=import-outside-toplevel

    try:
      windowing = Windowing(args.window, args.stride, args.window_frames, args.stride_frames)
    except ValueError as error:
      parser.error(str(error))

  from jaxres import (
    inference,  # pylint: disable=import-outside-toplevel
    predict,  # pylint: disable=import-outside-toplevel
  )
  from jaxres.weights import WeightsError  # pylint: disable=import-outside-toplevel

  try:
    if args.json:  # the write rule (jaxres.atomic_files), before any model work
      check_output(args.json, inputs=[*args.videos, args.labels or ""], option="--json")
    for option, path in (("--csv", args.csv), ("--plot", args.plot)):
      if path:
        check_output(path, inputs=args.videos, option=option)
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
    if windowed:  # one view per window unless asked
      args.clips, args.crops = args.clips or 1, args.crops or 1
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

  if windowed:
    return _timelines(args, windowing, model, variables, data, model_name, names, origin)

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
    document = {
      **origin,
      "model": model_name,
      "class_names": list(names or []),
      "views": {"clips": data.eval_clips, "crops": data.eval_crops},
      "predictions": rows,
      "skipped": skipped,
    }
    try:
      with atomic_open(args.json) as f:
        json.dump(document, f, indent=2)
    except OSError as error:  # a full disk or device (/dev/full): one line, nothing replaced
      print(f"jaxres predict: --json {args.json}: {error.strerror or error}", file=sys.stderr)
      return 1
    print(f"wrote {args.json}")
  return 0 if rows else 1


def _timelines(args, windowing, model, variables, data, model_name, names, origin) -> int:
  """`jaxres predict --window ...`: every window of every video, written as asked."""
  from jaxres import predict  # pylint: disable=import-outside-toplevel
  from jaxres.data.video import DecodeError  # pylint: disable=import-outside-toplevel

  forward = predict.forward_function(model)  # one compilation for every video
  timelines, skipped = [], {}
  quiet = bool(args.json or args.csv or args.plot)
  for path in args.videos:
    try:
      fps, windows = predict.predict_timeline(
        path, model, variables, data, windowing, batch_size=args.batch_size or 4, forward=forward
      )
      windows = _progress(windows, path, args.no_progress)
      rows = []
      for p in windows:
        rows.append(p)
        if not quiet:
          top = p.top_k(args.top_k, names)
          print(
            f"{path} [{p.start_time:.2f}-{p.end_time:.2f}s]: "
            + ", ".join(f"{name} {q:.3f}" for name, q in top)
          )
    except (DecodeError, FileNotFoundError) as error:
      reason = getattr(error, "reason", "missing")
      skipped[reason] = skipped.get(reason, 0) + 1
      print(f"warning: skipping {path}: {error}", file=sys.stderr)
      continue
    timelines.append((path, fps, rows))
  total = sum(len(rows) for _, _, rows in timelines)
  print(
    f"classified {total} window(s) of {len(timelines)} of {len(args.videos)} video(s) with "
    f"{model_name} ({data.eval_clips} clip(s) x {data.eval_crops} crop(s) per window)"
    + (f"; skipped {sum(skipped.values())} unreadable: {skipped}" if skipped else "")
  )
  writes = [
    (
      "--json",
      args.json,
      lambda: _write_json(args, timelines, names, origin, model_name, data, skipped),
    ),
    ("--csv", args.csv, lambda: _write_csv(args, timelines, names)),
    (
      "--plot",
      args.plot if timelines else None,
      lambda: _write_plot(args, timelines, model_name, names),
    ),
  ]
  for option, path, write in writes:
    if not path:
      continue
    try:
      write()
    except OSError as error:  # a full disk or device (/dev/full): one line, nothing replaced
      print(f"jaxres predict: {option} {path}: {error.strerror or error}", file=sys.stderr)
      return 1
  return 0 if timelines else 1


def _write_plot(args, timelines, model_name, names) -> None:
  from jaxres import predict  # pylint: disable=import-outside-toplevel

  path, _, rows = timelines[0]
  title = f"{os.path.basename(path)}: {model_name}"
  predict.plot_timeline(rows, args.plot, class_names=names, num_classes=args.top_k, title=title)
  print(f"wrote {args.plot}")


def _progress(windows, path, hidden):
  if hidden:
    return windows
  from tqdm import tqdm  # pylint: disable=import-outside-toplevel

  name = os.path.basename(path)
  return tqdm(windows, unit="window", desc=name, file=sys.stderr, dynamic_ncols=True, leave=False)


def _window_row(p, k, names) -> dict:
  return {
    "start_frame": p.start,
    "end_frame": p.end,
    "start_time": p.start_time,
    "end_time": p.end_time,
    "top_k": [{"class": name, "probability": q} for name, q in p.top_k(k, names)],
    "probabilities": [float(q) for q in p.probabilities],
  }


def _write_json(args, timelines, names, origin, model_name, data, skipped) -> None:
  with atomic_open(args.json) as f:
    json.dump(
      {
        **origin,
        "model": model_name,
        "class_names": list(names or []),
        "views": {"clips": data.eval_clips, "crops": data.eval_crops},
        "timelines": [
          {"path": path, "fps": fps, "windows": [_window_row(p, args.top_k, names) for p in rows]}
          for path, fps, rows in timelines
        ],
        "skipped": skipped,
      },
      f,
      indent=2,
    )
  print(f"wrote {args.json}")


def _write_csv(args, timelines, names) -> None:
  import csv  # pylint: disable=import-outside-toplevel

  k = args.top_k
  header = ["path", "start_time", "end_time", "start_frame", "end_frame"]
  header += [f"{what}_{i}" for i in range(1, k + 1) for what in ("class", "probability")]
  with atomic_open(args.csv) as f:
    writer = csv.writer(f)
    writer.writerow(header)
    for path, _, rows in timelines:
      for p in rows:
        top = [x for name, q in p.top_k(k, names) for x in (name, f"{q:.6f}")]
        writer.writerow([path, f"{p.start_time:.3f}", f"{p.end_time:.3f}", p.start, p.end] + top)
  print(f"wrote {args.csv}")
