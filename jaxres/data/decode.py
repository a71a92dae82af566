"""Video file -> uint8 `[T, H, W, 3]` RGB frames with PyAV, decoding only what a clip needs.

Frames are addressed by index on the video's *nominal grid*: frame `k` is the picture shown at time
`k / fps` after the first frame, with `fps` the stream's average rate. For a constant-rate video this
is exactly the k-th decoded frame; for a variable-rate one it is the frame on screen at that time
(the last one whose timestamp is not later), so clips keep real-time spacing either way.

`read_frames` seeks to the keyframe before the first wanted frame when that frame is not near the
start (mp4/mkv/webm/avi all allow it) and stops decoding after the last one. Rotation metadata
(the display matrix phones write) is applied, so frames come out as a player shows them.

Failures raise `DecodeError` (a `ValueError`) naming the file: not a video, no video stream,
truncated or corrupt data, no decodable frame. Callers in the pipeline turn these into counted skips.

Example:
  >>> meta = probe("v_ApplyEyeMakeup_g01_c01.avi")            # fps, num_frames, size, rotation
  >>> clip = read_frames("v_ApplyEyeMakeup_g01_c01.avi", np.arange(0, 32, 2))   # [16, H, W, 3]
  >>> video = read_video("clip.mp4"); video.frames.shape, video.fps
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import av
import numpy as np

# Suffixes listed as videos by the sources; anything else in a class folder is skipped as not_video.
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv",
                  ".3gp", ".ogv")

# Seeking costs a demuxer reset; below this many frames into the video it is cheaper to decode on.
_SEEK_MIN_FRAMES = 24


class DecodeError(ValueError):
  """A file could not be decoded as a video; `reason` is a short tag for skip counters."""

  def __init__(self, path: str, reason: str, detail: str = ""):
    self.path, self.reason, self.detail = path, reason, detail
    super().__init__(f"{path}: {reason}" + (f" ({detail})" if detail else ""))


@dataclasses.dataclass(frozen=True)
class VideoMeta:
  """What the container says about a video's first video stream.

  Attributes:
    path: the file.
    fps: average frame rate (the nominal grid).
    num_frames: frames on the nominal grid (exact for mp4/mkv/avi headers, else duration x fps).
    duration: seconds.
    height: displayed height (after rotation).
    width: displayed width (after rotation).
    rotation: degrees counter-clockwise the frames are turned to display them (0, 90, 180, 270).
    codec: decoder name, e.g. "h264".
  """

  path: str
  fps: float
  num_frames: int
  duration: float
  height: int
  width: int
  rotation: int
  codec: str


@dataclasses.dataclass(frozen=True)
class Video:
  """Decoded frames with their rate.

  Attributes:
    frames: uint8 `[T, H, W, 3]`.
    fps: frames per second of `frames`.
  """

  frames: np.ndarray
  fps: float


def _open(path: str):
  try:
    container = av.open(path, metadata_errors="ignore")
  except FileNotFoundError:
    raise
  except (av.FFmpegError, UnicodeDecodeError, OSError) as e:
    raise DecodeError(path, "corrupt", f"cannot open: {e}") from None
  if not container.streams.video:
    container.close()
    raise DecodeError(path, "not_video", "no video stream")
  stream = container.streams.video[0]
  stream.thread_type = "AUTO"
  return container, stream


def _rotation(stream, frame=None) -> int:
  angle = None
  if frame is not None:
    angle = getattr(frame, "rotation", None)
  if not angle:
    tag = stream.metadata.get("rotate")
    angle = -int(tag) if tag else 0
  return int(round(angle / 90.0)) % 4 * 90


def _stream_meta(path: str, container, stream) -> tuple[float, int, float, float]:
  """(fps, num_frames, duration, start_time) from headers."""
  rate = stream.average_rate or stream.guessed_rate or stream.base_rate
  fps = float(rate) if rate else 0.0
  tb = float(stream.time_base) if stream.time_base else 0.0
  start = stream.start_time * tb if stream.start_time is not None and tb else 0.0
  if stream.duration is not None and tb:
    duration = stream.duration * tb
  elif container.duration is not None:
    duration = container.duration / av.time_base
  else:
    duration = 0.0
  if not fps or not math.isfinite(fps):
    fps = stream.frames / duration if stream.frames and duration else 25.0
  if stream.frames and stream.frames > 0:
    num_frames = int(stream.frames)
    # VFR: the header counts decoded frames, the grid spans the duration.
    if duration and abs(duration * fps - num_frames) > 1.5:
      num_frames = max(1, int(round(duration * fps)))
  else:
    num_frames = int(round(duration * fps))
  return fps, num_frames, duration, start


def probe(path: str) -> VideoMeta:
  """Reads a video's headers (and its first frame, for the size and rotation).

  Args:
    path: a video file.

  Returns:
    `VideoMeta`.

  Raises:
    FileNotFoundError: no such file.
    DecodeError: not a readable video.

  Example:
    >>> probe("clip.mp4").num_frames
    48
  """
  container, stream = _open(path)
  with container:
    fps, num_frames, duration, _ = _stream_meta(path, container, stream)
    try:
      frame = next(container.decode(stream), None)
    except av.FFmpegError as e:
      raise DecodeError(path, "corrupt", str(e)) from None
    if frame is None:
      raise DecodeError(path, "empty", "no decodable frame")
    rotation = _rotation(stream, frame)
    h, w = frame.height, frame.width
    if rotation in (90, 270):
      h, w = w, h
    if num_frames <= 0:
      raise DecodeError(path, "empty", "zero frames")
    return VideoMeta(path, fps, num_frames, duration, h, w, rotation, stream.codec_context.name)


def _to_array(frame, rotation: int) -> np.ndarray:
  image = frame.to_ndarray(format="rgb24")
  if rotation:
    image = np.ascontiguousarray(np.rot90(image, k=rotation // 90))
  return image


def _decode_grid(path: str, container, stream, targets: np.ndarray, fps: float, start: float,
                 seek: bool) -> dict[int, np.ndarray]:
  """Decodes the frames on the nominal grid at the sorted unique indices `targets`."""
  tol = 0.25 / fps
  out: dict[int, np.ndarray] = {}
  prev = prev_array = None
  rotation = None
  j = 0
  seeked = False
  if seek and targets[0] >= _SEEK_MIN_FRAMES:
    # Aim a little early: some demuxers land on the keyframe after a timestamp that is exact.
    offset = int((start + (targets[0] - 0.5) / fps) / float(stream.time_base))
    container.seek(offset, stream=stream, backward=True, any_frame=False)
    seeked = True
  count = 0
  for frame in container.decode(stream):
    if rotation is None:
      rotation = _rotation(stream, frame)
    t = frame.time - start if frame.time is not None else count / fps
    count += 1
    while j < len(targets) and t > targets[j] / fps + tol:
      if prev is None:
        if seeked:  # Landed after the target: the container's index lied; caller decodes from 0.
          raise _Overshoot()
        prev = frame
      if prev_array is None:
        prev_array = _to_array(prev, rotation)
      out[int(targets[j])] = prev_array
      j += 1
    if j == len(targets):
      break
    prev, prev_array = frame, None
  if prev is None:
    raise DecodeError(path, "empty", "no decodable frame")
  if j < len(targets):  # Past the end of the stream (header over-estimated): repeat the last frame.
    array = prev_array if prev_array is not None else _to_array(prev, rotation)
    for k in targets[j:]:
      out[int(k)] = array
  return out


class _Overshoot(Exception):
  pass


def read_frames(path: str, indices: Sequence[int] | np.ndarray | Callable[[VideoMeta], np.ndarray],
                *, seek: bool = True) -> np.ndarray:
  """Decodes the frames at `indices` on the nominal grid (see the module docstring).

  Args:
    path: a video file.
    indices: frame indices (any order, repeats allowed), or a function of the `VideoMeta` that
      returns them (so the clip can be placed once the length is known, in one open of the file).
      Indices past the end give the last frame.
    seek: allow seeking to the keyframe before the first index.

  Returns:
    uint8 `[len(indices), H, W, 3]`.

  Raises:
    FileNotFoundError: no such file.
    DecodeError: not a video, corrupt, or no decodable frame.

  Example:
    >>> read_frames("clip.mp4", lambda meta: np.arange(meta.num_frames - 8, meta.num_frames))
  """
  container, stream = _open(path)
  try:
    fps, num_frames, duration, start = _stream_meta(path, container, stream)
    if num_frames <= 0:
      raise DecodeError(path, "empty", "zero frames")
    if callable(indices):
      meta = VideoMeta(path, fps, num_frames, duration, stream.height, stream.width,
                       _rotation(stream), stream.codec_context.name)
      indices = indices(meta)
    indices = np.asarray(indices, np.int64).reshape(-1)
    if indices.size == 0:
      raise ValueError("read_frames needs at least one index.")
    if indices.min() < 0:
      raise ValueError(f"Negative frame index in {indices}.")
    targets = np.unique(indices)
    try:
      try:
        grid = _decode_grid(path, container, stream, targets, fps, start, seek)
      except _Overshoot:
        container.seek(0, stream=stream, backward=True, any_frame=False)
        grid = _decode_grid(path, container, stream, targets, fps, start, False)
    except av.FFmpegError as e:
      raise DecodeError(path, "corrupt", str(e)) from None
    return np.stack([grid[int(k)] for k in indices])
  finally:
    container.close()


def read_video(path: str, *, max_frames: int | None = None) -> Video:
  """Decodes a whole video onto its nominal grid.

  Args:
    path: a video file.
    max_frames: stop after this many frames (default: all).

  Returns:
    `Video(frames uint8 [T, H, W, 3], fps)`; for a variable-rate video, `T = duration x fps`
    frames at even spacing.

  Raises:
    FileNotFoundError: no such file.
    DecodeError: not a video, corrupt, or no decodable frame.

  Example:
    >>> video = read_video("clip.webm"); video.frames.shape
    (48, 64, 80, 3)
  """
  container, stream = _open(path)
  try:
    fps, num_frames, _, start = _stream_meta(path, container, stream)
    decoded, times, rotation = [], [], None
    try:
      for i, frame in enumerate(container.decode(stream)):
        if rotation is None:
          rotation = _rotation(stream, frame)
        decoded.append(_to_array(frame, rotation))
        times.append(frame.time - start if frame.time is not None else i / fps)
        if max_frames and len(decoded) >= max_frames and num_frames <= max_frames:
          break
    except av.FFmpegError as e:
      if not decoded:
        raise DecodeError(path, "corrupt", str(e)) from None
      # A truncated tail: keep what decoded (the caller still sees fewer frames than the header).
  finally:
    container.close()
  if not decoded:
    raise DecodeError(path, "empty", "no decodable frame")
  times = np.asarray(times)
  span = max(len(decoded), int(round((times[-1] + 1.0 / fps) * fps)))
  if abs(span - len(decoded)) <= 1 and np.all(np.abs(times - np.arange(len(times)) / fps) < 0.5 / fps):
    frames = np.stack(decoded)  # Constant rate: the decoded frames are the grid.
  else:
    # Last frame not later than each grid time (decoded frames are in presentation order).
    grid = np.arange(span) / fps
    pick = np.clip(np.searchsorted(times, grid + 0.25 / fps, side="right") - 1, 0, len(decoded) - 1)
    frames = np.stack([decoded[i] for i in pick])
  if max_frames:
    frames = frames[:max_frames]
  return Video(frames, fps)
