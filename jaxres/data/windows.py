"""Sliding windows over a long video, decoded in one forward pass with memory flat in its length.

A video is cut into windows of `span` frames every `stride` frames on its nominal frame grid
(`jaxres.data.video`: a variable-rate video is resampled as `read_video` resamples it), so a
video of N frames has `floor((N - span) / stride) + 1` windows (one, looped, when N < span; frames
after the last whole window are not classified). Each window is treated as a whole video of its
own by the eval views (`jaxres.data.views.eval_views`): `eval_clips` uniformly spaced clips of
`num_frames` frames `frame_stride` apart x `eval_crops` crops, normalised. By default a window is
exactly one clip of the data config (`span = (num_frames - 1) * step + 1`) and the stride is the
window, so windows tile the video.

Frames are decoded once, in order; only the frames a pending window will use are kept, and a
frame is dropped as soon as no later window needs it. So at most about one window of frames is
held, however long the video (`Window.held` records how many).

Example:
  >>> cut = Windowing(window=2.0, stride=1.0)
  >>> meta, windows = stream_windows("long.mp4", data_config, cut)
  >>> for w in windows:
  ...   print(w.start_time, w.end_time, w.views.shape)   # views: [clips * crops, T, S, S, 3]
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Iterable, Iterator

import ml_collections
import numpy as np

from jaxres.data import transforms, video, views
from jaxres.data.tfhost import tf

__all__ = [
  "Windowing",
  "Window",
  "stream_windows",
  "window_batches",
  "grid_frames",
  "window_offsets",
]


@dataclasses.dataclass(frozen=True)
class Windowing:
  """How to cut a video into windows: in seconds or in frames (frames win where both are set).

  Attributes:
    window: seconds per window (None: `window_frames`, else one clip of the data config).
    stride: seconds between window starts (None: `stride_frames`, else the window).
    window_frames: grid frames per window.
    stride_frames: grid frames between window starts.
  """

  window: float | None = None
  stride: float | None = None
  window_frames: int | None = None
  stride_frames: int | None = None

  def __post_init__(self):
    for name in ("window", "stride", "window_frames", "stride_frames"):
      value = getattr(self, name)
      if value is not None and not value > 0:
        raise ValueError(f"--{name.replace('_', '-')} must be positive, got {value}.")

  def frames(self, fps: float, clip_frames: int) -> tuple[int, int]:
    """`(span, stride)` in grid frames for a video of `fps` whose model clip covers `clip_frames`.

    Example:
      >>> Windowing(window=2.0, stride=0.5).frames(fps=30.0, clip_frames=16)
      (60, 15)
    """
    span = self.window_frames or (max(1, round(self.window * fps)) if self.window else clip_frames)
    stride = self.stride_frames or (max(1, round(self.stride * fps)) if self.stride else span)
    return int(span), int(stride)


@dataclasses.dataclass(frozen=True)
class Window:
  """One window of a video, ready for the model.

  Attributes:
    index: the window's number (0, 1, ...).
    start: its first grid frame.
    end: one past its last grid frame.
    start_time: `start / fps`, seconds.
    end_time: `end / fps`, seconds.
    views: float32 `[clips * crops, T, S, S, 3]`, normalised, clip-major (as `predict.video_views`).
    held: decoded frames held in memory when the window was cut.
  """

  index: int
  start: int
  end: int
  start_time: float
  end_time: float
  views: np.ndarray
  held: int


def window_offsets(span: int, data_config: ml_collections.ConfigDict, fps: float) -> np.ndarray:
  """The frames of a `span`-frame window its clips use, as offsets from its start.

  The eval clips of a video of `span` frames (`transforms.eval_starts_np`, looped when the window
  is shorter than a clip).

  Returns:
    int64 `[eval_clips * num_frames]`, clip-major, each in `[0, span)`.

  Example:
    >>> window_offsets(16, data_config, 25.0)   # num_frames 8, frame_stride 2, one clip
    array([ 0,  2,  4,  6,  8, 10, 12, 14])
  """
  c = data_config
  step = transforms.clip_step(fps, c.frame_stride, c.target_fps)
  starts = transforms.eval_starts_np(span, c.num_frames, step, c.eval_clips)
  return np.concatenate([transforms.clip_indices_np(span, c.num_frames, step, s) for s in starts])


def clip_frames(data_config: ml_collections.ConfigDict, fps: float) -> int:
  """Grid frames one clip of `data_config` covers at `fps` (the default window), rounded up."""
  step = transforms.clip_step(fps, data_config.frame_stride, data_config.target_fps)
  return math.ceil(transforms.clip_span(data_config.num_frames, step) - 1e-6)


def grid_frames(decoded: Iterable[tuple[np.ndarray, float]], fps: float) -> Iterator[np.ndarray]:
  """Decoded `(image, time)` frames -> the frames of the nominal grid, streamed.

  Grid frame g is the last decoded frame shown by `g / fps` (a quarter frame of tolerance), the
  first frame before it shows, as `video.read_video` resamples: for a constant-rate video, the
  decoded frames themselves.

  Example:
    >>> meta, decoded = video.stream_video("clip.mp4")
    >>> sum(1 for _ in grid_frames(decoded, meta.fps))
    48
  """
  tol = 0.25 / fps
  previous, g, last_time = None, 0, 0.0
  for image, time in decoded:
    if previous is None:
      previous = image
    while g / fps + tol < time:  # grid frame g comes before this frame: it shows the previous one
      yield previous
      g += 1
    previous, last_time = image, time
  if previous is not None:
    for _ in range(g, max(g + 1, int(round((last_time + 1.0 / fps) * fps)))):
      yield previous


def _views(clips: np.ndarray, data_config: ml_collections.ConfigDict) -> np.ndarray:
  """uint8 `[clips, T, H, W, 3]` -> the normalised eval views, as the pipeline makes them."""
  element = {"clips": tf.constant(clips), "label": 0, "video_id": 0}
  batch = views.normalize_batch(data_config, views.eval_views(data_config, element))
  return np.asarray(batch["video"], np.float32)


def stream_windows(
  path: str, data_config: ml_collections.ConfigDict, windowing: Windowing = Windowing()
) -> tuple[video.VideoMeta, Iterator[Window]]:
  """Opens a video and cuts it into windows as it decodes (see the module notes).

  Args:
    path: a video file.
    data_config: the data config whose eval views each window gets (`num_frames`,
      `frame_stride`, `target_fps`, `eval_clips`, `eval_crops`, `resize`, `crop_size`, `mean`,
      `std`, `short_video`).
    windowing: window and stride.

  Returns:
    `(meta, windows)`: the video's `VideoMeta` and an iterator of `Window`s in order. The file
    stays open until the iterator is exhausted or closed.

  Raises:
    FileNotFoundError: no such file.
    DecodeError: not a readable video (when opening; a corrupt frame later ends the stream), or
      shorter than a window under `short_video="skip"` (when iterating).

  Example:
    >>> meta, windows = stream_windows("long.mp4", run.config.data, Windowing(window_frames=32))
    >>> [w.start for w in windows][:3]
    [0, 32, 64]
  """
  meta, decoded = video.stream_video(path)
  fps = meta.fps
  span, stride = windowing.frames(fps, clip_frames(data_config, fps))
  return meta, _windows(path, meta, decoded, data_config, span, stride)


def _windows(path, meta, decoded, data_config, span: int, stride: int) -> Iterator[Window]:
  fps = meta.fps
  offsets = window_offsets(span, data_config, fps)
  used = set(int(o) for o in offsets)
  kept: dict[int, np.ndarray] = {}  # grid index -> frame, for the windows still to come
  following = 0  # the next window to cut
  n = 0  # grid frames seen
  with contextlib.closing(decoded):
    for g, frame in enumerate(grid_frames(decoded, fps)):
      n = g + 1
      first = max(following, -(-(g - span + 1) // stride))
      if any(g - w * stride in used for w in range(first, g // stride + 1)):
        kept[g] = frame
      if g == following * stride + span - 1:  # window `following` is whole
        start = following * stride
        clips = np.stack([kept[start + int(o)] for o in offsets])
        yield _window(following, start, span, fps, clips, data_config, held=len(kept))
        following += 1
        for i in [i for i in kept if i < following * stride]:
          del kept[i]
  if following == 0 and n:  # shorter than one window: the whole video, its clips looped
    if data_config.short_video == "skip":
      raise video.DecodeError(path, "short", f"{n} frames, a window needs {span}")
    short = window_offsets(n, data_config, fps)
    clips = video.read_frames(path, short)
    yield _window(0, 0, n, fps, clips, data_config, held=len(clips))


def _window(index, start, span, fps, frames, data_config, held) -> Window:
  c = data_config
  clips = frames.reshape((c.eval_clips, c.num_frames) + frames.shape[1:])
  return Window(
    index=index,
    start=start,
    end=start + span,
    start_time=start / fps,
    end_time=(start + span) / fps,
    views=_views(clips, c),
    held=held,
  )


def window_batches(
  windows: Iterable[Window], batch_size: int
) -> Iterator[tuple[list[Window], np.ndarray]]:
  """Groups windows for the model: `batch_size` windows' views a batch, the last padded with zeros.

  Every batch has the same shape, so a jitted model compiles once for a whole folder of videos.

  Args:
    windows: `Window`s (all with views of one shape).
    batch_size: windows per batch.

  Yields:
    `(windows, x)`: up to `batch_size` windows and float32 `[batch_size * views, T, S, S, 3]`,
    their views in order (rows past `len(windows) * views` are padding).

  Example:
    >>> for group, x in window_batches(windows, 4):
    ...   logits = forward(variables, x)[: len(group) * len(group[0].views)]
  """
  if batch_size < 1:
    raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
  group: list[Window] = []
  for window in windows:
    group.append(window)
    if len(group) == batch_size:
      yield group, np.concatenate([w.views for w in group])
      group = []
  if group:
    x = np.concatenate([w.views for w in group])
    pad = np.zeros((batch_size * len(group[0].views) - len(x),) + x.shape[1:], x.dtype)
    yield group, np.concatenate([x, pad])
