"""`jaxres upscale IN OUT --checkpoint DIR | --weights NAME`: super-resolve a video.

The model is a training run's (`--checkpoint`) or published weights by name (`--weights`, see
`jaxres weights list`).

Reads any video FFmpeg reads, upscales it in overlapping temporal chunks and spatial tiles, both
sized to fit `--max-memory` unless given (`--chunk`, `--tile`), and writes H.264 with the input's
frame times through a temporary file renamed at the end (a killed run's leftover is removed by the
next). The input's audio comes along, trimmed to --start/--duration (copied as it is where the
container holds its codec, else re-encoded: AAC for .mp4/.mkv/.mov, Opus for .webm, MP3 for .avi),
with its subtitles where the container holds them (.mkv, .mp4) and its colour description.
Defaults: libx264 for .mp4/.mkv/.mov/.m4v (mpeg4 for .avi, libvpx-vp9 for .webm), --crf 17
(visually lossless H.264), yuv420p (yuv444p for odd sizes); `--codec png` (.mov/.avi, RGB) or
`--codec ffv1 --pix-fmt bgr0` (.mkv/.avi) stores the upscaled frames losslessly.
`--compare` writes `bicubic | model` side by side instead (a video, or a lossless PNG strip of 4
frames when OUT ends in .png, which decodes and upscales only those 4). Memory does not grow with
the video's length. See `jaxres.sr.upscale`.

Example:
  $ jaxres upscale in.mp4 out.mp4 --checkpoint runs/sr_edsr
  $ jaxres upscale in.mp4 out.mp4 --weights basicvsr.reds4
  $ jaxres upscale in.mp4 compare.png --checkpoint runs/sr_edsr --compare
  $ jaxres upscale in.mp4 out.mp4 --checkpoint runs/sr --config sr_edsr_demo
  $ jaxres upscale in.mp4 part.mp4 --checkpoint runs/sr_edsr --start 12.5 --duration 4
  $ jaxres upscale in540p.mp4 out4k.mp4 --checkpoint runs/basicvsrpp --max-memory 16GiB
  $ jaxres upscale in.mp4 out.mkv --checkpoint runs/sr_edsr --codec libx265 --crf 20
  $ jaxres upscale in.mp4 master.mov --checkpoint runs/sr_edsr --codec png
"""

from __future__ import annotations

import argparse
import signal
import sys

from jaxres.commands.help import HelpFormatter


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(
    prog="jaxres upscale", description=__doc__, formatter_class=HelpFormatter
  )
  parser.add_argument("input", help="input video (any format ffmpeg reads)")
  parser.add_argument(
    "output", help="output video (.mp4, .mkv, .mov, .m4v, .avi, .webm; .png with --compare)"
  )
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
  parser.add_argument(
    "--crf",
    type=int,
    default=None,
    help="quality of libx264/libx265 (0-51) and libvpx-vp9 (0-63), lower is better (None: 17)",
  )
  parser.add_argument(
    "--codec",
    default=None,
    help="video encoder: libx264, libx265, libvpx-vp9, mpeg4, mjpeg, ffv1, png, as the "
    "container holds (None: libx264; mpeg4 for .avi, libvpx-vp9 for .webm)",
  )
  parser.add_argument(
    "--pix-fmt",
    default=None,
    help="stored pixel format, e.g. yuv444p, yuv420p10le, rgb24 (None: yuv420p, yuv444p for "
    "odd sizes, rgb24 for png)",
  )
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

  try:  # Everything the options say is checked before any model is loaded or frame decoded.
    from jaxres.train.plan import parse_bytes  # pylint: disable=import-outside-toplevel

    try:
      max_memory = parse_bytes(args.max_memory) if args.max_memory else None
    except ValueError as error:
      raise ValueError(f"--max-memory: {error}") from None
    options = upscale.UpscaleOptions(
      chunk=args.chunk,
      overlap=args.overlap,
      tile=args.tile,
      tile_overlap=args.tile_overlap,
      max_memory=max_memory,
    )
    upscale.check_range(args.start, args.duration)
    upscale.check_output(
      args.input,
      args.output,
      compare=args.compare,
      codec=args.codec,
      pix_fmt=args.pix_fmt,
      crf=args.crf,
    )
  except (FileNotFoundError, ValueError) as error:
    print(f"jaxres upscale: {error}", file=sys.stderr)
    return 2
  previous = _exit_on_sigterm()
  try:
    config = None
    if args.config:
      from jaxres.train.config import load_config  # pylint: disable=import-outside-toplevel

      config = load_config(args.config, overrides)
    encoding = dict(
      crf=args.crf,
      codec=args.codec,
      pix_fmt=args.pix_fmt,
      start=args.start,
      duration=args.duration,
    )
    if args.weights:
      loaded = checkpoint.load_sr_weights(
        args.weights,
        expect_model=args.model,
        expect_scale=args.scale,
        progress=not args.no_progress,
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
        **encoding,
      )
    else:
      result = upscale.upscale_with_checkpoint(
        args.input,
        args.output,
        args.checkpoint,
        config=config,
        expect_model=args.model,
        expect_scale=args.scale,
        step=args.step,
        options=options,
        compare=args.compare,
        progress=not args.no_progress,
        **encoding,
      )
      loaded = result["loaded"]
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
  except _Terminated:
    print(f"jaxres upscale: terminated; nothing was written to {args.output}.", file=sys.stderr)
    return 128 + signal.SIGTERM
  finally:
    if previous is not None:
      signal.signal(signal.SIGTERM, previous)
  h, w = result["size"]
  if result["plan"] is not None:
    print(f"upscaled in {result['plan'].describe()}")
  if result["partial"]:
    print(
      f"jaxres upscale: warning: {args.input} stops decoding after {result['decoded_frames']} of the "
      f"{result['header_frames']} frames its header lists (truncated or damaged); only those "
      "were upscaled.",
      file=sys.stderr,
    )
  origin = f"weights {args.weights}" if args.weights else f"step {loaded.step}"
  if args.compare and args.output.lower().endswith(".png"):
    print(
      f"wrote an image to {result['path']}: columns bicubic | {loaded.name} x{loaded.scale} "
      f"({origin}), rows {result['drawn']} frames spread over the "
      f"{result['frames']} of the video"
    )
  else:
    columns = " (bicubic | model side by side)" if args.compare else ""
    print(
      f"wrote {result['frames']} frames of {w}x{h} at {result['fps']:g} fps{columns} to "
      f"{result['path']} ({loaded.name} x{loaded.scale}, {origin})"
    )
    if result["copied"]:
      print(f"kept from {args.input}: {', '.join(result['copied'])}")
    if result["dropped"]:
      print(
        f"jaxres upscale: note: {args.output}'s container cannot hold "
        f"{', '.join(result['dropped'])} of {args.input}; left out.",
        file=sys.stderr,
      )
  return 0


class _Terminated(BaseException):
  """SIGTERM arrived: unwinds like Ctrl-C, so the partial output is removed on the way out."""


def _exit_on_sigterm():
  """Turns SIGTERM into `_Terminated` (main thread only); returns the handler it replaced."""

  def terminate(signum, frame):
    raise _Terminated()

  try:
    return signal.signal(signal.SIGTERM, terminate)
  except ValueError:  # not the main thread: leave the default
    return None
