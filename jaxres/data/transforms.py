"""Clip sampling and spatial transforms: tf.data stages (plus the numpy sampler the raw decoder uses).

Clip frames are indices on a video's nominal frame grid (see `jaxres.data.video`): `num_frames`
frames `step` apart, `step = frame_stride`, or `fps / target_fps` when a target rate is set.
Training clips start at a uniformly random frame; evaluation takes `num_clips` clips with uniformly
spaced starts from the first to the last possible one. A video shorter than a clip loops (indices
modulo its length); whether it is used at all is the caller's `short_video` policy.

Randomness is stateless: every op takes a `[2]` int seed (one per element, derived from the run
seed and the element's position), so the same seed gives the same clips in any thread order.

Example:
  >>> idx = train_clip_indices(tf.constant(100), num_frames=16, step=2.0, seed=[0, 7])
  >>> video = normalize(random_crop(resize_short_side(frames, 128), 112, seed), mean, std)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from jaxres.data.tfhost import tf


def clip_span(num_frames: int, step: float) -> float:
  """Frames of video a clip covers: `(num_frames - 1) * step + 1`."""
  return (num_frames - 1) * step + 1


def clip_step(fps, frame_stride: int, target_fps: float):
  """Grid frames between clip frames: `frame_stride`, or `fps / target_fps` when `target_fps > 0`.

  Works on Python floats, numpy and tf values.

  Example:
    >>> clip_step(30.0, 1, 15.0)
    2.0
  """
  if target_fps and target_fps > 0:
    return fps / target_fps
  return float(frame_stride) if not isinstance(fps, tf.Tensor) else tf.cast(frame_stride, fps.dtype)


def clip_indices_np(length: int, num_frames: int, step: float, start: float) -> np.ndarray:
  """Frame indices of one clip starting at `start` (looped when past the end).

  Args:
    length: frames in the video.
    num_frames: frames in the clip.
    step: grid frames between clip frames.
    start: first frame.

  Returns:
    int64 `[num_frames]`.

  Example:
    >>> clip_indices_np(10, 4, 3.0, 2)
    array([2, 5, 8, 1])
  """
  idx = np.floor(start + np.arange(num_frames) * step + 1e-6).astype(np.int64)
  return idx % max(length, 1)


def eval_starts_np(length: int, num_frames: int, step: float, num_clips: int) -> np.ndarray:
  """Uniformly spaced clip starts from 0 to the last start that fits (all 0 for short videos).

  Example:
    >>> eval_starts_np(100, 16, 1.0, 3)
    array([ 0., 42., 84.])
  """
  last = max(length - clip_span(num_frames, step), 0.0)
  return np.round(np.linspace(0.0, last, num_clips))


def train_start_np(length: int, num_frames: int, step: float, rng: np.random.Generator) -> int:
  """A uniformly random clip start in `[0, length - span]` (0 for short videos)."""
  last = int(np.floor(max(length - clip_span(num_frames, step), 0.0) + 1e-6))
  return int(rng.integers(0, last + 1))


def _tf_indices(length, num_frames: int, step, start):
  step = tf.cast(step, tf.float64)
  k = tf.range(num_frames, dtype=tf.float64)
  idx = tf.cast(tf.floor(tf.cast(start, tf.float64) + k * step + 1e-6), tf.int64)
  return idx % tf.maximum(tf.cast(length, tf.int64), 1)


def train_clip_indices(length, num_frames: int, step, seed) -> tf.Tensor:
  """Indices of a random training clip (the tf twin of `train_start_np` + `clip_indices_np`).

  Args:
    length: frames in the video (scalar tensor).
    num_frames: frames in the clip.
    step: grid frames between clip frames (scalar).
    seed: `[2]` int stateless seed.

  Returns:
    int64 `[num_frames]`.

  Example:
    >>> train_clip_indices(tf.constant(50), 8, 2.0, [1, 2])
  """
  span = (num_frames - 1) * tf.cast(step, tf.float64) + 1.0
  last = tf.cast(tf.floor(tf.maximum(tf.cast(length, tf.float64) - span, 0.0) + 1e-6), tf.int64)
  start = tf.random.stateless_uniform([], seed, minval=0, maxval=last + 1, dtype=tf.int64)
  return _tf_indices(length, num_frames, step, start)


def eval_clip_indices(length, num_frames: int, step, num_clips: int) -> tf.Tensor:
  """Indices of `num_clips` uniformly spaced clips: int64 `[num_clips, num_frames]`.

  Example:
    >>> eval_clip_indices(tf.constant(100), 16, 1.0, 3)[:, 0]
    <tf.Tensor: ... numpy=array([ 0, 42, 84])>
  """
  span = (num_frames - 1) * tf.cast(step, tf.float64) + 1.0
  last = tf.maximum(tf.cast(length, tf.float64) - span, 0.0)
  starts = tf.round(tf.linspace(tf.constant(0.0, tf.float64), last, num_clips))
  idx = tf.map_fn(
    lambda s: _tf_indices(length, num_frames, step, s), starts, fn_output_signature=tf.int64
  )
  return tf.ensure_shape(idx, [num_clips, num_frames])


def decode_frames(encoded: tf.Tensor, indices: tf.Tensor, image_format: str = "jpeg") -> tf.Tensor:
  """Decodes only the encoded frames a clip uses.

  Args:
    encoded: tf.string `[N]`, one encoded image per frame.
    indices: int `[T]` frame indices.
    image_format: `"jpeg"` (fastest) or `"any"` (JPEG/PNG/...).

  Returns:
    uint8 `[T, H, W, 3]`.

  Example:
    >>> decode_frames(record["frames"], train_clip_indices(record["num_frames"], 16, 1.0, seed))
  """
  picked = tf.gather(encoded, indices)
  if image_format == "jpeg":
    fn = lambda s: tf.io.decode_jpeg(s, channels=3, dct_method="INTEGER_FAST")
  else:
    fn = lambda s: tf.io.decode_image(s, channels=3, expand_animations=False)
  return tf.ensure_shape(_map_frames(fn, picked), [None, None, None, 3])


def decode_random_crop_jpeg(encoded: tf.Tensor, indices: tf.Tensor, size: int, seed) -> tf.Tensor:
  """Decodes only a random `size x size` window (the same in every frame) of a clip's JPEGs.

  The same distribution of windows as `random_crop(decode_frames(...), size, seed)`, for frames
  already at their training size, at a fraction of the cost: libjpeg skips what is outside.

  Args:
    encoded: tf.string `[N]` JPEG frames (all the same size, at least `size` on each side).
    indices: int `[T]` frame indices.
    size: crop side.
    seed: `[2]` int stateless seed.

  Returns:
    uint8 `[T, size, size, 3]`.

  Example:
    >>> decode_random_crop_jpeg(record["frames"], idx, 112, seed)
  """
  shape = tf.io.extract_jpeg_shape(encoded[0])
  offset = tf.random.stateless_uniform([2], seed, minval=0, maxval=tf.int32.max, dtype=tf.int32)
  y = offset[0] % (shape[0] - size + 1)
  x = offset[1] % (shape[1] - size + 1)
  window = tf.stack([y, x, size, size])
  fn = lambda s: tf.io.decode_and_crop_jpeg(s, window, channels=3, dct_method="INTEGER_FAST")
  return tf.ensure_shape(_map_frames(fn, tf.gather(encoded, indices)), [None, size, size, 3])


def _map_frames(fn, encoded: tf.Tensor) -> tf.Tensor:
  # A clip's length is static: unrolled, the decodes run in parallel and skip map_fn's loop.
  if encoded.shape[0] is not None:
    return tf.stack([fn(encoded[i]) for i in range(encoded.shape[0])])
  return tf.map_fn(fn, encoded, fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))


def resize_short_side(video: tf.Tensor, size) -> tf.Tensor:
  """Resizes `[..., H, W, C]` so the shorter side is `size` (bilinear, antialiased); float32 out.

  Frames whose short side already is `size` are only cast.

  Example:
    >>> resize_short_side(tf.zeros([8, 240, 320, 3], tf.uint8), 128).shape
    TensorShape([8, 128, 171, 3])
  """
  video = tf.convert_to_tensor(video)
  shape = tf.shape(video)
  h, w = tf.cast(shape[-3], tf.float32), tf.cast(shape[-2], tf.float32)
  size_f = tf.cast(size, tf.float32)
  scale = size_f / tf.minimum(h, w)
  new_h = tf.cast(tf.round(h * scale), tf.int32)
  new_w = tf.cast(tf.round(w * scale), tf.int32)
  as_float = tf.cast(video, tf.float32)
  return tf.cond(
    tf.logical_and(tf.equal(new_h, shape[-3]), tf.equal(new_w, shape[-2])),
    lambda: as_float,
    lambda: tf.image.resize(as_float, tf.stack([new_h, new_w]), "bilinear", antialias=True),
  )


def random_crop(video: tf.Tensor, size: int, seed) -> tf.Tensor:
  """The same random `size x size` window from every frame of `[T, H, W, C]`.

  Example:
    >>> random_crop(video, 112, [0, 1]).shape[1:3]
    TensorShape([112, 112])
  """
  shape = tf.shape(video)
  return tf.image.stateless_random_crop(video, tf.stack([shape[0], size, size, shape[3]]), seed)


def spatial_crops(video: tf.Tensor, size: int, num_crops: int) -> tf.Tensor:
  """`num_crops` (1: centre; 3: start, centre, end of the long side) crops: `[num_crops, T, s, s, C]`.

  Example:
    >>> spatial_crops(tf.zeros([8, 128, 171, 3]), 112, 3).shape
    TensorShape([3, 8, 112, 112, 3])
  """
  shape = tf.shape(video)
  offsets = crop_offsets(shape[1], shape[2], size, num_crops)
  return tf.stack([video[:, y : y + size, x : x + size, :] for y, x in offsets])


def crop_offsets(h, w, size: int, num_crops: int) -> list:
  """Top-left corners `[(y, x)]` of `spatial_crops`' crops of an `h x w` frame."""
  cy, cx = (h - size) // 2, (w - size) // 2
  if num_crops == 1:
    return [(cy, cx)]
  if num_crops != 3:
    raise ValueError(f"num_crops must be 1 or 3, got {num_crops}.")
  offsets = tf.cond(
    w >= h,
    lambda: tf.stack([[cy, 0], [cy, cx], [cy, w - size]]),
    lambda: tf.stack([[0, cx], [cy, cx], [h - size, cx]]),
  )
  return [(offsets[i, 0], offsets[i, 1]) for i in range(3)]


def _check_lr_fits(lr: tf.Tensor, lr_size: int):
  shape = tf.shape(lr)
  return tf.debugging.assert_greater_equal(
    tf.minimum(shape[-3], shape[-2]),
    lr_size,
    message=f"LR frames are smaller than the LR crop of {lr_size} pixels (data.crop_size / "
    "data.lr_scale); lower data.crop_size",
  )


def paired_random_crop(hr: tf.Tensor, lr: tf.Tensor, size: int, scale: int, seed):
  """The same random window of HR `[T, H, W, C]` (`size` square) and LR `[T, H/s, W/s, C]`
  (`size / scale` square): the HR corner is `scale` times the LR one, so the pair stays aligned.

  Example:
    >>> hr_crop, lr_crop = paired_random_crop(hr, lr, 256, 4, [0, 1])   # 256^2 and 64^2
  """
  lr_size = size // scale
  with tf.control_dependencies([_check_lr_fits(lr, lr_size)]):
    shape = tf.shape(lr)
  offset = tf.random.stateless_uniform([2], seed, minval=0, maxval=tf.int32.max, dtype=tf.int32)
  y = offset[0] % (shape[1] - lr_size + 1)
  x = offset[1] % (shape[2] - lr_size + 1)
  return (
    hr[:, y * scale : y * scale + size, x * scale : x * scale + size],
    lr[:, y : y + lr_size, x : x + lr_size],
  )


def paired_crops(hr: tf.Tensor, lr: tf.Tensor, size: int, scale: int, num_crops: int):
  """`spatial_crops` of an aligned HR/LR pair: `([n, T, size, size, C], [n, T, size/s, size/s, C])`,
  the LR windows placed as `spatial_crops` places them and the HR ones at `scale` times their
  corners.

  Example:
    >>> hr_views, lr_views = paired_crops(hr, lr, 256, 4, 1)
  """
  lr_size = size // scale
  with tf.control_dependencies([_check_lr_fits(lr, lr_size)]):
    shape = tf.shape(lr)
  offsets = crop_offsets(shape[1], shape[2], lr_size, num_crops)
  return (
    tf.stack(
      [hr[:, y * scale : y * scale + size, x * scale : x * scale + size] for y, x in offsets]
    ),
    tf.stack([lr[:, y : y + lr_size, x : x + lr_size] for y, x in offsets]),
  )


def random_flip(video: tf.Tensor, seed) -> tf.Tensor:
  """Mirrors all frames of `[T, H, W, C]` left-right with probability 1/2."""
  flip = tf.random.stateless_uniform([], seed) < 0.5
  return tf.cond(flip, lambda: tf.reverse(video, axis=[-2]), lambda: video)


def random_vflip_transpose(video: tf.Tensor, seed) -> tf.Tensor:
  """Flips `[T, S, S, C]` upside down, then swaps its H and W axes, each with probability 1/2
  (with `random_flip`: BasicSR's `augment(hflip=True, rotation=True)`, all 8 square symmetries).

  Example:
    >>> random_vflip_transpose(tf.zeros([8, 64, 64, 3]), [0, 1]).shape
    TensorShape([8, 64, 64, 3])
  """
  s_flip, s_transpose = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  flip = tf.random.stateless_uniform([], s_flip) < 0.5
  transpose = tf.random.stateless_uniform([], s_transpose) < 0.5
  video = tf.cond(flip, lambda: tf.reverse(video, axis=[-3]), lambda: video)
  return tf.cond(transpose, lambda: tf.transpose(video, [0, 2, 1, 3]), lambda: video)


def scale_jitter_size(base: int, jitter: Sequence[float], seed) -> tf.Tensor:
  """A random short side `round(base * u)`, `u ~ U[jitter[0], jitter[1]]` (int32 scalar)."""
  lo, hi = float(jitter[0]), float(jitter[1])
  if lo == hi:
    return tf.constant(int(round(base * lo)), tf.int32)
  u = tf.random.stateless_uniform([], seed, minval=lo, maxval=hi)
  return tf.cast(tf.round(base * u), tf.int32)


def normalize(video: tf.Tensor, mean: Sequence[float], std: Sequence[float]) -> tf.Tensor:
  """`(pixels / 255 - mean) / std` per channel, float32.

  Example:
    >>> normalize(tf.fill([1, 1, 1, 3], 255.0), (0.5,) * 3, (0.5,) * 3)   # -> 1.0
  """
  video = tf.convert_to_tensor(video)
  scale = np.array([1.0 / (255.0 * s) for s in std], np.float32)
  shift = np.array([m / s for m, s in zip(mean, std)], np.float32)
  width = video.shape[-2]
  if width is None or video.shape.rank < 2:
    return tf.cast(video, tf.float32) * scale - shift
  # Broadcasting a 3-vector over the channel axis is slow on CPU; one over whole rows is fast.
  rows = tf.reshape(tf.cast(video, tf.float32), [-1, width * 3])
  rows = tf.nn.bias_add(rows * np.tile(scale, width), -np.tile(shift, width))
  return tf.reshape(rows, tf.shape(video))
