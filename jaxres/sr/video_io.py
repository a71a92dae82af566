"""Streaming video reading and atomic writing with imageio-ffmpeg (memory independent of length).

`read_video_stream` decodes one frame at a time, so a long video never sits in memory (unlike
`jaxres.data.decode`, which returns the whole clip for training). `VideoWriter` encodes to a hidden
temporary file next to the output and renames it over the output only when closed without error,
so a failed or interrupted run leaves no partial file under the output name.

Example:
  >>> info, frames = read_video_stream("in.mp4")
  >>> with VideoWriter("out.mp4", fps=info.fps) as writer:
  ...   for frame in frames:
  ...     writer.write(frame)
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import warnings
from typing import Iterator

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np

VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v")


@contextlib.contextmanager
def _quiet_fork():
  """JAX warns on any fork; starting ffmpeg is a fork immediately followed by exec, which is safe."""
  with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
    yield


@dataclasses.dataclass(frozen=True)
class VideoInfo:
  """What the container says about a video.

  Attributes:
    fps: frames per second.
    width: frame width.
    height: frame height.
    num_frames: estimated frame count (from duration x fps; None when unknown); for progress only.
  """

  fps: float
  width: int
  height: int
  num_frames: int | None


def read_video_stream(path: str) -> tuple[VideoInfo, Iterator[np.ndarray]]:
  """Opens a video for frame-by-frame decoding.

  Args:
    path: any file ffmpeg reads.

  Returns:
    `(info, frames)`: the `VideoInfo` and an iterator of uint8 `[H, W, 3]` RGB frames.

  Raises:
    FileNotFoundError: no such file.
    ValueError: ffmpeg cannot read it as a video.

  Example:
    >>> info, frames = read_video_stream("clip.mp4"); first = next(frames)
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"No such video file: {path}")
  reader = imageio_ffmpeg.read_frames(path)
  try:
    with _quiet_fork():
      meta = reader.__next__()
  except (OSError, RuntimeError, StopIteration) as e:
    raise ValueError(f"Cannot read {path} as a video: {e}") from e
  width, height = meta["size"]
  fps = float(meta.get("fps") or 0) or 25.0
  duration = meta.get("duration")
  num_frames = int(round(duration * fps)) if duration and math.isfinite(duration) else None
  info = VideoInfo(fps=fps, width=int(width), height=int(height), num_frames=num_frames)

  def frames():
    try:
      for raw in reader:
        yield np.frombuffer(raw, np.uint8).reshape(height, width, 3)
    finally:
      reader.close()

  return info, frames()


def temporary_path(path: str) -> str:
  """A hidden sibling of `path` with the same suffix (ffmpeg picks the container from it)."""
  folder, name = os.path.split(os.path.abspath(path))
  stem, suffix = os.path.splitext(name)
  return os.path.join(folder, f".{stem}.partial-{os.getpid()}{suffix}")


def check_output_path(path: str, suffixes: tuple[str, ...] = VIDEO_SUFFIXES) -> None:
  """Raises a clear error if the output's folder is missing or its suffix is not one of `suffixes`."""
  folder = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"The output folder {folder} does not exist; create it first.")
  if os.path.splitext(path)[1].lower() not in suffixes:
    raise ValueError(f"Output {path} must end in one of {', '.join(suffixes)}.")


class VideoWriter:
  """Writes uint8 `[H, W, 3]` frames to a video through a temporary file renamed on success.

  H.264 in MP4/MKV/MOV (`yuv420p`, which players expect, when width and height are even; `yuv444p`
  otherwise, since 4:2:0 needs even sizes). Frames are never resized.

  Args:
    path: the output file; its folder must exist.
    fps: frames per second (the input's, to keep timing).
    crf: x264 constant rate factor (lower = better; 17 is visually lossless).
  """

  def __init__(self, path: str, fps: float, crf: int = 17):
    check_output_path(path)
    self.path = path
    self.fps = fps
    self.crf = crf
    self.tmp = temporary_path(path)
    self._gen = None
    self._size = None
    self.frames_written = 0

  def write(self, frame: np.ndarray) -> None:
    """Appends one uint8 `[H, W, 3]` frame (all frames must have the first frame's size)."""
    frame = np.ascontiguousarray(frame, dtype=np.uint8)
    h, w = frame.shape[:2]
    if self._gen is None:
      self._size = (w, h)
      pix_fmt = "yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p"
      self._gen = imageio_ffmpeg.write_frames(
          self.tmp, (w, h), fps=self.fps, codec="libx264", pix_fmt_out=pix_fmt, quality=None,
          macro_block_size=1, output_params=["-crf", str(self.crf)])
      with _quiet_fork():
        self._gen.send(None)
    elif (w, h) != self._size:
      raise ValueError(f"Frame size {w}x{h} differs from the first frame's {self._size}.")
    self._gen.send(frame)
    self.frames_written += 1

  def close(self, success: bool = True) -> None:
    """Finishes the file and renames it to `path` (or deletes it when `success` is False)."""
    try:
      if self._gen is not None:
        self._gen.close()
    finally:
      self._gen = None
      if success and self.frames_written:
        os.replace(self.tmp, self.path)
      elif os.path.exists(self.tmp):
        os.remove(self.tmp)
    if success and not self.frames_written:
      raise ValueError(f"No frames were written to {self.path}.")

  def __enter__(self):
    return self

  def __exit__(self, exc_type, exc, tb):
    self.close(success=exc_type is None)
    return False


def write_png_atomic(path: str, image: np.ndarray) -> None:
  """Writes a uint8 image to `path` through a temporary file renamed at the end."""
  check_output_path(path, (".png",))
  tmp = temporary_path(path)
  try:
    iio.imwrite(tmp, np.ascontiguousarray(image, np.uint8))
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
