"""Video files <-> uint8 RGB frames with PyAV: clips by index, streaming, atomic writing.

Reading (this file) gives uint8 `[H, W, 3]` RGB frames whatever the stored pixel format (8 or
10 bits, 4:2:0/4:2:2/4:4:4, grayscale), turned as a player shows them (the display matrix phones
write, or an old `rotate` tag), in two ways:

- `read_frames` / `read_video`: frames by index on the video's *nominal grid*, for training clips.
  Frame `k` is the picture shown at time `k / fps` after the first frame, with `fps` the stream's
  average rate. For a constant-rate video this is exactly the k-th decoded frame; for a
  variable-rate one it is the frame on screen at that time (the last one whose timestamp is not
  later), so clips keep real-time spacing either way. `read_frames` seeks to the keyframe before
  the first wanted frame when that frame is not near the start and stops after the last one.
- `stream_video`: every decoded frame in order with its presentation time, one at a time, so memory
  does not depend on the video's length (for upscaling long videos). Written back with those times
  (`VideoWriter.write(image, time)`), the output keeps the input's timing.

Writing (`VideoWriter`, `write_video`, `write_png_atomic`, `check_output_path`) lives in
`video_write.py` and is imported here: this module is the one place to import video I/O from.

Failures to read raise `DecodeError` (a `ValueError`) naming the file and with a short `reason` tag:
`not_video` (no video stream), `corrupt` (cannot be opened or decoded at all), `partial` (decoding
stops well before the frame count in its own header: a truncated or damaged file), `empty` (no
decodable frame). Callers in the pipeline turn these into counted skips; `stream_video` instead
ends where decoding stops, and `is_partial` tells its caller whether that was short of the header.

Example:
  >>> meta = probe("v_ApplyEyeMakeup_g01_c01.avi")            # fps, num_frames, size, rotation
  >>> clip = read_frames("v_ApplyEyeMakeup_g01_c01.avi", np.arange(0, 32, 2))   # [16, H, W, 3]
  >>> video = read_video("clip.mp4"); video.frames.shape, video.fps
  >>> meta, frames = stream_video("long.mp4")
  >>> with VideoWriter("copy.mp4", meta.fps) as writer:
  ...   for image, time in frames:
  ...     writer.write(image, time)
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
from typing import Callable, Iterator, Sequence

import av
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

from jaxres.data.video_write import (
  CRF_RANGES,
  DEFAULT_CRF,
  WRITE_SUFFIXES,
  Colour,
  OtherStreams,
  VideoWriter,
  check_encoding,
  check_output_path,
  write_png_atomic,
  write_video,
)

__all__ = [
  "VIDEO_SUFFIXES",
  "WRITE_SUFFIXES",
  "DecodeError",
  "VideoMeta",
  "Video",
  "probe",
  "read_frames",
  "read_video",
  "stream_video",
  "is_partial",
  "aligned_empty",
  "scale_rgb",
  "VideoWriter",
  "write_video",
  "write_png_atomic",
  "check_output_path",
  "check_encoding",
  "Colour",
  "OtherStreams",
  "CRF_RANGES",
  "DEFAULT_CRF",
]

# Suffixes listed as videos by the sources; anything else in a class folder is skipped as not_video.
VIDEO_SUFFIXES = (
  ".mp4",
  ".avi",
  ".mkv",
  ".webm",
  ".mov",
  ".m4v",
  ".mpg",
  ".mpeg",
  ".flv",
  ".wmv",
  ".3gp",
  ".ogv",
)

# Seeking costs a demuxer reset; below this many frames into the video it is cheaper to decode on.
_SEEK_MIN_FRAMES = 24


class DecodeError(ValueError):
  """A file could not be decoded as a video; `reason` is a short tag for skip counters."""

  def __init__(self, path: str, reason: str, detail: str = ""):
    self.path, self.reason, self.detail = path, reason, detail
    super().__init__(
      f"Cannot read {path} as a video: {reason}"
      + (f" ({detail})" if detail else "")
      + "; check the file plays, or remove it."
    )


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
    colour: the first frame's colour description (`Colour`), None when it states none (from
      `stream_video` and `probe` only).
  """

  path: str
  fps: float
  num_frames: int
  duration: float
  height: int
  width: int
  rotation: int
  codec: str
  colour: Colour | None = None


@dataclasses.dataclass(frozen=True)
class Video:
  """Decoded frames with their rate.

  Attributes:
    frames: uint8 `[T, H, W, 3]`.
    fps: frames per second of `frames`.
  """

  frames: np.ndarray
  fps: float


def _open(path: str, thread_type: str = "AUTO"):
  """`(container, first video stream)`; `thread_type` is the decoder's ("AUTO": frame threads,
  for one long decode; "NONE": one thread, for the short per-clip decodes that tf.data already
  runs side by side, where decoder threads only add start-up and hand-over work)."""
  try:
    container = av.open(path, metadata_errors="ignore")
  except FileNotFoundError:
    raise FileNotFoundError(f"No such video file: {path}") from None
  except (av.FFmpegError, UnicodeDecodeError, OSError) as e:
    raise DecodeError(path, "corrupt", f"cannot open: {e}") from None
  if not container.streams.video:
    container.close()
    raise DecodeError(path, "not_video", "no video stream")
  stream = container.streams.video[0]
  stream.thread_type = thread_type
  return container, stream


def _rotation(stream, frame=None) -> int:
  angle = getattr(frame, "rotation", None) if frame is not None else None
  if not angle:
    tag = stream.metadata.get("rotate")
    angle = -int(tag) if tag else 0
  return int(round(angle / 90.0)) % 4 * 90


def _stream_meta(container, stream) -> tuple[float, int, float, float]:
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


def is_partial(decoded: int, num_frames: int) -> bool:
  """Whether a video that decoded `decoded` frames stopped short of the `num_frames` its header says.

  A few frames of slack (2, or 5% of long videos) absorb headers that estimate the count from the
  duration; a truncated file misses more.

  Args:
    decoded: frames that decoded.
    num_frames: `VideoMeta.num_frames`.

  Returns:
    True when the decode is partial.

  Example:
    >>> is_partial(20, 40), is_partial(39, 40)
    (True, False)
  """
  return num_frames - decoded > max(2, math.ceil(0.05 * num_frames))


def _timed(
  path: str,
  container,
  stream,
  fps: float,
  start: float,
  *,
  keep_truncated: bool,
  shown_by: float | None = None,
):
  """Yields `(av.VideoFrame, seconds since the first frame)` in presentation order.

  With `keep_truncated`, a decoding error after the first frame ends the video there (a truncated
  tail keeps what decoded); otherwise every error is a `DecodeError`. With `shown_by` (seconds,
  on a decoder with one thread), frames that no other frame references and that a later frame
  shown no later than `shown_by` replaces are not decoded at all: a clip's frames are the last
  ones shown at its times, so these can never be among them, and with B-frames they are a third
  to a half of the pre-roll from the keyframe (H.264 from `libx264` with its default keyframe
  interval decodes from the start of the video for every clip).
  """
  frames = container.decode(stream) if shown_by is None else _skipping(container, stream, shown_by)
  count = 0
  while True:
    try:
      frame = next(frames)
    except StopIteration:
      return
    except av.FFmpegError as e:
      if count and keep_truncated:
        return
      if count:
        raise DecodeError(path, "partial", f"decoding failed after {count} frames: {e}") from None
      raise DecodeError(path, "corrupt", str(e)) from None
    yield frame, (frame.time - start if frame.time is not None else count / fps)
    count += 1


def _skipping(container, stream, shown_by: float):
  """`container.decode(stream)`, packet by packet, asking the decoder to skip the unreferenced
  frames (`skip_frame = "NONREF"`) of packets shown before one already read that is shown no later
  than `shown_by` (seconds from the stream's start, as packet and frame times are)."""
  context = stream.codec_context
  time_base = float(stream.time_base)
  latest = -math.inf  # the latest time among the packets read so far
  try:
    for packet in container.demux(stream):
      skip = False
      if packet.pts is not None:
        time = packet.pts * time_base
        skip = time < latest <= shown_by
        latest = max(latest, time)
      context.skip_frame = "NONREF" if skip else "DEFAULT"
      yield from context.decode(packet)
  finally:
    context.skip_frame = "DEFAULT"


# One swscale converter per thread, kept warm: `frame.to_ndarray(format=...)` builds a new one
# (tables and, with its default of automatic threads, a thread pool) for every frame, which cost
# more than decoding the frame. The same settings give the same pixels (tests/test_video_io.py).
# Scaling (`scale_rgb`, `read_frames(size=...)`) has its own, so that neither rebuilds its context.
_converters = threading.local()

# swscale's antialiased bilinear filter: within one level of TensorFlow's antialiased bilinear
# resize (rounded) in 99% of the bytes (tests/test_video_io.py).
_SCALE_FLAGS = Interpolation.BILINEAR


def _reformatter(kind: str, threads: int) -> VideoReformatter:
  kept = _converters.__dict__.setdefault(kind, {})
  if threads not in kept:
    kept[threads] = VideoReformatter()
  return kept[threads]


def _scale(frame, height: int, width: int, threads: int) -> np.ndarray:
  """An rgb24 `av.VideoFrame` scaled to `height x width` by swscale, as uint8 `[H, W, 3]`."""
  scaler = _reformatter("scale", threads)
  return scaler.reformat(
    frame, width=width, height=height, interpolation=_SCALE_FLAGS, threads=threads
  ).to_ndarray()


def scale_rgb(image: np.ndarray, height: int, width: int) -> np.ndarray:
  """Resizes one uint8 RGB image with swscale's antialiased bilinear filter, on this thread.

  The same filter as `read_frames(size=...)`, and the same pixels as it gives for the decoded
  frame: a clip resized here from kept frames equals one resized while decoding. Within one level
  of `tf.image.resize(..., antialias=True)` rounded to uint8 in 99% of the bytes, at a small
  fraction of its cost.

  Args:
    image: uint8 `[H, W, 3]`.
    height: output height.
    width: output width.

  Returns:
    uint8 `[height, width, 3]` (`image` itself when the size is already that).

  Example:
    >>> scale_rgb(np.zeros((240, 320, 3), np.uint8), 128, 171).shape
    (128, 171, 3)
  """
  if image.shape[:2] == (height, width):
    return image
  frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
  return _scale(frame, height, width, 1)


def _to_array(frame, rotation: int, threads: int = 0, size=None) -> np.ndarray:
  """uint8 `[H, W, 3]` RGB of `frame`, turned by `rotation`, then scaled to `size` (`(H, W)`,
  displayed) when given; `threads`: swscale's (0: automatic)."""
  # swscale converts any stored format (10-bit, gray, 4:4:4, ...) to 8-bit RGB.
  rgb = _reformatter("rgb", threads).reformat(frame, format="rgb24", threads=threads)
  if size is not None and not rotation and (rgb.height, rgb.width) != tuple(size):
    return _scale(rgb, size[0], size[1], threads)
  image = rgb.to_ndarray()
  if rotation:
    image = np.ascontiguousarray(np.rot90(image, k=rotation // 90))
  if size is not None and image.shape[:2] != tuple(size):
    image = _scale(av.VideoFrame.from_ndarray(image, format="rgb24"), size[0], size[1], threads)
  return image


def _displayed_size(frame, rotation: int) -> tuple[int, int]:
  """`(H, W)` of `frame` as shown, turned by `rotation`."""
  if rotation in (90, 270):
    return frame.width, frame.height
  return frame.height, frame.width


def _stream(path: str):
  """Generator: first the `VideoMeta`, then `(image, time)` per frame; closing it closes the file."""
  container, stream = _open(path)
  with container:
    fps, num_frames, duration, start = _stream_meta(container, stream)
    timed = _timed(path, container, stream, fps, start, keep_truncated=True)
    first = next(timed, None)
    if first is None:
      raise DecodeError(path, "empty", "no decodable frame")
    rotation = _rotation(stream, first[0])
    h, w = _displayed_size(first[0], rotation)
    colour = Colour(
      int(first[0].color_primaries),
      int(first[0].color_trc),
      int(first[0].colorspace),
      int(first[0].color_range),
    )
    if colour == Colour(2, 2, 2, 0):
      colour = None
    codec = stream.codec_context.name
    yield VideoMeta(path, fps, num_frames, duration, h, w, rotation, codec, colour)
    frame, time = first
    yield _to_array(frame, rotation), time
    del first, frame  # Nothing holds a frame across the stream.
    for frame, time in timed:
      yield _to_array(frame, rotation), time


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
  frames = _stream(path)
  try:
    meta = next(frames)
  finally:
    frames.close()
  if meta.num_frames <= 0:
    raise DecodeError(path, "empty", "zero frames")
  return meta


def stream_video(path: str) -> tuple[VideoMeta, Iterator[tuple[np.ndarray, float]]]:
  """Opens a video for decoding frame by frame (memory independent of its length).

  Every decoded frame comes out once, in presentation order, with its time: for a constant-rate
  video the same frames as `read_video`; for a variable-rate one the frames as stored (which
  `read_video` resamples onto its grid). A truncated tail ends the stream where decoding fails.

  Args:
    path: a video file.

  Returns:
    `(meta, frames)`: the `VideoMeta` (as `probe`) and an iterator of `(image, time)`, `image`
    uint8 `[H, W, 3]` RGB as displayed, `time` seconds since the first frame. The file stays open
    until the iterator is exhausted or closed (`frames.close()`).

  Raises:
    FileNotFoundError: no such file.
    DecodeError: not a readable video (when opening; a corrupt frame later ends the stream).

  Example:
    >>> meta, frames = stream_video("long.mp4")
    >>> for image, time in frames:
    ...   print(time, image.shape)
  """
  frames = _stream(path)
  return next(frames), frames


def _decode_grid(
  path: str,
  container,
  stream,
  targets: np.ndarray,
  fps: float,
  start: float,
  seek: bool,
  num_frames: int,
  sws_threads: int,
  size: Callable[[int, int], tuple[int, int]] | None = None,
) -> dict[int, np.ndarray]:
  """Decodes the frames on the nominal grid at the sorted unique indices `targets` (scaled to
  `size(H, W)` of the displayed size, when given). On a decoder with one thread, unreferenced
  frames a later frame replaces before the first target are skipped (`_timed`'s `shown_by`)."""
  tol = 0.25 / fps
  out: dict[int, np.ndarray] = {}
  scaled = None
  prev = prev_array = None
  prev_time = 0.0
  rotation = None
  j = 0
  seeked = False
  if seek and targets[0] >= _SEEK_MIN_FRAMES:
    # Aim a little early: some demuxers land on the keyframe after a timestamp that is exact.
    offset = int((start + (targets[0] - 0.5) / fps) / float(stream.time_base))
    container.seek(offset, stream=stream, backward=True, any_frame=False)
    seeked = True
  # sws_threads 1: read_frames(threaded=False), whose decoder has one thread too, so a change of
  # skip_frame applies from the next packet on.
  shown_by = start + targets[0] / fps + tol if sws_threads == 1 else None
  timed = _timed(path, container, stream, fps, start, keep_truncated=False, shown_by=shown_by)
  for frame, t in timed:
    if rotation is None:
      rotation = _rotation(stream, frame)
      if size is not None:
        scaled = tuple(int(n) for n in size(*_displayed_size(frame, rotation)))
    while j < len(targets) and t > targets[j] / fps + tol:
      if prev is None:
        if seeked:  # Landed after the target: the container's index lied; caller decodes from 0.
          raise _Overshoot()
        prev = frame
      if prev_array is None:
        prev_array = _to_array(prev, rotation, sws_threads, scaled)
      out[int(targets[j])] = prev_array
      j += 1
    if j == len(targets):
      break
    prev, prev_array, prev_time = frame, None, t
  if prev is None:
    raise DecodeError(path, "empty", "no decodable frame")
  if j < len(targets):  # Past the end of the stream (header over-estimated): repeat the last frame.
    decoded = int(round(prev_time * fps)) + 1
    if is_partial(decoded, num_frames):
      raise DecodeError(
        path,
        "partial",
        f"decoding stops after {decoded} of the {num_frames} frames its header lists",
      )
    array = prev_array if prev_array is not None else _to_array(prev, rotation, sws_threads, scaled)
    for k in targets[j:]:
      out[int(k)] = array
  return out


class _Overshoot(Exception):
  pass


# TensorFlow takes a numpy array a tf.numpy_function returns without
# copying only when its data start on this boundary (Eigen's widest alignment); numpy's large
# allocations (glibc malloc) usually start 16 bytes past it, so each clip was copied once more
# on its way in (1.7 ms against 0.4 for an aligned 16x240x320x3 clip through tf.numpy_function).
_TF_ALIGNMENT = 64


def aligned_empty(shape: Sequence[int], dtype=np.uint8) -> np.ndarray:
  """An uninitialised C-contiguous array whose data start on a 64-byte boundary.

  TensorFlow wraps such an array without copying it (a clip of 16 frames of 320x240 is 3.7 MB).

  Args:
    shape: the array's shape.
    dtype: its dtype.

  Returns:
    `np.ndarray` of `shape` and `dtype` (a view of a slightly larger buffer).

  Example:
    >>> aligned_empty((16, 240, 320, 3)).ctypes.data % 64
    0
  """
  nbytes = math.prod(shape) * np.dtype(dtype).itemsize
  raw = np.empty(nbytes + _TF_ALIGNMENT, np.uint8)
  start = -raw.ctypes.data % _TF_ALIGNMENT
  return raw[start : start + nbytes].view(dtype).reshape(shape)


def read_frames(
  path: str,
  indices: Sequence[int] | np.ndarray | Callable[[VideoMeta], np.ndarray],
  *,
  seek: bool = True,
  threaded: bool = True,
  columns: Callable[[int, int], int] | None = None,
  size: Callable[[int, int], tuple[int, int]] | None = None,
) -> np.ndarray:
  """Decodes the frames at `indices` on the nominal grid (see the module docstring).

  Args:
    path: a video file.
    indices: frame indices (any order, repeats allowed), or a function of the `VideoMeta` that
      returns them (so the clip can be placed once the length is known, in one open of the file;
      no frame is decoded before it is called, so that `VideoMeta` has the stored size and only
      an old `rotate` tag's rotation, not the display matrix's). Indices past the end give the
      last frame.
    seek: allow seeking to the keyframe before the first index.
    threaded: decode and convert with threads (right for one long read); False keeps the work on
      the calling thread, for short clips read side by side (tf.data's parallel calls), where
      threads cost more CPU than they save. The frames are the same either way.
    columns: a function of the displayed `(H, W)` giving how many columns, from the left, to
      keep (e.g. those a crop window reads: `crop_window.columns_read`); default all.
    size: a function of the displayed `(H, W)` giving the `(height, width)` to scale every frame
      to, with swscale's antialiased bilinear filter while converting it (`scale_rgb`'s pixels);
      default unscaled. Not with `columns`.

  Returns:
    uint8 `[len(indices), H, W, 3]` (`W` = `columns(H, W)`, `(H, W)` = `size(H, W)` when
    given), in one 64-byte-aligned buffer.

  Raises:
    FileNotFoundError: no such file.
    DecodeError: not a video, corrupt, partial (an index past where a truncated file stops), or
      no decodable frame.

  Example:
    >>> read_frames("clip.mp4", lambda meta: np.arange(meta.num_frames - 8, meta.num_frames))
  """
  if columns is not None and size is not None:
    raise ValueError("read_frames takes columns or size, not both.")
  container, stream = _open(path, "AUTO" if threaded else "NONE")
  sws_threads = 0 if threaded else 1
  try:
    fps, num_frames, duration, start = _stream_meta(container, stream)
    if num_frames <= 0:
      raise DecodeError(path, "empty", "zero frames")
    if callable(indices):
      meta = VideoMeta(
        path,
        fps,
        num_frames,
        duration,
        stream.height,
        stream.width,
        _rotation(stream),
        stream.codec_context.name,
      )
      indices = indices(meta)
    indices = np.asarray(indices, np.int64).reshape(-1)
    if indices.size == 0:
      raise ValueError(f"read_frames({path}) needs at least one index.")
    if indices.min() < 0:
      raise ValueError(f"Negative frame index for {path} in {indices}.")
    targets = np.unique(indices)
    try:
      try:
        grid = _decode_grid(
          path, container, stream, targets, fps, start, seek, num_frames, sws_threads, size
        )
      except _Overshoot:
        container.seek(0, stream=stream, backward=True, any_frame=False)
        grid = _decode_grid(
          path, container, stream, targets, fps, start, False, num_frames, sws_threads, size
        )
    except av.FFmpegError as e:
      raise DecodeError(path, "corrupt", str(e)) from None
    first = grid[int(indices[0])]
    height, width = first.shape[:2]
    kept = width if columns is None else max(1, min(width, int(columns(height, width))))
    frames = aligned_empty((len(indices), height, kept, 3), first.dtype)
    for i, k in enumerate(indices):  # Into one buffer TensorFlow can take without copying.
      frames[i] = grid[int(k)][:, :kept]
    return frames
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
    DecodeError: not a video, corrupt, partial (stops well short of its header's frame count), or
      no decodable frame.

  Example:
    >>> video = read_video("clip.webm"); video.frames.shape
    (48, 64, 80, 3)
  """
  meta, stream = stream_video(path)
  fps = meta.fps
  decoded, times = [], []
  with contextlib.closing(stream):
    for image, time in stream:
      if max_frames and time >= max_frames / fps:  # Past the last grid time wanted.
        break
      decoded.append(image)
      times.append(time)
  times = np.asarray(times)
  span = max(len(decoded), int(round((times[-1] + 1.0 / fps) * fps)))
  if (not max_frames or span < max_frames) and is_partial(span, meta.num_frames):
    raise DecodeError(
      path,
      "partial",
      f"decoding stops after {span} of the {meta.num_frames} frames its header lists",
    )
  if abs(span - len(decoded)) <= 1 and np.all(
    np.abs(times - np.arange(len(times)) / fps) < 0.5 / fps
  ):
    frames = np.stack(decoded)  # Constant rate: the decoded frames are the grid.
  else:
    # Last frame not later than each grid time (decoded frames are in presentation order).
    grid = np.arange(span) / fps
    pick = np.clip(np.searchsorted(times, grid + 0.25 / fps, side="right") - 1, 0, len(decoded) - 1)
    frames = np.stack([decoded[i] for i in pick])
  if max_frames:
    frames = frames[:max_frames]
  return Video(frames, fps)
