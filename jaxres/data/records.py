"""The prepared-data format: TFRecord shards of JPEG frames, and its manifest.

A prepared dataset `OUT/` (written by `jaxres prepare`, see `jaxres.data.prepare`) holds

- `{split}-{i:05d}-of-{n:05d}.tfrecord`: one `tf.train.Example` per video with
  `frames` (bytes list, one JPEG per frame on the nominal grid; frame folders prepared at their
  own size keep their image files, `image_format` "any"), `label`, `video_id`, `num_frames`,
  `height`, `width` (int64), `fps` (float; 0 for frame folders), `path` (bytes, relative to the
  source) and, for paired frame folders (manifest `lr_scale`), `lr_frames` (the LR image files);
- `classes.txt`: class names, line number = label;
- `manifest.json`: format, class names and, per split, its shards with the videos each holds
  (path, label, video_id, num_frames, fps) and the files that were skipped and why.

Reading parses these with tf ops only (`parse_record`); Python never touches a frame.

Example:
  >>> manifest = read_manifest("/data/ucf101-prepared")
  >>> files = shard_paths("/data/ucf101-prepared", manifest, "train")
  >>> tf.data.TFRecordDataset(files).map(parse_record)
"""

from __future__ import annotations

import json
import os

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def shard_name(split: str, index: int, count: int) -> str:
  """`train-00003-of-00016.tfrecord`."""
  return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def encode_record(
  frames_jpeg: list[bytes],
  *,
  label: int,
  video_id: int,
  fps: float,
  height: int,
  width: int,
  path: str,
  lr_frames: list[bytes] | None = None,
) -> bytes:
  """One serialized `tf.train.Example` for a video (see the module docstring).

  Example:
    >>> encode_record([jpeg0, jpeg1], label=3, video_id=0, fps=25.0, height=128, width=171,
    ...               path="up/up_g00.mp4")
  """
  import tensorflow as tf

  feature = {
    "frames": tf.train.Feature(bytes_list=tf.train.BytesList(value=frames_jpeg)),
    "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
    "video_id": tf.train.Feature(int64_list=tf.train.Int64List(value=[video_id])),
    "num_frames": tf.train.Feature(int64_list=tf.train.Int64List(value=[len(frames_jpeg)])),
    "height": tf.train.Feature(int64_list=tf.train.Int64List(value=[height])),
    "width": tf.train.Feature(int64_list=tf.train.Int64List(value=[width])),
    "fps": tf.train.Feature(float_list=tf.train.FloatList(value=[fps])),
    "path": tf.train.Feature(bytes_list=tf.train.BytesList(value=[path.encode()])),
  }
  if lr_frames is not None:  # paired LR frames, one per frame
    feature["lr_frames"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=lr_frames))
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def parse_record(serialized):
  """tf op: a serialized record -> `{"frames": string [N], "lr_frames": string [N] (or [0]),
  "label", "video_id", "num_frames": int64, "fps": float32, "path": string}`.

  Example:
    >>> tf.data.TFRecordDataset(files).map(parse_record)
  """
  import tensorflow as tf

  spec = {
    "frames": tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True),
    "lr_frames": tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True),
    "label": tf.io.FixedLenFeature([], tf.int64),
    "video_id": tf.io.FixedLenFeature([], tf.int64),
    "num_frames": tf.io.FixedLenFeature([], tf.int64),
    "fps": tf.io.FixedLenFeature([], tf.float32),
    "path": tf.io.FixedLenFeature([], tf.string),
  }
  return tf.io.parse_single_example(serialized, spec)


def read_manifest(root: str) -> dict:
  """Loads `root/manifest.json`.

  Raises:
    FileNotFoundError: `root` is not a (completely) prepared dataset.

  Example:
    >>> read_manifest(out)["class_names"]
  """
  path = os.path.join(root, MANIFEST)
  if not os.path.isfile(path):
    raise FileNotFoundError(
      f"{root!r} is not a prepared dataset (no {MANIFEST}); run "
      "`jaxres prepare SRC OUT` (it resumes if it was interrupted)."
    )
  with open(path) as f:
    manifest = json.load(f)
  if manifest.get("version") != FORMAT_VERSION:
    raise ValueError(f"{path}: unsupported prepared-data version {manifest.get('version')!r}.")
  return manifest


def split_of(manifest: dict, split: str, root: str = "") -> dict:
  """The manifest entry of `split`, with a clear error naming the available ones."""
  if split not in manifest["splits"]:
    raise KeyError(
      f"Prepared dataset {root!r} has no split {split!r} "
      f"(it has: {', '.join(sorted(manifest['splits']))})."
    )
  return manifest["splits"][split]


def shard_paths(root: str, manifest: dict, split: str) -> list[str]:
  """Absolute paths of a split's shard files, in order.

  Raises:
    FileNotFoundError: naming every shard file the manifest lists that is missing.
  """
  paths = [os.path.join(root, s["file"]) for s in split_of(manifest, split, root)["shards"]]
  missing = [p for p in paths if not os.path.isfile(p)]
  if missing:
    raise FileNotFoundError(f"Prepared dataset {root!r} is missing shard files: {missing}.")
  return paths
