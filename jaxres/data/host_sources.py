"""Per-host element datasets: this host's share of the videos (folders) or records (prepared, TFDS).

Raw sources (demo, folder, frames) yield `{"path", "label", "video_id"}` (frames with paired LR
add `"lr_path"`, the LR twin of the sequence folder); encoded sources (prepared, TFDS)
yield records that a `parse` function turns into `{"frames" (string [N]), "num_frames", "fps",
"label", "video_id", "name"}`. Each returns the number of this host's videos and the largest
number any host has (eval pads every host to the same number of batches).

Shares: every `process_count`-th video (folders) or shard (prepared data); TFDS uses
`tfds.even_splits`. Shares are disjoint and cover the set.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np

from jaxres.data import catalog, records, sources
from jaxres.data.skips import SkipCounter
from jaxres.data.tfhost import tf

AUTOTUNE = tf.data.AUTOTUNE
# The stage functions are plain tf code (no Python control flow on tensors): AutoGraph would only
# fail to parse the lambdas and warn.
plain = tf.autograph.experimental.do_not_convert


def raw_source(
  config,
  split: str,
  process_index: int,
  process_count: int,
  skips: SkipCounter,
  videos: Optional[sources.VideoList] = None,
):
  """`(dataset of {"path", "label", "video_id"(, "lr_path")}, host videos, max host videos)` for
  folders, frames and the demo, from `videos` (the run's listing, `DatasetInfo.video_lists`) or,
  without it, a listing of the split made here."""
  if videos is None:
    videos = catalog.video_list(config, split, skips)
  entries = videos.entries
  host_counts = [
    len(sources.shard_entries(entries, i, process_count)) for i in range(process_count)
  ]
  mine = sources.shard_entries(entries, process_index, process_count)
  if not mine:
    raise ValueError(
      f"Host {process_index} of {process_count} has no {split} videos ({len(entries)} in all)."
    )
  columns = {
    "path": [e.path for e in mine],
    "label": np.array([e.label for e in mine], np.int32),
    "video_id": np.array([e.video_id for e in mine], np.int32),
  }
  if config.source == "frames":  # frames a list says each sequence has (0: unknown)
    columns["num_frames"] = np.array([e.num_frames for e in mine], np.int64)
  if config.lr_path:  # the LR folder mirrors data.path
    root = os.path.abspath(config.path)
    columns["lr_path"] = [os.path.join(config.lr_path, os.path.relpath(e.path, root)) for e in mine]
  ds = tf.data.Dataset.from_tensor_slices(columns)
  return ds, len(mine), max(host_counts)


def prepared_source(
  config, split: str, process_index: int, process_count: int, train: bool, seed: int, num_epochs
):
  """`(dataset of serialized records, parse, host videos, max host videos)` for prepared shards.

  Training shuffles the shard order (unless cached) and interleaves shards; eval reads them in
  written order.
  """
  manifest = records.read_manifest(config.path)
  name = catalog.split_name(config, split, "eval")
  info = records.split_of(manifest, name, config.path)
  files = records.shard_paths(config.path, manifest, name)
  if len(files) < process_count:
    raise ValueError(
      f"Prepared split {name!r} has {len(files)} shards, fewer than the "
      f"{process_count} hosts; rerun `jaxres prepare` with --shards >= hosts."
    )
  if config.target_fps > 0 and any(not v["fps"] for s in info["shards"] for v in s["videos"]):
    raise ValueError(
      f"Prepared split {name!r} holds frame folders, which have no frame rate; set "
      "data.target_fps = 0 and step through frames with data.frame_stride."
    )
  counts = [s["num_videos"] for s in info["shards"]]
  host_counts = [sum(sources.shard_entries(counts, i, process_count)) for i in range(process_count)]
  mine = sources.shard_entries(files, process_index, process_count)
  files_ds = tf.data.Dataset.from_tensor_slices(mine)
  cycle = min(len(mine), 8)
  read = lambda f: tf.data.TFRecordDataset(f, buffer_size=1 << 20)
  if train and not config.cache:
    files_ds = files_ds.shuffle(len(mine), seed=seed, reshuffle_each_iteration=True)
    files_ds = files_ds.repeat(num_epochs)
  if train:
    ds = files_ds.interleave(
      plain(read),
      cycle_length=cycle,
      block_length=1,
      num_parallel_calls=AUTOTUNE,
      deterministic=True,
    )
  else:
    ds = files_ds.flat_map(plain(read))  # Eval: one file after another, records in written order.
  root = config.path

  def parse(serialized):
    x = records.parse_record(serialized)
    x["label"] = tf.cast(x["label"], tf.int32)
    x["video_id"] = tf.cast(x["video_id"], tf.int32)
    x["name"] = tf.strings.join([root, "/", x.pop("path")])
    return x

  return ds, parse, host_counts[process_index], max(host_counts)


def tfds_source(
  config, split: str, process_index: int, process_count: int, train: bool, seed: int, num_epochs
):
  """`(dataset of TFDS examples, parse, host videos, max host videos)` for a built TFDS dataset.

  Frames stay encoded (`SkipDecoding`); `parse` maps an `(index, example)` pair to a record.
  """
  import tensorflow_datasets as tfds

  builder = catalog.tfds_builder(config)
  name = catalog.split_name(config, split, "test")
  parts = tfds.even_splits(name, n=process_count)
  host_counts = [builder.info.splits[p].num_examples for p in parts]
  offset = sum(host_counts[:process_index])
  ds = builder.as_dataset(
    split=parts[process_index],
    shuffle_files=train,
    decoders={config.tfds_video_key: tfds.decode.SkipDecoding()},
    read_config=tfds.ReadConfig(shuffle_seed=seed, interleave_cycle_length=4),
  )
  if train and not config.cache:
    ds = ds.repeat(num_epochs)
  ds = ds.enumerate()
  has_fps = "fps" in builder.info.features

  def parse(index, x):
    frames = x[config.tfds_video_key]
    video_id = tf.cast(index + offset, tf.int32)
    return {
      "frames": frames,
      "num_frames": tf.cast(tf.shape(frames)[0], tf.int64),
      "fps": tf.cast(x["fps"], tf.float32) if has_fps else tf.constant(config.tfds_fps),
      "label": tf.cast(x[config.tfds_label_key], tf.int32),
      "video_id": video_id,
      "name": tf.strings.format("{}:{}#{}", (config.tfds_name, name, video_id)),
    }

  return ds, parse, host_counts[process_index], max(host_counts)
