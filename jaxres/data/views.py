"""Views: decoded clips -> what a batch holds, the same for every task.

Training: one clip, resized so its short side is `resize` (times a random scale jitter), a random
`crop_size` square, an optional flip (and, with `rotate`, vertical flip and transpose; with
`mirror`, the clip followed by its reverse). Evaluation: `eval_clips` clips x `eval_crops` crops of
every video at the eval short side and crop (`eval_resize`, `eval_crop_size`; 0: training's), each
tagged with its `video_id` and a `mask` of 1 (padding rows get 0). With
`resize = 0` frames keep their own resolution (upsized only where the short side is below
`crop_size`), as super-resolution wants; paired LR frames (`data.lr_path`) are cut in step, their
window `lr_scale` times smaller at `1/lr_scale` of the HR corner, so LR and HR stay aligned.
Views stay uint8 until batched; `normalize_batch` then makes float32
`(pixels / 255 - mean) / std` in one pass over the batch (mean 0, std 1 gives [0, 1]).
"""

from __future__ import annotations

import numpy as np

from jaxres.data import transforms
from jaxres.data.clips import to_uint8
from jaxres.data.tfhost import tf


def eval_sizes(config) -> tuple[int, int]:
  """`(short side, crop)` of eval views: `eval_resize` and `eval_crop_size`, each 0 meaning
  training's `resize` / `crop_size` (a short side of 0: each video's own resolution).

  Example:
    >>> config.resize, config.crop_size, config.eval_resize, config.eval_crop_size = 256, 224, 0, 256
    >>> eval_sizes(config)
    (256, 256)
  """
  return (config.eval_resize or config.resize), (config.eval_crop_size or config.crop_size)


def _short_side(config, frames, jitter_seed, resize: int, crop_size: int):
  """The short side frames are resized to before cropping (jittered in training only)."""
  if resize > 0 and jitter_seed is None:
    return resize
  if resize > 0:
    return transforms.scale_jitter_size(resize, config.scale_jitter, jitter_seed)
  short = tf.minimum(tf.shape(frames)[-3], tf.shape(frames)[-2])
  return tf.maximum(short, crop_size)


def train_view(config, seed, x) -> dict:
  """One training example `{"video": uint8 [T, S, S, 3], "label"}` from a decoded element (paired
  frames add `"lr": uint8 [T, S/s, S/s, 3]`, the aligned LR window, flipped with it)."""
  frames = x["clips"][0]
  s_size, s_crop, s_flip, s_rotate = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
  if "lr_clips" in x:
    return _paired_train_view(config, x, s_crop, s_flip, s_rotate)
  if "cropped" in x:  # The decoder already resized and cropped (prepared JPEG frames).
    video = frames
  else:
    size = _short_side(config, frames, s_size, config.resize, config.crop_size)
    video = transforms.random_crop(
      transforms.resize_short_side(frames, size), config.crop_size, s_crop
    )
  video = tf.ensure_shape(
    to_uint8(video), [config.num_frames, config.crop_size, config.crop_size, 3]
  )
  if config.flip:
    video = transforms.random_flip(video, s_flip)
  if config.rotate:
    video = transforms.random_vflip_transpose(video, s_rotate)
  if config.mirror:
    video = _mirror(video)
  return {"video": video, "label": tf.cast(x["label"], tf.int32)}


def _mirror(clip):
  """`[T, ...]` -> `[2T, ...]`: the clip, then its frames in reverse order."""
  return tf.concat([clip, tf.reverse(clip, axis=[0])], 0)


def _paired_train_view(config, x, s_crop, s_flip, s_rotate) -> dict:
  size, lr_size = config.crop_size, config.crop_size // config.lr_scale
  video, lr = transforms.paired_random_crop(
    x["clips"][0], x["lr_clips"][0], size, config.lr_scale, s_crop
  )
  video = tf.ensure_shape(video, [config.num_frames, size, size, 3])
  lr = tf.ensure_shape(lr, [config.num_frames, lr_size, lr_size, 3])
  if config.flip:  # the same draws for both
    video, lr = transforms.random_flip(video, s_flip), transforms.random_flip(lr, s_flip)
  if config.rotate:
    video = transforms.random_vflip_transpose(video, s_rotate)
    lr = transforms.random_vflip_transpose(lr, s_rotate)
  if config.mirror:
    video, lr = _mirror(video), _mirror(lr)
  return {"video": video, "lr": lr, "label": tf.cast(x["label"], tf.int32)}


def _clip_major(views, config, size):
  """`[crops, clips * T, s, s, 3]` -> `[clips * crops, T, s, s, 3]`, clip-major."""
  views = tf.reshape(
    views, [config.eval_crops, config.eval_clips, config.num_frames, size, size, 3]
  )
  n = config.eval_clips * config.eval_crops
  return tf.reshape(tf.transpose(views, [1, 0, 2, 3, 4, 5]), [n, config.num_frames, size, size, 3])


def eval_views(config, x) -> dict:
  """All eval views of one video: `{"video": uint8 [N, T, S, S, 3], "label", "video_id", "mask"}`
  with N = clips x crops, clip-major, S the eval crop (`eval_sizes`; paired frames add the aligned
  `"lr"` views)."""
  clips = x["clips"]  # [clips, T, H, W, 3]
  flatten = lambda c: tf.reshape(c, tf.concat([[-1], tf.shape(c)[2:]], 0))
  flat = flatten(clips)
  resize, size = eval_sizes(config)
  crops = config.eval_crops
  n = config.eval_clips * crops
  out = {
    "label": tf.fill([n], tf.cast(x["label"], tf.int32)),
    "video_id": tf.fill([n], tf.cast(x["video_id"], tf.int32)),
    "mask": tf.ones([n], tf.float32),
  }
  if "lr_clips" in x:
    video, lr = transforms.paired_crops(flat, flatten(x["lr_clips"]), size, config.lr_scale, crops)
    out["lr"] = _clip_major(lr, config, size // config.lr_scale)
  else:
    video = transforms.spatial_crops(
      transforms.resize_short_side(flat, _short_side(config, flat, None, resize, size)), size, crops
    )
  return {"video": to_uint8(_clip_major(video, config, size)), **out}


def padding(config, paired: bool = False) -> dict[str, np.ndarray]:
  """One eval padding row (`video_id` -1, `mask` 0) shaped like `eval_views`' rows (with `"lr"`
  when `paired`)."""
  t, c = config.num_frames, eval_sizes(config)[1]
  row = {
    "video": np.zeros((t, c, c, 3), np.uint8),
    "label": np.int32(0),
    "video_id": np.int32(-1),
    "mask": np.float32(0),
  }
  if paired:
    row["lr"] = np.zeros((t, c // config.lr_scale, c // config.lr_scale, 3), np.uint8)
  return row


def normalize_batch(config, batch: dict) -> dict:
  """The batch with its uint8 `"video"` (and paired `"lr"`) as normalised float32."""
  out = {**batch, "video": transforms.normalize(batch["video"], config.mean, config.std)}
  if "lr" in batch:
    out["lr"] = transforms.normalize(batch["lr"], config.mean, config.std)
  return out
