"""Clip sampling (numpy and tf twins agree), target fps, loops, crops, resize, flip, normalisation."""

import numpy as np
import pytest

from jaxres.data import transforms
from jaxres.data.tfhost import tf


def test_clip_step_from_stride_or_target_fps():
  assert transforms.clip_step(30.0, 3, 0.0) == 3.0
  assert transforms.clip_step(30.0, 3, 15.0) == 2.0
  assert transforms.clip_step(25.0, 1, 10.0) == 2.5
  np.testing.assert_array_equal(transforms.clip_indices_np(100, 4, 2.5, 10), [10, 12, 15, 17])


@pytest.mark.parametrize(
  "length,num_frames,step,clips",
  [(100, 16, 1.0, 5), (40, 8, 2.5, 3), (10, 8, 2.0, 2), (16, 16, 1.0, 4)],
)
def test_eval_indices_numpy_and_tf_agree(length, num_frames, step, clips):
  starts = transforms.eval_starts_np(length, num_frames, step, clips)
  expected = np.stack([transforms.clip_indices_np(length, num_frames, step, s) for s in starts])
  got = transforms.eval_clip_indices(tf.constant(length, tf.int64), num_frames, step, clips).numpy()
  np.testing.assert_array_equal(got, expected)
  assert got.min() >= 0 and got.max() < length
  assert got[0, 0] == 0
  if length >= transforms.clip_span(num_frames, step):  # Last clip ends at the last frame it can.
    assert got[-1, -1] <= length - 1 and got[-1, 0] == round(
      length - transforms.clip_span(num_frames, step)
    )


def test_short_videos_loop():
  idx = transforms.clip_indices_np(5, 8, 1.0, 0)
  np.testing.assert_array_equal(idx, [0, 1, 2, 3, 4, 0, 1, 2])
  got = transforms.train_clip_indices(tf.constant(5, tf.int64), 8, 1.0, [1, 2]).numpy()
  np.testing.assert_array_equal(got, idx)


def test_train_starts_cover_the_valid_range_and_are_seeded():
  starts = [
    int(transforms.train_clip_indices(tf.constant(20, tf.int64), 8, 2.0, [0, i])[0])
    for i in range(200)
  ]
  assert min(starts) == 0 and max(starts) == 20 - 15  # span = 7 * 2 + 1 = 15
  again = [
    int(transforms.train_clip_indices(tf.constant(20, tf.int64), 8, 2.0, [0, i])[0])
    for i in range(5)
  ]
  assert again == starts[:5]
  rng = np.random.default_rng(0)
  np_starts = {transforms.train_start_np(20, 8, 2.0, rng) for _ in range(300)}
  assert np_starts == set(range(6))


def test_resize_crops_flip_normalize():
  video = tf.constant(np.random.default_rng(0).integers(0, 255, (2, 60, 80, 3)), tf.uint8)
  resized = transforms.resize_short_side(video, 30)
  assert resized.shape == (2, 30, 40, 3) and resized.dtype == tf.float32
  same = transforms.resize_short_side(video, 60)
  np.testing.assert_array_equal(same.numpy(), video.numpy().astype(np.float32))
  crops = transforms.spatial_crops(video, 50, 3).numpy()
  assert crops.shape == (3, 2, 50, 50, 3)
  np.testing.assert_array_equal(crops[0], video.numpy()[:, 5:55, :50])
  np.testing.assert_array_equal(crops[1], video.numpy()[:, 5:55, 15:65])
  np.testing.assert_array_equal(crops[2], video.numpy()[:, 5:55, 30:80])
  tall = tf.transpose(video, [0, 2, 1, 3])
  np.testing.assert_array_equal(
    transforms.spatial_crops(tall, 50, 3).numpy()[2], tall.numpy()[:, 30:80, 5:55]
  )
  flips = {
    bool(np.array_equal(transforms.random_flip(video, [0, i]).numpy(), video.numpy()[:, :, ::-1]))
    for i in range(20)
  }
  assert flips == {True, False}
  crop = transforms.random_crop(video, 40, [3, 4]).numpy()
  assert crop.shape == (2, 40, 40, 3)
  mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
  out = transforms.normalize(video, mean, std).numpy()
  expected = (video.numpy() / 255.0 - np.array(mean)) / np.array(std)
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_jpeg_window_decode_matches_decode_then_crop():
  yy, xx = np.mgrid[:48, :64]
  frames = np.stack(
    [
      np.stack([(xx * 5 + yy * 2 + 9 * t) % 256, (yy * 7) % 256, (xx * yy) % 256], -1)
      for t in range(6)
    ]
  ).astype(np.uint8)
  encoded = tf.stack([tf.io.encode_jpeg(f, quality=95) for f in frames])
  idx = tf.constant([5, 0, 2])
  full = transforms.decode_frames(encoded, idx).numpy().astype(np.float32)
  offsets = set()
  for i in range(6):
    window = transforms.decode_random_crop_jpeg(encoded, idx, 32, [7, i]).numpy()
    assert window.shape == (3, 32, 32, 3)
    # The window is one crop shared by all frames (libjpeg may differ by a level or two at the
    # window's edges, where chroma upsampling sees fewer neighbours).
    errors = {
      (y, x): np.abs(full[:, y : y + 32, x : x + 32] - window).mean()
      for y in range(17)
      for x in range(33)
    }
    best = min(errors, key=errors.get)
    assert errors[best] < 1.0
    offsets.add(best)
  assert len(offsets) > 1  # Different seeds, different windows.
