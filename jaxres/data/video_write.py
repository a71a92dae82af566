"""Writing uint8 RGB frames as video files with PyAV, atomically (import it from `jaxres.data.video`).

Everything is encoded to a hidden temporary file next to the output and renamed over the output only
when writing finished without error, so a failed or interrupted run leaves no partial file under the
output name.

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

import fractions
import os
from typing import Sequence

import av
import imageio.v3 as iio
import numpy as np

from jaxres.atomic_files import atomic_path, temporary_path

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

# Containers that store one frame rate: times given to a writer are not kept there.
_FIXED_RATE_SUFFIXES = (".avi",)

# Clock of given frame times: exact for 24/25/30/50/60 fps and 29.97/59.94 (1/120000 s off for
# 23.976), and under the 2**16 limit of MPEG-4 part 2.
_TIME_BASE = fractions.Fraction(1, 60000)


def check_output_path(path: str, suffixes: Sequence[str] = WRITE_SUFFIXES) -> None:
  """Raises a clear error if the output's folder is missing or its suffix is not one of `suffixes`.

  Args:
    path: the output file.
    suffixes: accepted lower-case suffixes, with the dot.

  Raises:
    FileNotFoundError: the folder does not exist.
    ValueError: another suffix.

  Example:
    >>> check_output_path("runs/out.png", (".png",))
  """
  folder = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"The output folder {folder} does not exist; create it first.")
  if os.path.splitext(path)[1].lower() not in suffixes:
    raise ValueError(f"Output {path} must end in one of {', '.join(suffixes)}.")


class VideoWriter:
  """Writes uint8 `[H, W, 3]` RGB frames to a video through a temporary file renamed on success.

  Frames are written at `fps`, or at the times given to `write` (then the output keeps a variable
  frame rate input's timing and duration; `.avi` stores one rate, so there the times are ignored
  and frames follow `fps`). Use it as a context manager: leaving the block on an
  exception deletes the temporary file.

  Args:
    path: the output file (a suffix of `WRITE_SUFFIXES`); its folder must exist.
    fps: frames per second (the nominal rate when times are given).
    crf: constant rate factor for H.264/VP9 (lower = better; 17 is visually lossless for H.264).
    codec: an FFmpeg encoder name (`libx264`, `mpeg4`, `libvpx-vp9`, `mjpeg`, `ffv1`, ...);
      default: by suffix.
    pix_fmt: the stored pixel format (e.g. `yuv420p10le`, `gray`); default `yuv420p`, or `yuv444p`
      for odd sizes.
    gop: keyframe interval in frames (default: the encoder's).

  Example:
    >>> with VideoWriter("out.mp4", 25.0, crf=10) as writer:
    ...   writer.write(np.zeros((64, 64, 3), np.uint8))
  """

  def __init__(
    self,
    path: str,
    fps: float,
    *,
    crf: int = 17,
    codec: str | None = None,
    pix_fmt: str | None = None,
    gop: int | None = None,
  ):
    check_output_path(path)
    if not fps or fps <= 0:
      raise ValueError(f"Frame rate for {path} must be positive, got {fps}.")
    self.path, self.fps, self.crf, self.gop = path, fps, crf, gop
    self.codec = codec or _DEFAULT_CODECS[os.path.splitext(path)[1].lower()]
    self.pix_fmt = pix_fmt
    self.tmp = temporary_path(os.path.abspath(path))
    self.frames_written = 0
    self._container = self._stream = self._timed = None
    self._keep_times = False

  def _open(self, height: int, width: int, timed: bool) -> None:
    self._container = av.open(self.tmp, "w")
    stream = self._container.add_stream(
      self.codec, rate=fractions.Fraction(self.fps).limit_denominator(1001)
    )
    stream.width, stream.height = width, height
    odd = height % 2 or width % 2
    if self.pix_fmt:
      stream.pix_fmt = self.pix_fmt
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
    if self._keep_times:
      image.pts = int(round(time / _TIME_BASE))
      image.time_base = _TIME_BASE
    for packet in self._stream.encode(image):
      self._container.mux(packet)
    self.frames_written += 1

  def close(self, success: bool = True) -> None:
    """Finishes the file and renames it to `path` (or deletes it when `success` is False).

    Raises:
      ValueError: `success` but no frame was written (nothing is left under `path`).
    """
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
        os.replace(self.tmp, self.path)
    finally:
      self._container = self._stream = None
      if os.path.exists(self.tmp):
        os.remove(self.tmp)
    if success and not self.frames_written:
      raise ValueError(f"No frames were written to {self.path}.")

  def __enter__(self):
    return self

  def __exit__(self, exc_type, exc, tb):
    self.close(success=exc_type is None)
    return False


def write_video(
  path: str,
  frames: np.ndarray,
  fps: float,
  *,
  crf: int = 17,
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
    crf: constant rate factor for H.264/VP9 (lower is better).
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
  with atomic_path(path) as tmp:
    iio.imwrite(tmp, np.ascontiguousarray(image, np.uint8))
