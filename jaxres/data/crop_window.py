"""A random crop of a resized clip, computed only where the crop needs it, bit for bit the same.

Training resizes every frame so its short side is `size` (bilinear, antialiased:
`transforms.resize_short_side`) and then keeps a random `crop x crop` window
(`transforms.random_crop`). On raw 320x240 videos that resize was the largest cost of a clip
(about half of it): TensorFlow's `ScaleAndTranslate` kernel resizes rows in one vectorised pass
and columns in a second, scalar pass over 3 channels, for the whole frame. `resized_random_crop`
gives the same numbers with less work:

- it draws the window exactly as `tf.image.stateless_random_crop` does (same seed, same offsets);
- it runs the row pass alone (`ScaleAndTranslate` on `[T, H, 1, W*3]`: a width of one is an exact
  identity) and only for the rows up to the window's last one, then the column pass the same way
  on the transposed rows, so both are the fast contiguous kind, and only up to the window's last
  column. The row/column spans and weights depend only on the output index, the scale and the
  input size, so the outputs kept are those of the full resize, and each is summed in the same
  order (rows first, taps in order): the result is bit-identical (tests/test_data_pipeline.py);
- the columns right of the last one the window reads (`columns_read`, from the kernel's support)
  need not be there at all: the raw decoder keeps only the others when it fills the clip's buffer
  (`video.read_frames(columns=...)`, `full_size` here), which shortens both passes by about a
  sixth on 320x240 frames cropped to 112 of 171 columns; the kernel's spans of the kept outputs
  end before that edge, so nothing changes.

Example:
  >>> crop = resized_random_crop(frames_uint8, 128, 112, seed)   # float32 [T, 112, 112, 3]
  >>> same = transforms.random_crop(transforms.resize_short_side(frames_uint8, 128), 112, seed)
"""

from __future__ import annotations

import math

import numpy as np

from jaxres.data.tfhost import tf

# Columns kept past the last one the window reads, by `columns_read`'s closed form (which ignores
# the float rounding of the kernel's own sample positions; a margin of 0 already passes the tests).
_MARGIN = 2


def window_draws(seed) -> tf.Tensor:
  """The random int32 `[4]` from which `resized_random_crop` takes its window (as
  `tf.image.stateless_random_crop` does: offsets are these modulo the room left)."""
  return tf.random.stateless_uniform([4], seed=seed, maxval=tf.int32.max, dtype=tf.int32)


def window(height: int, width: int, size: int, crop: int, draws):
  """Where `resized_random_crop` puts its window, in numpy: the resized frame's size and the
  window's top-left corner, computed as the tf ops compute them (float32 sizes, offsets the draws
  modulo the room left).

  Args:
    height: frame height.
    width: frame width.
    size: the short side after resizing.
    crop: the window's side.
    draws: `window_draws(seed)` as numpy.

  Returns:
    `(new_h, new_w, y0, x0)`, or None where the crop does not fit the resized frame.

  Example:
    >>> window(240, 320, 128, 112, np.array([0, 5, 30, 0]))
    (128, 171, 5, 30)
  """
  h, w = np.float32(height), np.float32(width)
  scale = np.float32(size) / min(h, w)
  new_h, new_w = int(np.round(h * scale)), int(np.round(w * scale))
  if new_h < crop or new_w < crop:
    return None
  return new_h, new_w, int(draws[1]) % (new_h - crop + 1), int(draws[2]) % (new_w - crop + 1)


def columns_read(height: int, width: int, size: int, crop: int, draws) -> int:
  """How many columns, from the left, of `height x width` frames `resized_random_crop` reads
  for the window of `draws = window_draws(seed)`: the decoder may drop the others.

  The sizes and the window are computed as the tf ops compute them (float32), the columns read
  from the antialiased triangle kernel's support, plus a margin; dropping columns past them
  changes no kept output (the kernel's spans of those outputs end before the input's edge).

  Args:
    height: frame height.
    width: frame width.
    size: the short side after resizing.
    crop: the window's side.
    draws: `window_draws(seed)` as numpy.

  Returns:
    int in `[1, width]` (`width` where the crop does not fit: the tf side then raises).

  Example:
    >>> columns_read(240, 320, 128, 112, np.array([0, 0, 30, 0]))   # x0 = 30 of 0..59
    270
  """
  placed = window(height, width, size, crop, draws)
  if placed is None:
    return width
  new_h, new_w, _, x0 = placed
  if new_h == height and new_w == width:  # only cut, not resized
    return x0 + crop
  scale_w = float(np.float32(new_w) / np.float32(width))
  support = max(1.0 / scale_w, 1.0)  # radius 1, widened by 1 / scale when shrinking
  last_sample = (x0 + crop - 0.5) / scale_w  # centre of the window's last column, in the input
  return min(width, math.ceil(last_sample + support + 0.5) + _MARGIN)


def _resize_rows(images, out_rows, scale):
  """`[B, H, W, C]` -> `[B, out_rows, W, C]` float32: the first `out_rows` rows of TensorFlow's
  antialiased triangle (bilinear) resize of dimension 1 by `scale`, the other dimensions kept."""
  shape = tf.shape(images)
  b, h, w, c = shape[0], shape[1], shape[2], shape[3]
  out = tf.raw_ops.ScaleAndTranslate(
    images=tf.reshape(images, tf.stack([b, h, 1, w * c])),
    size=tf.stack([out_rows, 1]),
    scale=tf.stack([scale, tf.constant(1.0)]),
    translation=tf.zeros([2]),
    kernel_type="triangle",
    antialias=True,
  )
  return tf.reshape(out, tf.stack([b, out_rows, w, c]))


def resized_random_crop(frames, size, crop: int, seed, full_size=None):
  """`transforms.random_crop(transforms.resize_short_side(frames, size), crop, seed)`, bit for bit,
  computing only the rows and columns the window needs.

  Args:
    frames: `[T, H, W, C]` (uint8 or float32), or only their first `columns_read(...)` columns.
    size: short side after resizing (int scalar, may be a tensor).
    crop: side of the square window.
    seed: `[2]` int stateless seed, as `random_crop`'s.
    full_size: `(H, W)` of the whole frames when `frames` holds only their first columns
      (default: `frames`' own).

  Returns:
    float32 `[T, crop, crop, C]`.

  Example:
    >>> resized_random_crop(tf.zeros([16, 240, 320, 3], tf.uint8), 128, 112, [0, 1]).shape
    TensorShape([16, 112, 112, 3])
  """
  frames = tf.convert_to_tensor(frames)
  shape = tf.shape(frames)
  t, h, w, c = shape[0], shape[1], shape[2], shape[3]
  columns_given = w
  if full_size is not None:
    h, w = tf.unstack(tf.cast(full_size, tf.int32))
  # Sizes as transforms.resize_short_side computes them; scales as tf.image.resize does.
  h_f, w_f = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
  scale = tf.cast(size, tf.float32) / tf.minimum(h_f, w_f)
  new_h = tf.cast(tf.round(h_f * scale), tf.int32)
  new_w = tf.cast(tf.round(w_f * scale), tf.int32)
  # The window as tf.image.stateless_random_crop draws it on the resized [T, new_h, new_w, C].
  resized_shape = tf.stack([t, new_h, new_w, c])
  limit = resized_shape - tf.stack([t, crop, crop, c]) + 1
  with tf.control_dependencies(
    [tf.debugging.assert_non_negative(limit - 1, message="crop larger than the resized frames")]
  ):
    offset = window_draws(seed) % limit
  y0, x0 = offset[1], offset[2]

  def resized():
    rows = _resize_rows(frames, y0 + crop, tf.cast(new_h, tf.float32) / h_f)[:, y0:]
    # [T, crop, W, C] -> [1, W, T, crop * C]: columns become rows.
    columns = tf.reshape(
      tf.transpose(rows, [2, 0, 1, 3]), tf.stack([1, columns_given, t, crop * c])
    )
    window = _resize_rows(columns, x0 + crop, tf.cast(new_w, tf.float32) / w_f)[0, x0:]
    window = tf.reshape(window, tf.stack([crop, t, crop, c]))
    return tf.transpose(window, [1, 2, 0, 3])  # [crop, T, crop, C] -> [T, crop, crop, C]

  def kept():  # resize_short_side only casts frames already at the size.
    return tf.cast(frames[:, y0 : y0 + crop, x0 : x0 + crop], tf.float32)

  same = tf.logical_and(tf.equal(new_h, h), tf.equal(new_w, w))
  out = tf.cond(same, kept, resized)
  return tf.ensure_shape(out, [None, crop, crop, frames.shape[-1]])
