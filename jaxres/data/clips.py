"""Clip decoding: a source element -> uint8 clips `[clips, T, H, W, 3]` with its label and id.

Raw videos are decoded in Python (PyAV, through `tf.numpy_function`), seeking to and decoding only
the clip's frames; frame folders decode only the clip's images (`jaxres.data.frames`, with their
paired LR images as `"lr_clips"` when `data.lr_path` is set); prepared/TFDS records decode only
the clip's JPEG/PNG frames with tf ops. Train decodes one clip at a random start (a stateless function of the element's seed), eval
`eval_clips` uniformly spaced clips. Unreadable or (with `short_video="skip"`) short videos are
skipped and counted in a `SkipCounter`. With `data.cache`, raw videos are decoded whole once and
kept in memory (`DecodedVideos`): later clips index the kept frames.
"""

from __future__ import annotations

import collections
import math
import threading

import numpy as np

from jaxres.data import frames as frames_io
from jaxres.data import transforms, video
from jaxres.data.crop_window import columns_read, resized_random_crop, window, window_draws
from jaxres.data.skips import SkipCounter
from jaxres.data.tfhost import tf


def to_uint8(video):
  """`video` as uint8 (rounded and saturated when it is float)."""
  return video if video.dtype == tf.uint8 else tf.saturate_cast(tf.round(video), tf.uint8)


class _ShortVideo(Exception):
  pass


class DecodedVideos:
  """Whole videos decoded onto their frame grid, kept in memory by path (`data.cache = True`).

  Decoding dominates the cost of a clip from a small video (the demo's 16-frame videos: 5-6 ms of
  PyAV per clip against well under 1 ms for the rest), and training draws a clip from every video
  once per epoch. Here the first clip of a video decodes all its frames, with the same function
  (`video.read_frames` with every grid index) and so the same pixels as a clip's own decode, and
  later clips are taken from them: clips are bit-identical with and without the cache. Memory is
  frames x height x width x 3 bytes per video (the demo's 384 training videos: 75 MB), so it is
  meant for small datasets. A video that fails to decode whole is remembered as such and each of
  its clips is read on its own, so a truncated file still gives the clips in its decodable part, as
  without the cache, and is not decoded whole again every epoch.

  Example:
    >>> videos = DecodedVideos()
    >>> clip = videos.read("clip.mp4", lambda meta: np.arange(0, 16, 2))   # decodes all frames
    >>> clip = videos.read("clip.mp4", lambda meta: np.arange(1, 16, 2))   # decodes nothing
  """

  def __init__(self):
    self._videos: dict[str, tuple[video.VideoMeta, np.ndarray] | None] = {}  # None: not whole
    self._locks: dict[str, threading.Lock] = {}  # tf.data's threads decode each video once
    self._locks_lock = threading.Lock()

  def read(self, path: str, pick, columns=None, size=None) -> np.ndarray:
    """`video.read_frames(path, pick, columns=columns, size=size)`, from memory after the first
    call for `path`.

    Args:
      path: a video file.
      pick: a function of the `video.VideoMeta` returning frame indices in `[0, num_frames)`.
      columns: as `video.read_frames`' (None: all).
      size: as `video.read_frames`' (None: unscaled); the kept frames are scaled with
        `video.scale_rgb`, which gives the same pixels.

    Returns:
      uint8 `[len(indices), H, W, 3]`.
    """
    if path not in self._videos:
      with self._locks_lock:
        lock = self._locks.setdefault(path, threading.Lock())
      with lock:
        if path not in self._videos:
          self._videos[path] = self._decode(path)
    kept = self._videos[path]
    if kept is None:  # Not decodable whole: this clip alone, as without the cache.
      return video.read_frames(path, pick, threaded=False, columns=columns, size=size)
    meta, grid = kept
    indices = np.asarray(pick(meta))
    height, width = grid.shape[1:3]
    if size is not None:
      new_h, new_w = (int(n) for n in size(height, width))
      out = video.aligned_empty((len(indices), new_h, new_w, 3), grid.dtype)
      for i, k in enumerate(indices):
        out[i] = video.scale_rgb(grid[int(k)], new_h, new_w)
      return out
    width = width if columns is None else max(1, min(width, int(columns(height, width))))
    # Into an aligned buffer, as read_frames does, so that TensorFlow need not copy the clip.
    out = video.aligned_empty((len(indices), height, width, 3), grid.dtype)
    return np.take(grid[:, :, :width], indices, axis=0, out=out)

  def _decode(self, path: str):
    metas = []

    def every_frame(meta):
      metas.append(meta)
      return np.arange(meta.num_frames)

    try:
      grid = video.read_frames(path, every_frame, threaded=False)
    except video.DecodeError:
      return None
    return metas[0], grid


def raw_decoder(config, split: str, skips: SkipCounter, num_videos: int, fuse_crop: bool = True):
  """tf function (element, seed) -> {"clips": uint8 [clips, T, H, W, 3], "ok", "label", "video_id"}
  (+ "lr_clips" for paired frames), decoding in Python.

  Training clips with `data.resize > 0` come out resized and cropped (`[1, T, crop, crop, 3]`,
  marked `"cropped"`), the same pixels as `views.train_view` would make of the whole frames,
  unless `fuse_crop` is False. With `data.resize_in_decoder`, the decoder's scaler resizes them
  instead (swscale's antialiased bilinear filter, within one level of TensorFlow's in 99% of the
  bytes; `video.scale_rgb`) and only the window is handed on."""
  num_frames, clips = config.num_frames, (config.eval_clips if split == "eval" else 1)
  empty = np.zeros((0, 1, 1, 3), np.uint8)
  failures = collections.Counter()  # Failures since the last success: all bad = a clear error.
  paired = bool(config.lr_path)
  decoded = DecodedVideos() if config.cache and config.source != "frames" else None
  # Training clips are resized and cropped here, computing only the crop (bit-identical to
  # views.train_view doing it; see crop_window), and marked "cropped" for train_view.
  fused_crop = fuse_crop and split == "train" and not paired and config.resize > 0
  # ... or scaled while decoding, the window cut here (video files only).
  scaled_crop = fused_crop and config.resize_in_decoder and config.source != "frames"

  def read_clip(path, pick, columns, size):
    # One thread per clip: tf.data runs clips side by side (see video.read_frames' threaded).
    return video.read_frames(path, pick, threaded=False, columns=columns, size=size)

  def read(path, lr_path, expected, pick, columns, size):
    if config.source != "frames":
      read_video = decoded.read if decoded is not None else read_clip
      return read_video(path, pick, columns, size), empty
    if paired:
      return frames_io.read_paired(
        path, lr_path, pick, scale=config.lr_scale, pattern=config.frame_pattern, expected=expected
      )
    return frames_io.read_frames(path, pick, pattern=config.frame_pattern, expected=expected), empty

  def fn(path, lr_path, expected, seed, size, draws):
    path, lr_path, expected = path.decode(), lr_path.decode(), int(expected)
    rng = np.random.default_rng([int(s) & 0xFFFFFFFF for s in seed])
    shape = []  # (H, W) before dropping the columns the crop window does not read
    corner = []  # the window's (y0, x0) in frames scaled by the decoder

    def columns(height, width):
      shape.extend((height, width))
      return columns_read(height, width, int(size), config.crop_size, draws)

    def scaled_size(height, width):
      placed = window(height, width, int(size), config.crop_size, draws)
      if placed is None:
        raise ValueError(f"a {config.crop_size} crop does not fit {height}x{width} at {size}")
      corner.extend(placed[2:])
      return placed[:2]

    def pick(meta):
      step = transforms.clip_step(meta.fps, config.frame_stride, config.target_fps)
      if meta.num_frames < transforms.clip_span(num_frames, step) and config.short_video == "skip":
        raise _ShortVideo(
          f"{meta.num_frames} frames, a clip needs "
          f"{math.ceil(transforms.clip_span(num_frames, step))}"
        )
      if split == "train":
        starts = [transforms.train_start_np(meta.num_frames, num_frames, step, rng)]
      else:
        starts = transforms.eval_starts_np(meta.num_frames, num_frames, step, clips)
      return np.concatenate(
        [transforms.clip_indices_np(meta.num_frames, num_frames, step, s) for s in starts]
      )

    try:
      if scaled_crop:
        frames, lr = read(path, lr_path, expected, pick, None, scaled_size)
        (y0, x0), crop = corner[:2], config.crop_size
        window_only = video.aligned_empty((len(frames), crop, crop, 3))
        window_only[:] = frames[:, y0 : y0 + crop, x0 : x0 + crop]
        frames = window_only
      else:
        frames, lr = read(path, lr_path, expected, pick, columns if fused_crop else None, None)
      failures.clear()
      full_size = np.array(shape if shape else frames.shape[1:3], np.int32)
      return frames, lr, True, full_size
    except video.DecodeError as e:  # (frames_io.FrameError is one; it may name the LR folder)
      skips.record(path, e.reason, e.detail if e.path == path else f"{e.path}: {e.detail}")
    except _ShortVideo as e:
      skips.record(path, "short", str(e))
    except FileNotFoundError:
      skips.record(path, "missing", "file vanished after listing")
    except Exception as e:  # noqa: BLE001 - one bad file must not stop training.
      skips.record(path, "corrupt", repr(e))
    failures[path] += 1
    if len(failures) >= num_videos and min(failures.values()) >= 2:
      raise skips.nothing_usable(
        num_videos,
        "frame sequences" if config.source == "frames" else "videos",
        config.path or "the demo data",
        "fix or remove them (the reasons say what is wrong), or set data.path to other data.",
      )
    return empty, empty, False, np.zeros(2, np.int32)

  def decode_op(x, seed):
    if fused_crop:
      # The draws views.train_view makes for the short side and the window.
      s_size, s_crop, _, _ = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
      size = transforms.scale_jitter_size(config.resize, config.scale_jitter, s_size)
      draws = window_draws(s_crop)  # The decoder keeps only the columns the window reads.
    else:
      size, draws = tf.constant(0, tf.int32), tf.zeros([4], tf.int32)
    frames, lr, ok, full_size = tf.numpy_function(
      fn,
      [
        x["path"],
        x.get("lr_path", ""),
        x.get("num_frames", tf.constant(0, tf.int64)),
        seed,
        size,
        draws,
      ],
      [tf.uint8, tf.uint8, tf.bool, tf.int32],
    )

    def as_clips(f):
      f = tf.ensure_shape(f, [None, None, None, 3])
      return tf.reshape(f, tf.concat([[clips, -1], tf.shape(f)[1:]], 0))

    out = {
      "clips": as_clips(frames),
      "ok": tf.ensure_shape(ok, []),
      "label": x["label"],
      "video_id": x["video_id"],
    }
    if scaled_crop:
      shape = [1, num_frames, config.crop_size, config.crop_size, 3]
      out["clips"] = tf.cond(
        out["ok"],
        lambda: tf.reshape(frames, shape),
        lambda: tf.zeros(shape, tf.uint8),
      )
      out["cropped"] = True
    elif fused_crop:
      crop = config.crop_size
      full_size = tf.ensure_shape(full_size, [2])
      out["clips"] = tf.cond(
        out["ok"],
        lambda: to_uint8(
          resized_random_crop(out["clips"][0], size, crop, s_crop, full_size=full_size)
        )[None],
        lambda: tf.zeros([1, num_frames, crop, crop, 3], tf.uint8),
      )
      out["cropped"] = True
    if paired:
      out["lr_clips"] = as_clips(lr)
    return out

  return decode_op


def encoded_decoder(config, split: str, image_format: str, paired: bool = False):
  """tf function (record, seed) -> {"clips": uint8 [clips, T, H, W, 3], "label", "video_id"}
  (+ "lr_clips" from the record's `lr_frames` when `paired`)."""
  num_frames = config.num_frames

  fused = (
    not paired
    and split == "train"
    and image_format == "jpeg"
    and config.resize > 0
    and tuple(config.scale_jitter) == (1.0, 1.0)
  )

  def fused_crop(x, idx, seed):
    # Frames stored at the training short side: decode just the crop window (else: resize first).
    _, s_crop, _, _ = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
    shape = tf.io.extract_jpeg_shape(x["frames"][0])
    return tf.cond(
      tf.equal(tf.minimum(shape[0], shape[1]), config.resize),
      lambda: transforms.decode_random_crop_jpeg(x["frames"], idx, config.crop_size, s_crop),
      lambda: to_uint8(
        transforms.random_crop(
          transforms.resize_short_side(transforms.decode_frames(x["frames"], idx), config.resize),
          config.crop_size,
          s_crop,
        )
      ),
    )

  def decode_op(x, seed):
    step = transforms.clip_step(
      tf.cast(x["fps"], tf.float64), config.frame_stride, config.target_fps
    )
    if split == "train":
      idx = transforms.train_clip_indices(x["num_frames"], num_frames, step, seed)[None]
      if fused:
        return {
          "clips": fused_crop(x, idx[0], seed)[None],
          "ok": tf.constant(True),
          "label": x["label"],
          "video_id": x["video_id"],
          "cropped": True,
        }
    else:
      idx = transforms.eval_clip_indices(x["num_frames"], num_frames, step, config.eval_clips)

    def clips_of(encoded):
      frames = transforms.decode_frames(encoded, tf.reshape(idx, [-1]), image_format)
      return tf.reshape(frames, tf.concat([tf.shape(idx), tf.shape(frames)[1:]], 0))

    out = {
      "clips": clips_of(x["frames"]),
      "ok": tf.constant(True),
      "label": x["label"],
      "video_id": x["video_id"],
    }
    if paired:
      out["lr_clips"] = clips_of(x["lr_frames"])
    return out

  return decode_op


def short_filter(config, skips: SkipCounter, num_videos: int):
  """tf predicate on encoded records: False (and counted) for short videos under "skip".

  Raises (in the pipeline) once all `num_videos` of this host's videos were found short: a
  repeated training set would otherwise filter forever without yielding a batch.
  """
  short = set()

  def record(name, n):
    name = name.decode()
    skips.record(name, "short", f"{int(n)} frames")
    short.add(name)
    if len(short) >= num_videos:
      skips.failure = (  # (the line BatchIterator raises in place of tf.data's wrapped error)
        f"All {num_videos} of this host's videos are shorter than a clip "
        f"(e.g. {sorted(short)[:3]}); lower data.num_frames or data.frame_stride, "
        'or set data.short_video = "loop".'
      )
      raise ValueError(skips.failure)
    return False

  def keep(x):
    step = transforms.clip_step(
      tf.cast(x["fps"], tf.float64), config.frame_stride, config.target_fps
    )
    span = (config.num_frames - 1) * tf.cast(step, tf.float64) + 1.0
    long_enough = tf.cast(x["num_frames"], tf.float64) >= span
    # Python runs only for the (rare) short video, to name it in the warning and the counter.
    return tf.cond(
      long_enough,
      lambda: True,
      lambda: tf.numpy_function(record, [x["name"], x["num_frames"]], tf.bool, stateful=True),
    )

  return keep
