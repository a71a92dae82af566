"""`jaxres upscale IN OUT --checkpoint DIR | --weights NAME`: super-resolve a video.

The model is a training run's (`--checkpoint`) or published weights by name (`--weights`, see
`jaxres weights list`).

Reads any video FFmpeg reads, upscales it in overlapping temporal chunks and spatial tiles, both
sized to fit `--max-memory` unless given (`--chunk`, `--tile`), and writes H.264 with the input's
frame times through a temporary file renamed at the end.
`--compare` writes `bicubic | model` side by side instead (a video, or a PNG strip of 4 frames when
OUT ends in .png). Memory does not grow with the video's length. See `jaxres.sr.upscale`.

Example:
  $ jaxres upscale in.mp4 out.mp4 --checkpoint runs/sr_edsr
  $ jaxres upscale in.mp4 out.mp4 --weights basicvsr.reds4
  $ jaxres upscale in.mp4 compare.png --checkpoint runs/sr_edsr --compare
  $ jaxres upscale in.mp4 out.mp4 --checkpoint runs/sr --config sr_edsr_demo
  $ jaxres upscale in.mp4 part.mp4 --checkpoint runs/sr_edsr --start 12.5 --duration 4
  $ jaxres upscale in540p.mp4 out4k.mp4 --checkpoint runs/basicvsrpp --max-memory 16GiB
"""

from __future__ import annotations

import argparse
import sys

from jaxres.commands.help import HelpFormatter


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(
    prog="jaxres upscale", description=__doc__, formatter_class=HelpFormatter
  )
  parser.add_argument("input", help="input video (any format ffmpeg reads)")
  parser.add_argument("output", help="output video (.mp4, .mkv, .mov, ...; .png with --compare)")
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument("--checkpoint", help="the training workdir")
  source.add_argument(
    "--weights",
    metavar="NAME",
    help="published weights by name (`jaxres weights list`), e.g. basicvsr.reds4",
  )
  parser.add_argument(
    "--config",
    default=None,
    help="the run's config (a shipped name or a file), if the workdir has no config.json "
    "(with any --config.key=value overrides the run used)",
  )
  parser.add_argument("--model", default=None, help="refuse a checkpoint of another architecture")
  parser.add_argument(
    "--scale", type=int, default=None, help="refuse a checkpoint of another scale"
  )
  parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
  parser.add_argument(
    "--chunk",
    type=int,
    default=None,
    help="frames kept per temporal window (None: up to 16, to fit --max-memory)",
  )
  parser.add_argument(
    "--overlap",
    type=int,
    default=6,
    help="context frames on each side of a window (recurrent models)",
  )
  parser.add_argument(
    "--tile",
    type=int,
    default=None,
    help="LR tile size in pixels, 0 for whole frames (None: whole frames if they "
    "fit --max-memory, else the largest tiles that do)",
  )
  parser.add_argument(
    "--max-memory",
    default=None,
    help="peak memory for automatic --chunk/--tile, e.g. 8GiB (None: this "
    "process plus 70%% of the machine's available memory)",
  )
  parser.add_argument(
    "--tile-overlap", type=int, default=16, help="LR context pixels per tile side"
  )
  parser.add_argument("--compare", action="store_true", help="write bicubic | model side by side")
  parser.add_argument("--crf", type=int, default=17, help="x264 quality (lower is better)")
  parser.add_argument(
    "--start",
    type=float,
    default=0.0,
    help="seconds into the video where the part to upscale begins",
  )
  parser.add_argument(
    "--duration",
    type=float,
    default=None,
    help="seconds to upscale from --start (None: to the end)",
  )
  parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
  parser.add_argument(
    "--verbose", action="store_true", help="show TensorFlow's start-up lines and tracebacks"
  )
  from jaxres.train.config import split_overrides  # pylint: disable=import-outside-toplevel

  argv, overrides = split_overrides(list(argv))
  args = parser.parse_args(argv)
  if overrides and not args.config:
    parser.error("--config.key=value overrides need --config")
  if args.weights and (args.config or args.step is not None):
    parser.error("--config and --step belong to --checkpoint, not --weights")

  from jaxres.sr import checkpoint, upscale  # pylint: disable=import-outside-toplevel
  from jaxres.weights import WeightsError  # pylint: disable=import-outside-toplevel

  try:
    from jaxres.train.plan import parse_bytes  # pylint: disable=import-outside-toplevel

    max_memory = parse_bytes(args.max_memory) if args.max_memory else None
    options = upscale.UpscaleOptions(
      chunk=args.chunk,
      overlap=args.overlap,
      tile=args.tile,
      tile_overlap=args.tile_overlap,
      max_memory=max_memory,
    )
    config = None
    if args.config:
      from jaxres.train.config import load_config  # pylint: disable=import-outside-toplevel

      config = load_config(args.config, overrides)
    if args.weights:
      loaded = checkpoint.load_sr_weights(
        args.weights,
        expect_model=args.model,
        expect_scale=args.scale,
        progress=not args.no_progress,
      )
    else:
      loaded = checkpoint.load_sr_model(
        args.checkpoint,
        config=config,
        expect_model=args.model,
        expect_scale=args.scale,
        step=args.step,
      )
    result = upscale.upscale_video(
      args.input,
      args.output,
      loaded.model,
      loaded.variables,
      scale=loaded.scale,
      clip_model=loaded.clip_model,
      options=options,
      compare=args.compare,
      progress=not args.no_progress,
      crf=args.crf,
      start=args.start,
      duration=args.duration,
    )
  except (FileNotFoundError, ValueError, WeightsError) as error:
    if args.verbose:
      raise
    print(f"jaxres upscale: {error}", file=sys.stderr)
    return 1
  except KeyError as error:
    if args.verbose:
      raise
    print(f"jaxres upscale: {error.args[0]}", file=sys.stderr)
    return 1
  except upscale.OutputError as error:
    print(f"jaxres upscale: {error.strerror}", file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    print(f"jaxres upscale: interrupted; nothing was written to {args.output}.", file=sys.stderr)
    return 130
  h, w = result["size"]
  if result["plan"] is not None:
    print(f"upscaled in {result['plan'].describe()}")
  if result["partial"]:
    print(
      f"jaxres upscale: warning: {args.input} stops decoding after {result['frames']} of the "
      f"{result['header_frames']} frames its header lists (truncated or damaged); only those "
      "were upscaled.",
      file=sys.stderr,
    )
  origin = f"weights {args.weights}" if args.weights else f"step {loaded.step}"
  if args.compare and args.output.lower().endswith(".png"):
    print(
      f"wrote an image to {result['path']}: columns bicubic | {loaded.name} x{loaded.scale} "
      f"({origin}), rows {min(4, result['frames'])} frames spread over the "
      f"{result['frames']} of the video"
    )
  else:
    columns = " (bicubic | model side by side)" if args.compare else ""
    print(
      f"wrote {result['frames']} frames of {w}x{h} at {result['fps']:g} fps{columns} to "
      f"{result['path']} ({loaded.name} x{loaded.scale}, {origin})"
    )
  return 0
