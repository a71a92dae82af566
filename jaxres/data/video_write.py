"""Writing uint8 RGB frames as video files with PyAV, atomically (import it from `jaxres.data.video`).

Everything is encoded to a hidden temporary file next to the output and renamed over the output only
when writing finished without error, so a failed or interrupted run leaves no partial file under the
output name. An output that is a symbolic link is written through to its target (the link stays);
a folder, a device or another special file is refused. A process killed mid-write (SIGKILL) leaves
its hidden `.partial` file behind: `VideoWriter` first removes those of processes that no longer
run (`jaxres.atomic_files.remove_stale_partials`).

What is not pictures comes along from the input when `other_streams` names it: its audio streams are
copied packet for packet (re-encoded to the container's own audio codec, e.g. AAC for `.mp4`, only
where the container cannot hold the input's codec), trimmed to the part upscaled; its subtitles are
copied where the container holds their codec (`.mkv`: SubRip/ASS/WebVTT, `.mp4`: mov_text); its
colour description (primaries, transfer, matrix, range) is written into the output's stream, with
the RGB -> YUV conversion done in that matrix and range. Rotation is applied to the pixels by the
reader, so outputs are stored upright and carry no rotation tag (they display as the input does).

The codec follows the container unless given: `.mp4`/`.mkv`/`.mov`/`.m4v` -> H.264 (libx264),
`.avi` -> MPEG-4 part 2, `.webm` -> VP9. Frames with an even height and width are stored in 4:2:0
chroma (`yuv420p`, which every player reads); odd sizes in 4:4:4 (`yuv444p`), since 4:2:0 needs even
sizes and frames are never resized or padded.

Example:
  >>> write_video("clip.mp4", np.zeros((8, 64, 64, 3), np.uint8), fps=25)
  >>> with VideoWriter("out.mp4", fps=meta.fps) as writer:
  ...   for image, time in frames:
  ...     writer.write(image, time)
"""

from __future__ import annotations

import dataclasses
import fractions
import heapq
import os
import stat
from typing import Iterator, Sequence

import av
import imageio.v3 as iio
import numpy as np

from jaxres.atomic_files import (
  OutputRefusedError,
  atomic_path,
  check_output,
  remove_stale_partials,
  temporary_path,
)

# Codec by output suffix; these are also the suffixes a writer accepts.
_DEFAULT_CODECS = {
  ".mp4": "libx264",
  ".mkv": "libx264",
  ".mov": "libx264",
  ".m4v": "libx264",
  ".avi": "mpeg4",
  ".webm": "libvpx-vp9",
}
WRITE_SUFFIXES = tuple(_DEFAULT_CODECS)

# Video encoders offered by name where the output's container holds them (`check_encoding`).
_VIDEO_ENCODERS = ("libx264", "libx265", "libvpx-vp9", "mpeg4", "mjpeg", "ffv1", "png")

# Encoders that take a constant rate factor, with its range; 17 is visually lossless for H.264.
CRF_RANGES = {"libx264": (0, 51), "libx265": (0, 51), "libvpx-vp9": (0, 63)}
DEFAULT_CRF = 17

# Audio encoder by output suffix, for input audio the container cannot hold as it is.
_AUDIO_ENCODERS = {
  ".mp4": "aac",
  ".mkv": "aac",
  ".mov": "aac",
  ".m4v": "aac",
  ".avi": "libmp3lame",
  ".webm": "libopus",
}

# Containers that store one frame rate: times given to a writer are not kept there.
_FIXED_RATE_SUFFIXES = (".avi",)

# Clock of given frame times: exact for 24/25/30/50/60 fps and 29.97/59.94 (1/120000 s off for
# 23.976), and under the 2**16 limit of MPEG-4 part 2.
_TIME_BASE = fractions.Fraction(1, 60000)

# FFmpeg's colour matrices (AVColorSpace) that swscale converts with, by their RGB -> YUV name.
_SWSCALE_MATRICES = {
  1: "itu709",
  4: "fcc",
  5: "itu601",
  6: "smpte170m",
  7: "smpte240m",
  9: "bt2020",
}


@dataclasses.dataclass(frozen=True)
class Colour:
  """A video's colour description, FFmpeg's codes (`AVColorPrimaries`, ...; 2 = unspecified).

  Attributes:
    primaries: colour primaries (1 = BT.709, 9 = BT.2020).
    trc: transfer characteristic (1 = BT.709, 16 = PQ, 18 = HLG).
    space: YUV matrix (1 = BT.709, 5/6 = BT.601, 9 = BT.2020).
    range: 1 = limited (16-235), 2 = full (0-255).
  """

  primaries: int = 2
  trc: int = 2
  space: int = 2
  range: int = 0


@dataclasses.dataclass(frozen=True)
class OtherStreams:
  """Where a writer takes the streams that are not pictures (audio, subtitles) from.

  Attributes:
    path: the input video.
    start: seconds into its video stream where the output's first frame is.
    duration: seconds kept from `start` (None: as long as the written video).
  """

  path: str
  start: float = 0.0
  duration: float | None = None


def check_output_path(path: str, suffixes: Sequence[str] = WRITE_SUFFIXES) -> None:
  """Raises a clear error if `path` cannot be a file output with one of `suffixes`.

  The write rule of `jaxres.atomic_files.check_output` (a folder, a read-only destination, a socket
  are refused; a symbolic link is followed to its target), and more: a video is muxed into a
  temporary file and renamed, so a device or a pipe (which the rule writes directly) is refused too.

  Args:
    path: the output file.
    suffixes: accepted lower-case suffixes, with the dot.

  Raises:
    FileNotFoundError: the folder does not exist.
    ValueError: another suffix, or a folder, device, pipe or read-only file under that name.

  Example:
    >>> check_output_path("runs/out.png", (".png",))
  """
  target = os.path.realpath(path)
  folder = os.path.dirname(target)
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"The output folder {folder} does not exist; create it first.")
  if os.path.splitext(path)[1].lower() not in suffixes:
    raise ValueError(f"Output {path} must end in one of {', '.join(suffixes)}.")
  check_output(path, kind="file", option="output")
  if os.path.exists(target) and not stat.S_ISREG(os.stat(target).st_mode):
    raise OutputRefusedError(
      f"output {path} is a device or pipe; a video is written to a file (name a file instead)."
    )


def check_encoding(
  path: str, codec: str | None = None, pix_fmt: str | None = None, crf: int | None = None
) -> None:
  """Raises one clear line if `codec`, `pix_fmt` or `crf` cannot write `path` (before any work).

  Args:
    path: the output file (its suffix names the container).
    codec: an FFmpeg video encoder (None: by suffix).
    pix_fmt: a pixel format that encoder stores (None: its default).
    crf: a constant rate factor in the encoder's range (`CRF_RANGES`); None: its default.

  Raises:
    ValueError: naming the option (`--codec`, `--pix-fmt`, `--crf`) and what it accepts.

  Example:
    >>> check_encoding("out.mkv", "ffv1", "yuv444p")
  """
  suffix = os.path.splitext(path)[1].lower()
  if suffix not in _DEFAULT_CODECS:
    raise ValueError(f"Output {path} must end in one of {', '.join(WRITE_SUFFIXES)}.")
  supported = _container_codecs(suffix)
  offered = [name for name in _VIDEO_ENCODERS if _encoder_fits(name, supported)]
  name = codec or _DEFAULT_CODECS[suffix]
  if not _encoder_fits(name, supported):
    raise ValueError(
      f"--codec {name} is not a video encoder that {suffix} holds; for {suffix} use one of "
      f"{', '.join(offered)} (default {_DEFAULT_CODECS[suffix]})."
    )
  formats = sorted({f.name for f in av.Codec(name, "w").video_formats or ()})
  if pix_fmt is not None and formats and pix_fmt not in formats:
    raise ValueError(
      f"--pix-fmt {pix_fmt} is not a pixel format {name} stores; use one of {', '.join(formats)}."
    )
  if crf is not None:
    if name not in CRF_RANGES:
      raise ValueError(
        f"--crf applies to {', '.join(CRF_RANGES)}, not --codec {name} (which encodes at a "
        "fixed high bit rate, or losslessly); drop --crf."
      )
    low, high = CRF_RANGES[name]
    if not low <= crf <= high:
      raise ValueError(
        f"--crf must be from {low} to {high} for {name} (lower is better), got {crf}."
      )


def _container_codecs(suffix: str) -> frozenset:
  with av.open(os.devnull, "w", format=_FORMATS.get(suffix, suffix[1:])) as container:
    return frozenset(container.supported_codecs)


_FORMATS = {".mkv": "matroska", ".m4v": "ipod", ".mov": "mov", ".mp4": "mp4"}


def _encoder_fits(name: str, supported: frozenset) -> bool:
  try:
    codec = av.Codec(name, "w")
  except (av.FFmpegError, ValueError):
    return False
  return codec.type == "video" and (codec.name in supported or codec.canonical_name in supported)


class VideoWriter:
  """Writes uint8 `[H, W, 3]` RGB frames to a video through a temporary file renamed on success.

  Frames are written at `fps`, or at the times given to `write` (then the output keeps a variable
  frame rate input's timing and duration; `.avi` stores one rate, so there the times are ignored
  and frames follow `fps`). Use it as a context manager: leaving the block on an
  exception deletes the temporary file. Opening removes the `.partial` leftovers of dead processes
  for the same output (`jaxres.atomic_files.remove_stale_partials`).

  Args:
    path: the output file (a suffix of `WRITE_SUFFIXES`); its folder must exist.
    fps: frames per second (the nominal rate when times are given).
    crf: constant rate factor for H.264/H.265/VP9 (lower = better; 17 is visually lossless for
      H.264); None: 17.
    codec: an FFmpeg encoder name (`libx264`, `mpeg4`, `libvpx-vp9`, `mjpeg`, `ffv1`, `png`, ...);
      default: by suffix.
    pix_fmt: the stored pixel format (e.g. `yuv420p10le`, `gray`, `rgb24`); default `yuv420p`, or
      `yuv444p` for odd sizes (`rgb24` for `png`).
    gop: keyframe interval in frames (default: the encoder's).
    other_streams: the input whose audio and subtitles are copied in, trimmed (`OtherStreams`).
    colour: the colour description to convert into and tag (`Colour`; None: BT.601 untagged).

  Attributes:
    copied: after `close`, a line per stream copied from `other_streams`, e.g. "audio aac 44100 Hz".
    dropped: the same for streams the container cannot hold.

  Example:
    >>> with VideoWriter("out.mp4", 25.0, crf=10) as writer:
    ...   writer.write(np.zeros((64, 64, 3), np.uint8))
  """

  def __init__(
    self,
    path: str,
    fps: float,
    *,
    crf: int | None = None,
    codec: str | None = None,
    pix_fmt: str | None = None,
    gop: int | None = None,
    other_streams: OtherStreams | None = None,
    colour: Colour | None = None,
  ):
    check_output_path(path)
    if not fps or fps <= 0:
      raise ValueError(f"Frame rate for {path} must be positive, got {fps}.")
    self.path, self.fps, self.gop = path, fps, gop
    self.crf = DEFAULT_CRF if crf is None else crf
    self.codec = codec or _DEFAULT_CODECS[os.path.splitext(path)[1].lower()]
    self.pix_fmt = pix_fmt
    self.other_streams, self.colour = other_streams, colour
    self.target = os.path.realpath(path)  # a symbolic link is written through
    remove_stale_partials(self.target)
    self.tmp = temporary_path(self.target)
    self.frames_written = 0
    self.copied: list[str] = []
    self.dropped: list[str] = []
    self._container = self._stream = self._timed = None
    self._keep_times = False
    self._last_time = 0.0
    self._convert: dict = {}

  def _open(self, height: int, width: int, timed: bool) -> None:
    self._container = av.open(self.tmp, "w")
    stream = self._container.add_stream(
      self.codec, rate=fractions.Fraction(self.fps).limit_denominator(1001)
    )
    stream.width, stream.height = width, height
    odd = height % 2 or width % 2
    if self.pix_fmt:
      stream.pix_fmt = self.pix_fmt
    elif self.codec == "png":
      stream.pix_fmt = "rgb24"
    elif self.codec == "mjpeg":
      stream.pix_fmt = "yuvj444p" if odd else "yuvj420p"
    else:
      stream.pix_fmt = "yuv444p" if odd else "yuv420p"
    if self.codec in ("libx264", "libx265"):
      stream.options = {"crf": str(self.crf), "preset": "veryfast"}
    elif self.codec == "libvpx-vp9":
      stream.options = {"crf": str(self.crf), "b": "0", "deadline": "realtime", "cpu-used": "8"}
    elif self.codec in ("mpeg4", "mjpeg"):
      stream.bit_rate = 8_000_000  # No crf; a rate high enough that frames stay close to the input.
    if self.gop:
      stream.codec_context.gop_size = self.gop
    colour = self.colour
    if colour is not None and stream.pix_fmt.startswith(("yuv", "nv")):
      context = stream.codec_context
      context.color_primaries, context.color_trc = colour.primaries, colour.trc
      context.colorspace, context.color_range = colour.space, colour.range
      self._convert = {"format": stream.pix_fmt}
      if colour.space in _SWSCALE_MATRICES:
        self._convert["dst_colorspace"] = _SWSCALE_MATRICES[colour.space]
      if colour.range in (1, 2):
        self._convert["dst_color_range"] = colour.range
    self._keep_times = timed and os.path.splitext(self.path)[1].lower() not in _FIXED_RATE_SUFFIXES
    if self._keep_times:
      stream.time_base = stream.codec_context.time_base = _TIME_BASE
    self._stream, self._timed = stream, timed

  def write(self, frame: np.ndarray, time: float | None = None) -> None:
    """Appends one frame.

    Args:
      frame: uint8 `[H, W, 3]` RGB, the first frame's size.
      time: its presentation time in seconds (from `stream_video`); give it for every frame or
        for none (then frame `k` is shown at `k / fps`).
    """
    frame = np.ascontiguousarray(frame, dtype=np.uint8)
    if frame.ndim != 3 or frame.shape[-1] != 3:
      raise ValueError(f"Expected a uint8 [H, W, 3] frame for {self.path}, got {frame.shape}.")
    if self._stream is None:
      self._open(frame.shape[0], frame.shape[1], time is not None)
    elif frame.shape[:2] != (self._stream.height, self._stream.width):
      raise ValueError(
        f"Frame size {frame.shape[1]}x{frame.shape[0]} for {self.path} differs from "
        f"the first frame's {self._stream.width}x{self._stream.height}."
      )
    if (time is not None) != self._timed:
      raise ValueError(f"Give a time with every frame written to {self.path} or with none.")
    image = av.VideoFrame.from_ndarray(frame, format="rgb24")
    if self._convert:
      image = image.reformat(**self._convert)
    if self._keep_times:
      image.pts = int(round(time / _TIME_BASE))
      image.time_base = _TIME_BASE
    for packet in self._stream.encode(image):
      self._container.mux(packet)
    self._last_time = time if time is not None else self.frames_written / self.fps
    self.frames_written += 1

  def close(self, success: bool = True) -> None:
    """Finishes the file and renames it to `path` (or deletes it when `success` is False).

    Raises:
      ValueError: `success` but no frame was written (nothing is left under `path`).
    """
    muxed = None
    try:
      if self._container is not None:
        try:
          if success:
            for packet in self._stream.encode():
              self._container.mux(packet)
        finally:
          try:
            self._container.close()
          except OSError:
            if success:
              raise  # else: a failed file (e.g. a full disk) is deleted below anyway
      if success and self.frames_written:
        done = self.tmp
        if self.other_streams is not None:
          muxed = temporary_path(self.target)
          video_end = self._last_time + 1.0 / self.fps
          if _mux_other_streams(self, muxed, video_end):
            done = muxed
        os.replace(done, self.target)
    finally:
      self._container = self._stream = None
      for leftover in (self.tmp, muxed):
        if leftover and os.path.exists(leftover):
          os.remove(leftover)
    if success and not self.frames_written:
      raise ValueError(f"No frames were written to {self.path}.")

  def __enter__(self):
    return self

  def __exit__(self, exc_type, exc, tb):
    self.close(success=exc_type is None)
    return False


def _describe(stream) -> str:
  context = stream.codec_context
  if stream.type == "audio":
    return f"audio {context.name} {context.sample_rate} Hz"
  return f"{stream.type} {context.name}"


def _mux_other_streams(writer: VideoWriter, out_path: str, video_end: float) -> bool:
  """Writes `writer.tmp`'s video with the input's audio and subtitles into `out_path`.

  Returns:
    False when the input has no stream to keep (then `out_path` is not written).
  """
  source = writer.other_streams
  suffix = os.path.splitext(writer.path)[1].lower()
  with av.open(source.path, metadata_errors="ignore") as src:
    kept = [s for s in src.streams if s.type in ("audio", "subtitle")]
    if not kept:
      return False
    video = src.streams.video[0] if src.streams.video else None
    origin = 0.0
    if video is not None and video.start_time is not None and video.time_base:
      origin = float(video.start_time * video.time_base)
    begin = origin + source.start
    end = begin + min(video_end, source.duration or video_end)
    supported = _container_codecs(suffix)
    with av.open(writer.tmp) as pictures, av.open(out_path, "w") as out:
      picture_stream = pictures.streams.video[0]
      video_out = out.add_stream_from_template(picture_stream)
      video_out.time_base = picture_stream.time_base
      if picture_stream.average_rate:  # else Matroska stores its millisecond clock as the rate
        video_out.codec_context.framerate = picture_stream.average_rate
      routes = {}  # input stream index -> (output stream, encoder or None)
      for stream in kept:
        codec = stream.codec_context.codec
        if {stream.codec_context.name, codec.name, codec.canonical_name} & supported:
          target = out.add_stream_from_template(stream)
          routes[stream.index] = (target, None)
          writer.copied.append(_describe(stream))
        elif stream.type == "audio":
          routes[stream.index] = (_AudioReencoder(stream, out, _AUDIO_ENCODERS[suffix]), True)
          writer.copied.append(f"{_describe(stream)} (as {_AUDIO_ENCODERS[suffix]})")
        else:
          writer.dropped.append(_describe(stream))
          continue
        routes[stream.index][0].metadata.update(stream.metadata)
      if not routes:
        return False
      streams = [s for s in kept if s.index in routes]
      pictures_in = _timed_packets(
        pictures.demux(picture_stream), {picture_stream.index: (video_out, None)}, 0, None
      )
      others_in = _timed_packets(src.demux(streams), routes, begin, end)
      for _, _, packet in heapq.merge(pictures_in, others_in, key=lambda item: item[:2]):
        out.mux(packet)
  return True


def _timed_packets(packets, routes: dict, begin: float, end: float | None) -> Iterator:
  """`(seconds, order, packet)` for the output: each input packet shown in `[begin, end)` retimed
  to start at `begin` and assigned to its route's output stream (or re-encoded). A packet that
  starts within half its length before `begin` is kept (at 0), so audio stays within half a
  packet of the pictures."""
  order = 0
  for packet in packets:
    if packet.pts is None and packet.dts is None:
      continue  # a demuxer's flush packet
    target, reencode = routes[packet.stream.index]
    out_packets = [packet]
    if end is not None:
      time_base = packet.time_base
      pts = packet.pts if packet.pts is not None else packet.dts
      if (pts + (packet.duration or 0) / 2) * time_base < begin or pts * time_base >= end:
        continue
      if reencode:
        out_packets = target.encode(packet, begin)
      else:
        shift = int(round(begin / time_base))
        dts = packet.dts if packet.dts is not None else pts
        packet.pts, packet.dts = max(0, pts - shift), max(0, dts - shift)
    for out_packet in out_packets:
      if not reencode:
        out_packet.stream = target
      order += 1
      dts = out_packet.dts if out_packet.dts is not None else 0
      yield float(dts * out_packet.time_base), order, out_packet
  for target, reencode in routes.values():
    if reencode:
      for out_packet in target.flush():
        order += 1
        yield float((out_packet.dts or 0) * out_packet.time_base), order, out_packet


class _AudioReencoder:
  """Decodes an input audio stream's packets and encodes them with `encoder` into `out`."""

  def __init__(self, stream, out, encoder: str):
    codec = av.Codec(encoder, "w")
    rate = stream.codec_context.sample_rate
    rates = codec.audio_rates
    if rates and rate not in rates:
      rate = 48000 if 48000 in rates else max(rates)
    self.stream = out.add_stream(encoder, rate=rate)
    layout = stream.codec_context.layout
    self.stream.layout = layout.name if layout is not None and layout.nb_channels <= 2 else "stereo"
    formats = codec.audio_formats
    self.resampler = av.AudioResampler(
      format=formats[0].name if formats else "fltp", layout=self.stream.layout, rate=rate
    )
    self.metadata = self.stream.metadata

  def encode(self, packet, begin: float) -> list:
    out = []
    for frame in packet.decode():
      frame.pts = None  # the resampler and encoder count samples from the first one kept
      for resampled in self.resampler.resample(frame):
        out.extend(self.stream.encode(resampled))
    return out

  def flush(self) -> list:
    out = []
    for resampled in self.resampler.resample(None):
      out.extend(self.stream.encode(resampled))
    return out + list(self.stream.encode(None))


def write_video(
  path: str,
  frames: np.ndarray,
  fps: float,
  *,
  crf: int | None = None,
  codec: str | None = None,
  pix_fmt: str | None = None,
  timestamps: Sequence[float] | np.ndarray | None = None,
  gop: int | None = None,
) -> str:
  """Encodes a whole uint8 `[T, H, W, 3]` RGB array into `path` (atomically; see `VideoWriter`).

  Args:
    path: output file; its suffix picks the container and, unless `codec` is given, the codec.
    frames: uint8 `[T, H, W, 3]` RGB.
    fps: frame rate (the nominal one when `timestamps` are given).
    crf: constant rate factor for H.264/H.265/VP9 (lower is better; None: 17).
    codec: an FFmpeg encoder name (default: by suffix).
    pix_fmt: the stored pixel format (default: `yuv420p`, `yuv444p` for odd sizes).
    timestamps: optional presentation times in seconds, one per frame (variable frame rate).
    gop: keyframe interval in frames (default: the encoder's).

  Returns:
    `path`.

  Example:
    >>> write_video("clip.webm", frames, fps=30)                          # VP9
    >>> write_video("vfr.mp4", frames, fps=25, timestamps=[0, 0.04, 0.16])  # 3 frames
  """
  frames = np.asarray(frames)
  if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
    raise ValueError(
      f"Expected uint8 [T, H, W, 3] frames for {path}, got {frames.dtype} {frames.shape}."
    )
  if timestamps is not None and len(timestamps) != len(frames):
    raise ValueError(f"{len(timestamps)} timestamps for {len(frames)} frames of {path}.")
  with VideoWriter(path, fps, crf=crf, codec=codec, pix_fmt=pix_fmt, gop=gop) as writer:
    for i, frame in enumerate(frames):
      writer.write(frame, None if timestamps is None else float(timestamps[i]))
  return path


def write_png_atomic(path: str, image: np.ndarray) -> None:
  """Writes a uint8 `[H, W, 3]` image to a `.png` through a temporary file renamed at the end.

  Args:
    path: the output `.png`; its folder must exist.
    image: uint8 `[H, W, 3]` (or `[H, W]`).

  Example:
    >>> write_png_atomic("strip.png", np.concatenate(frames, axis=0))
  """
  check_output_path(path, (".png",))
  remove_stale_partials(path)
  with atomic_path(path) as tmp:
    iio.imwrite(tmp, np.ascontiguousarray(image, np.uint8))
