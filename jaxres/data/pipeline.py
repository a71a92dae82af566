"""The input pipeline: a data config -> per-host tf.data batches -> global `jax.Array`s on the mesh.

Stages (each host builds its own, from the same config and seed):

1. Source: the host's share of the files, every `process_count`-th video (folders) or shard
   (prepared data; TFDS uses `tfds.even_splits`). Shares are disjoint and cover the set.
2. Order: training shuffles (files, then records, seeded by `seed` and the host) and repeats;
   evaluation reads in order, exactly once.
3. Clips: raw videos are decoded in parallel map calls that seek to and decode only the clip's
   frames (PyAV); prepared/TFDS records decode only the clip's JPEGs with tf ops (no Python).
   Unreadable or (with `short_video="skip"`) short videos are skipped and counted in
   `jaxres.data.skips.SKIPPED`.
4. Transforms: random scale jitter + crop + flip + normalise for training; `eval_clips` uniformly
   spaced clips x `eval_crops` crops per video for evaluation, each tagged with its `video_id`,
   padded (with `mask` 0) to the same number of full batches on every host, so nothing is dropped.
   Super-resolution: random HR patches and their bicubic LR twins (`jaxres.data.degrade`).
5. Batches of the per-host size, then `jax.make_array_from_process_local_data` on `sharding`,
   `device_prefetch` batches ahead so host work overlaps the step.

Every random choice is a stateless function of (seed, host, element position), and tf.data runs
deterministically, so the same seed gives the same batches.

Example:
  >>> config = default_data_config()                          # the built-in demo data
  >>> info = dataset_info(config); info.num_classes
  4
  >>> mesh = jax.make_mesh((jax.device_count(),), ("data",))
  >>> batches = create_iterator(config, "train", global_batch_size=8, seed=0,
  ...                           sharding=NamedSharding(mesh, P("data")))
  >>> batch = next(batches); batch["video"].shape, batch["label"].shape
  ((8, 16, 112, 112, 3), (8,))
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
from typing import Iterator

import jax
import ml_collections
import numpy as np

from jaxres.data import config as config_lib
from jaxres.data import degrade, demo, records, sources, transforms, video
from jaxres.data.skips import SKIPPED, SkipCounter
from jaxres.data.tfhost import tf

AUTOTUNE = tf.data.AUTOTUNE
SPLITS = ("train", "eval")
# The stage functions are plain tf code (no Python control flow on tensors): AutoGraph would only
# fail to parse the lambdas and warn.
_plain = tf.autograph.experimental.do_not_convert


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What the engine needs to know about a configured dataset.

  Attributes:
    class_names: label -> name (sorted class folder names for folder sources).
    num_videos: videos per split (`"train"`, `"eval"`), before any skips.
    task: the config's task.
    eval_views: clips x crops evaluated per video (eval examples = videos x views).
  """

  class_names: tuple[str, ...]
  num_videos: dict[str, int]
  task: str
  eval_views: int

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  def num_examples(self, split: str) -> int:
    """Videos in `split` (train) or clips x crops of them (eval)."""
    return self.num_videos[split] * (self.eval_views if split == "eval" else 1)

  def write(self, directory: str) -> str:
    """Writes `classes.txt` (line number = label) into `directory`; returns its path."""
    return sources.write_class_names(directory, self.class_names)


def demo_root(config: ml_collections.ConfigDict) -> str:
  """Where the demo dataset lives: `config.path`, or a cache folder named by its parameters."""
  if config.path:
    return config.path
  d = config.demo
  cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  name = f"demo-c{d.num_classes}-v{d.videos_per_class}-t{d.num_frames}-s{d.size}-seed{d.seed}"
  return os.path.join(cache, "jaxres", name)


def _ensure_demo(config) -> str:
  d = config.demo
  return demo.write_demo_dataset(demo_root(config), num_classes=d.num_classes,
                                 videos_per_class=d.videos_per_class, num_frames=d.num_frames,
                                 size=d.size, seed=d.seed)


def _check_split(split: str) -> None:
  if split not in SPLITS:
    raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")


def _split_name(config, split: str, default_eval: str) -> str:
  name = config.train_split if split == "train" else config.eval_split
  return name or ("train" if split == "train" else default_eval)


def video_list(config: ml_collections.ConfigDict, split: str,
               skips: SkipCounter = SKIPPED) -> sources.VideoList:
  """The videos of `split` for the folder and demo sources (all hosts).

  Example:
    >>> len(video_list(default_data_config(), "eval").entries)
  """
  _check_split(split)
  if config.source == "demo":
    root = _ensure_demo(config)
    default = "trainlist01.txt" if split == "train" else "testlist01.txt"
    split_list = (config.train_split if split == "train" else config.eval_split) or default
    split_list = split_list if os.path.isabs(split_list) else os.path.join(root, split_list)
  else:
    root = config.path
    split_list = config.train_split if split == "train" else config.eval_split
  return sources.folder_videos(root, split_list, split=split,
                               holdout_fraction=config.holdout_fraction, skips=skips)


def _tfds_builder(config):
  import tensorflow_datasets as tfds
  from jaxres.data import tfds_builder  # noqa: F401 - registers the jaxres_videos builder.
  return tfds.builder(config.tfds_name, data_dir=config.path or None)


def dataset_info(config: ml_collections.ConfigDict) -> DatasetInfo:
  """Class names and split sizes of the configured dataset.

  Args:
    config: a data config.

  Returns:
    `DatasetInfo`.

  Example:
    >>> dataset_info(config).num_classes
  """
  config_lib.validate(config)
  views = config.eval_clips * (config.eval_crops if config.task == "classification" else 1)
  if config.source in ("demo", "folder"):
    lists = {s: video_list(config, s) for s in SPLITS}
    names = lists["train"].class_names
    counts = {s: len(v.entries) for s, v in lists.items()}
  elif config.source == "prepared":
    manifest = records.read_manifest(config.path)
    names = tuple(manifest["class_names"])
    counts = {s: records.split_of(manifest, _split_name(config, s, "eval"), config.path)["num_videos"]
              for s in SPLITS}
  else:
    builder = _tfds_builder(config)
    label = builder.info.features[config.tfds_label_key]
    names = tuple(label.names) if hasattr(label, "names") else tuple(map(str, range(label.num_classes)))
    counts = {s: builder.info.splits[_split_name(config, s, "test")].num_examples for s in SPLITS}
  return DatasetInfo(names, counts, config.task, views)


# ---------------------------------------------------------------------------------------------
# Sources: per-host element datasets. Raw: {"path", "label", "video_id"}; encoded: {"frames"
# (string [N]), "num_frames", "fps", "label", "video_id", "name"}.


def _raw_source(config, split, process_index, process_count, skips):
  entries = video_list(config, split, skips).entries
  host_counts = [len(sources.shard_entries(entries, i, process_count)) for i in range(process_count)]
  mine = sources.shard_entries(entries, process_index, process_count)
  if not mine:
    raise ValueError(f"Host {process_index} of {process_count} has no {split} videos "
                     f"({len(entries)} in all).")
  ds = tf.data.Dataset.from_tensor_slices({
      "path": [e.path for e in mine],
      "label": np.array([e.label for e in mine], np.int32),
      "video_id": np.array([e.video_id for e in mine], np.int32)})
  return ds, len(mine), max(host_counts)


def _prepared_source(config, split, process_index, process_count, train, seed, num_epochs):
  manifest = records.read_manifest(config.path)
  name = _split_name(config, split, "eval")
  info = records.split_of(manifest, name, config.path)
  files = records.shard_paths(config.path, manifest, name)
  if len(files) < process_count:
    raise ValueError(f"Prepared split {name!r} has {len(files)} shards, fewer than the "
                     f"{process_count} hosts; rerun `jaxres prepare` with --shards >= hosts.")
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
    ds = files_ds.interleave(_plain(read), cycle_length=cycle, block_length=1,
                             num_parallel_calls=AUTOTUNE, deterministic=True)
  else:
    ds = files_ds.flat_map(_plain(read))  # Eval: one file after another, records in written order.
  root = config.path

  def parse(serialized):
    x = records.parse_record(serialized)
    x["label"] = tf.cast(x["label"], tf.int32)
    x["video_id"] = tf.cast(x["video_id"], tf.int32)
    x["name"] = tf.strings.join([root, "/", x.pop("path")])
    return x

  return ds, parse, host_counts[process_index], max(host_counts)


def _tfds_source(config, split, process_index, process_count, train, seed, num_epochs):
  import tensorflow_datasets as tfds
  builder = _tfds_builder(config)
  name = _split_name(config, split, "test")
  parts = tfds.even_splits(name, n=process_count)
  host_counts = [builder.info.splits[p].num_examples for p in parts]
  offset = sum(host_counts[:process_index])
  ds = builder.as_dataset(
      split=parts[process_index], shuffle_files=train,
      decoders={config.tfds_video_key: tfds.decode.SkipDecoding()},
      read_config=tfds.ReadConfig(shuffle_seed=seed, interleave_cycle_length=4))
  if train and not config.cache:
    ds = ds.repeat(num_epochs)
  ds = ds.enumerate()
  features = builder.info.features
  has_fps = "fps" in features

  def parse(index, x):
    frames = x[config.tfds_video_key]
    video_id = tf.cast(index + offset, tf.int32)
    return {"frames": frames, "num_frames": tf.cast(tf.shape(frames)[0], tf.int64),
            "fps": tf.cast(x["fps"], tf.float32) if has_fps else tf.constant(config.tfds_fps),
            "label": tf.cast(x[config.tfds_label_key], tf.int32), "video_id": video_id,
            "name": tf.strings.format("{}:{}#{}", (config.tfds_name, name, video_id))}

  return ds, parse, host_counts[process_index], max(host_counts)


# ---------------------------------------------------------------------------------------------
# Clip decoding.


class _ShortVideo(Exception):
  pass


def _raw_decoder(config, split: str, skips: SkipCounter, num_videos: int):
  """numpy function (path, seed) -> (uint8 [clips * T, H, W, 3], ok)."""
  num_frames, clips = config.num_frames, (config.eval_clips if split == "eval" else 1)
  empty = np.zeros((0, 1, 1, 3), np.uint8)
  failures = collections.Counter()  # Failures since the last success: all bad = a clear error.

  def fn(path, seed):
    path = path.decode()
    rng = np.random.default_rng([int(s) & 0xFFFFFFFF for s in seed])

    def pick(meta):
      step = transforms.clip_step(meta.fps, config.frame_stride, config.target_fps)
      if meta.num_frames < transforms.clip_span(num_frames, step) and config.short_video == "skip":
        raise _ShortVideo(f"{meta.num_frames} frames, a clip needs "
                          f"{math.ceil(transforms.clip_span(num_frames, step))}")
      if split == "train":
        starts = [transforms.train_start_np(meta.num_frames, num_frames, step, rng)]
      else:
        starts = transforms.eval_starts_np(meta.num_frames, num_frames, step, clips)
      return np.concatenate([transforms.clip_indices_np(meta.num_frames, num_frames, step, s)
                             for s in starts])

    try:
      frames = video.read_frames(path, pick)
      failures.clear()
      return frames, True
    except video.DecodeError as e:
      skips.record(path, e.reason, e.detail)
    except _ShortVideo as e:
      skips.record(path, "short", str(e))
    except FileNotFoundError:
      skips.record(path, "missing", "file vanished after listing")
    except Exception as e:  # noqa: BLE001 - one bad file must not stop training.
      skips.record(path, "corrupt", repr(e))
    failures[path] += 1
    if len(failures) >= num_videos and min(failures.values()) >= 2:
      raise ValueError(f"None of this host's {num_videos} videos can be used; skipped so far: "
                       f"{skips.counts()} (e.g. {sorted(failures)[:3]}).")
    return empty, False

  def decode_op(x, seed):
    frames, ok = tf.numpy_function(fn, [x["path"], seed], [tf.uint8, tf.bool])
    frames = tf.ensure_shape(frames, [None, None, None, 3])
    frames = tf.reshape(frames, tf.concat([[clips, -1], tf.shape(frames)[1:]], 0))
    return {"clips": frames, "ok": tf.ensure_shape(ok, []), "label": x["label"],
            "video_id": x["video_id"]}

  return decode_op


def _encoded_decoder(config, split: str, image_format: str):
  """tf function (record, seed) -> {"clips": uint8 [clips, T, H, W, 3], "label", "video_id"}."""
  num_frames = config.num_frames

  fused = (split == "train" and image_format == "jpeg" and config.task == "classification"
           and tuple(config.scale_jitter) == (1.0, 1.0))

  def fused_crop(x, idx, seed):
    # Frames stored at the training short side: decode just the crop window (else: resize first).
    _, s_crop, _, _ = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
    shape = tf.io.extract_jpeg_shape(x["frames"][0])
    return tf.cond(
        tf.equal(tf.minimum(shape[0], shape[1]), config.resize),
        lambda: transforms.decode_random_crop_jpeg(x["frames"], idx, config.crop_size, s_crop),
        lambda: _to_uint8(transforms.random_crop(transforms.resize_short_side(
            transforms.decode_frames(x["frames"], idx), config.resize), config.crop_size, s_crop)))

  def decode_op(x, seed):
    step = transforms.clip_step(tf.cast(x["fps"], tf.float64), config.frame_stride,
                                config.target_fps)
    if split == "train":
      idx = transforms.train_clip_indices(x["num_frames"], num_frames, step, seed)[None]
      if fused:
        return {"clips": fused_crop(x, idx[0], seed)[None], "ok": tf.constant(True),
                "label": x["label"], "video_id": x["video_id"], "cropped": True}
    else:
      idx = transforms.eval_clip_indices(x["num_frames"], num_frames, step, config.eval_clips)
    frames = transforms.decode_frames(x["frames"], tf.reshape(idx, [-1]), image_format)
    frames = tf.reshape(frames, tf.concat([tf.shape(idx), tf.shape(frames)[1:]], 0))
    return {"clips": frames, "ok": tf.constant(True), "label": x["label"],
            "video_id": x["video_id"]}

  return decode_op


def _short_filter(config, skips: SkipCounter, num_videos: int):
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
      raise ValueError(f"All {num_videos} of this host's videos are shorter than a clip "
                       f"(e.g. {sorted(short)[:3]}); lower data.num_frames or data.frame_stride, "
                       "or set data.short_video = \"loop\".")
    return False

  def keep(x):
    step = transforms.clip_step(tf.cast(x["fps"], tf.float64), config.frame_stride,
                                config.target_fps)
    span = (config.num_frames - 1) * tf.cast(step, tf.float64) + 1.0
    long_enough = tf.cast(x["num_frames"], tf.float64) >= span
    # Python runs only for the (rare) short video, to name it in the warning and the counter.
    return tf.cond(long_enough, lambda: True,
                   lambda: tf.numpy_function(record, [x["name"], x["num_frames"]], tf.bool,
                                             stateful=True))

  return keep


# ---------------------------------------------------------------------------------------------
# Transforms. Classification views stay uint8 until batched (a quarter of the bytes to move);
# `_normalize_batch` then makes float32 in one pass over the batch.


def _to_uint8(video):
  return video if video.dtype == tf.uint8 else tf.saturate_cast(tf.round(video), tf.uint8)


def _normalize_batch(config, batch):
  return {**batch, "video": transforms.normalize(batch["video"], config.mean, config.std)}


def _train_views(config, seed, x):
  frames = x["clips"][0]
  s_size, s_crop, s_flip, s_noise = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
  if config.task == "super_resolution":
    patch = config.sr.patch_size
    short = tf.minimum(tf.shape(frames)[1], tf.shape(frames)[2])
    video = transforms.resize_short_side(frames, tf.maximum(short, patch))
    hr = transforms.random_crop(video, patch, s_crop) / 255.0
    if config.flip:
      hr = transforms.random_flip(hr, s_flip)
    lr = degrade.degrade(hr, config.sr.scale, blur_sigma=config.sr.blur_sigma,
                         noise_sigma=config.sr.noise_sigma, seed=s_noise)
    return {"lr": lr, "hr": hr}
  if "cropped" in x:  # The decoder already resized and cropped (prepared JPEG frames).
    video = frames
  else:
    size = transforms.scale_jitter_size(config.resize, config.scale_jitter, s_size)
    video = transforms.random_crop(transforms.resize_short_side(frames, size), config.crop_size,
                                   s_crop)
  video = tf.ensure_shape(_to_uint8(video), [config.num_frames, config.crop_size,
                                              config.crop_size, 3])
  if config.flip:
    video = transforms.random_flip(video, s_flip)
  return {"video": video, "label": tf.cast(x["label"], tf.int32)}


def _eval_views(config, x):
  clips = x["clips"]  # [N, T, H, W, 3]
  shape = tf.shape(clips)
  flat = tf.reshape(clips, tf.concat([[-1], shape[2:]], 0))
  if config.task == "super_resolution":
    patch = config.sr.patch_size
    short = tf.minimum(shape[2], shape[3])
    flat = transforms.resize_short_side(flat, tf.maximum(short, patch))
    hr = transforms.spatial_crops(flat, patch, 1)[0] / 255.0
    hr = tf.reshape(hr, [config.eval_clips, config.num_frames, patch, patch, 3])
    views = {"lr": degrade.degrade(hr, config.sr.scale, blur_sigma=config.sr.blur_sigma),
             "hr": hr}
    n = config.eval_clips
  else:
    size, crops = config.crop_size, config.eval_crops
    video = transforms.spatial_crops(transforms.resize_short_side(flat, config.resize), size, crops)
    video = tf.reshape(video, [crops, config.eval_clips, config.num_frames, size, size, 3])
    video = tf.reshape(tf.transpose(video, [1, 0, 2, 3, 4, 5]),
                       [config.eval_clips * crops, config.num_frames, size, size, 3])
    n = config.eval_clips * crops
    views = {"video": _to_uint8(video), "label": tf.fill([n], tf.cast(x["label"], tf.int32))}
  views["video_id"] = tf.fill([n], tf.cast(x["video_id"], tf.int32))
  views["mask"] = tf.ones([n], tf.float32)
  return views


def _padding(config) -> dict[str, np.ndarray]:
  t = config.num_frames
  if config.task == "super_resolution":
    p, s = config.sr.patch_size, config.sr.scale
    pad = {"lr": np.zeros((t, p // s, p // s, 3), np.float32), "hr": np.zeros((t, p, p, 3), np.float32)}
  else:
    c = config.crop_size
    pad = {"video": np.zeros((t, c, c, 3), np.uint8), "label": np.int32(0)}
  pad.update(video_id=np.int32(-1), mask=np.float32(0))
  return pad


# ---------------------------------------------------------------------------------------------
# The pipeline.


def build_dataset(config: ml_collections.ConfigDict, split: str, *, batch_size: int, seed: int,
                  num_epochs: int | None = None, process_index: int | None = None,
                  process_count: int | None = None,
                  skips: SkipCounter = SKIPPED) -> tuple[tf.data.Dataset, int | None]:
  """This host's tf.data pipeline of batches (dicts of tensors, see the module docstring).

  Args:
    config: a data config.
    split: `"train"` (random clips, repeated `num_epochs` times or forever) or `"eval"` (every
      video once, as clips x crops views, padded to whole batches with `mask` 0).
    batch_size: per-host batch size.
    seed: run seed; the same seed gives the same batches.
    num_epochs: training passes (None: forever). Ignored for eval.
    process_index: this host (default `jax.process_index()`).
    process_count: hosts (default `jax.process_count()`).
    skips: counter for skipped files.

  Returns:
    `(dataset, num_batches)`; `num_batches` is None for endless training.

  Example:
    >>> ds, n = build_dataset(config, "eval", batch_size=8, seed=0)
  """
  config_lib.validate(config)
  _check_split(split)
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  train = split == "train"
  host_seed = seed * 7919 + process_index  # Hosts shuffle their (disjoint) files differently.
  element_seed = tf.random.experimental.stateless_fold_in(
      tf.constant([seed, 0x5EED], tf.int64), process_index)
  parallel = AUTOTUNE if config.num_parallel_calls < 0 else config.num_parallel_calls

  raw = config.source in ("demo", "folder")
  if raw:
    ds, host_videos, max_videos = _raw_source(config, split, process_index, process_count, skips)
    if train:
      if config.cache:
        ds = ds.cache()
      ds = ds.shuffle(host_videos, seed=host_seed, reshuffle_each_iteration=True).repeat(num_epochs)
    element = _raw_decoder(config, split, skips, host_videos)
  else:
    if config.source == "prepared":
      # Records stay serialized through the shuffle buffer; each is parsed once, in the map below.
      ds, parse, host_videos, max_videos = _prepared_source(
          config, split, process_index, process_count, train, host_seed, num_epochs)
      image_format = "jpeg"
    else:
      ds, parse, host_videos, max_videos = _tfds_source(
          config, split, process_index, process_count, train, host_seed, num_epochs)
      ds, parse = ds.map(_plain(parse), num_parallel_calls=parallel), (lambda x: x)
      image_format = "any"
    if config.short_video == "skip":
      keep = _short_filter(config, skips, host_videos)
      ds = ds.filter(_plain(lambda r: keep(parse(r))))
    if train:
      if config.cache:  # Cache one pass of records, then shuffle and repeat that.
        ds = ds.cache().repeat(num_epochs)
      ds = ds.shuffle(max(1, config.shuffle_buffer), seed=host_seed, reshuffle_each_iteration=True)
    decode_op = _encoded_decoder(config, split, image_format)
    element = lambda r, seed: decode_op(parse(r), seed)

  if train:
    ds = ds.enumerate().map(
        _plain(lambda i, r: (tf.random.experimental.stateless_fold_in(element_seed, i), r)))
    if raw:  # Python decodes; failed files are filtered out before any transform.
      ds = ds.map(_plain(lambda s, r: (s, element(r, s))), num_parallel_calls=parallel)
      ds = ds.filter(_plain(lambda s, x: x["ok"]))
      ds = ds.map(_plain(lambda s, x: _train_views(config, s, x)), num_parallel_calls=parallel)
    else:  # One fused tf function per record: parse, decode the clip, augment.
      ds = ds.map(_plain(lambda s, r: _train_views(config, s, element(r, s))),
                  num_parallel_calls=parallel)
    ds = ds.batch(batch_size, drop_remainder=True)
    num_batches = None
  else:
    zero_seed = tf.zeros([2], tf.int64)
    if raw:
      ds = ds.map(_plain(lambda r: element(r, zero_seed)), num_parallel_calls=parallel)
      ds = ds.filter(_plain(lambda x: x["ok"]))
      ds = ds.map(_plain(lambda x: _eval_views(config, x)), num_parallel_calls=parallel).unbatch()
    else:
      ds = ds.map(_plain(lambda r: _eval_views(config, element(r, zero_seed))),
                  num_parallel_calls=parallel).unbatch()
    views = config.eval_clips * (config.eval_crops if config.task == "classification" else 1)
    num_batches = math.ceil(max_videos * views / batch_size)
    pad = tf.data.Dataset.from_tensors(_padding(config)).repeat()
    ds = ds.concatenate(pad).take(num_batches * batch_size).batch(batch_size, drop_remainder=True)
  if config.task == "classification":
    ds = ds.map(_plain(lambda b: _normalize_batch(config, b)), num_parallel_calls=parallel)
  options = tf.data.Options()
  options.deterministic = True
  options.experimental_optimization.map_parallelization = True
  ds = ds.with_options(options).prefetch(AUTOTUNE)
  return ds, num_batches


class BatchIterator:
  """Iterates global batches: numpy dicts (no sharding) or `jax.Array`s laid out on `sharding`.

  Keeps `prefetch` batches already on their devices (transfers are asynchronous, so the next
  batch's copy overlaps the current step). `len()` is the number of batches for eval.

  Call `close()` (or use it as a context manager) when done with an iterator that is not
  exhausted, e.g. an endless training one: it stops tf.data's background work now. Left to
  interpreter exit, a decode still running in a `numpy_function` can never take the GIL back, and
  the iterator's destructor waits for it forever (the process hangs after training).

  Attributes:
    num_batches: batches in one pass (eval), None for endless training.
    skips: the counter skipped files are recorded in (`skips.counts()`).

  Example:
    >>> with create_iterator(config, "train", global_batch_size=8, sharding=None, seed=0) as it:
    ...   batch = next(it)
  """

  def __init__(self, dataset: tf.data.Dataset, *, sharding, global_batch_size: int,
               prefetch: int, num_batches: int | None, skips: SkipCounter):
    self.num_batches, self.skips = num_batches, skips
    # A plain generator (no reference back to self), so dropping the last reference to the
    # BatchIterator destroys the tf.data iterator at once rather than at a later garbage collection.
    self._batches = _prefetched(dataset.as_numpy_iterator(), sharding, global_batch_size,
                                max(0, prefetch))

  def __iter__(self):
    return self

  def __next__(self) -> dict:
    return next(self._batches)

  def __len__(self) -> int:
    if self.num_batches is None:
      raise TypeError("An endless training iterator has no length.")
    return self.num_batches

  def close(self) -> None:
    """Stops the pipeline and frees its buffers; `next()` then raises StopIteration."""
    self._batches.close()

  def __enter__(self) -> "BatchIterator":
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()


def _prefetched(numpy_batches, sharding, global_batch_size: int, size: int) -> Iterator[dict]:
  """`numpy_batches` as global arrays on `sharding`, `size` batches ahead."""
  def to_global(batch):
    if sharding is None:
      return batch
    return {k: jax.make_array_from_process_local_data(
        sharding, v, (global_batch_size, *v.shape[1:])) for k, v in batch.items()}

  queue = collections.deque()
  for batch in numpy_batches:
    queue.append(to_global(batch))
    if len(queue) > size:
      yield queue.popleft()
  while queue:
    yield queue.popleft()


def create_iterator(config: ml_collections.ConfigDict, split: str, *, global_batch_size: int,
                    sharding: jax.sharding.Sharding | None, seed: int,
                    num_epochs: int | None = None, process_index: int | None = None,
                    process_count: int | None = None,
                    skips: SkipCounter = SKIPPED) -> BatchIterator:
  """Global batches for the train or eval loop.

  Args:
    config: a data config (`default_data_config()` and overrides).
    split: `"train"` or `"eval"` (see `build_dataset`).
    global_batch_size: batch size over all hosts (divisible by the host count).
    sharding: where batches live, splitting the leading (batch) axis, e.g.
      `NamedSharding(mesh, P("data"))`; None yields per-host numpy arrays.
    seed: the same seed gives the same batches.
    num_epochs: training passes (None: endless); eval is always one pass.
    process_index: this host (default `jax.process_index()`).
    process_count: hosts (default `jax.process_count()`).
    skips: counter for skipped files (default the process-wide `skips.SKIPPED`).

  Returns:
    A `BatchIterator` of dicts: classification `{"video": float32 [B, T, H, W, 3], "label":
    int32 [B]}`, eval adds `"video_id": int32 [B]` (-1 for padding) and `"mask": float32 [B]`;
    super-resolution `{"lr": [B, T, h, w, 3], "hr": [B, T, H, W, 3]}` in [0, 1] (eval adds the
    same two).

  Example:
    >>> for batch in create_iterator(config, "eval", global_batch_size=16, sharding=None, seed=0):
    ...   logits = predict(batch["video"])   # average logits by batch["video_id"] where mask == 1
  """
  process_count = jax.process_count() if process_count is None else process_count
  if global_batch_size % process_count:
    raise ValueError(f"global_batch_size {global_batch_size} is not divisible by the "
                     f"{process_count} hosts.")
  ds, num_batches = build_dataset(config, split, batch_size=global_batch_size // process_count,
                                  seed=seed, num_epochs=num_epochs, process_index=process_index,
                                  process_count=process_count, skips=skips)
  return BatchIterator(ds, sharding=sharding, global_batch_size=global_batch_size,
                       prefetch=config.device_prefetch if sharding is not None else 0,
                       num_batches=num_batches, skips=skips)


def average_video_logits(logits: np.ndarray, video_ids: np.ndarray, mask: np.ndarray,
                         num_videos: int) -> tuple[np.ndarray, np.ndarray]:
  """Averages per-view logits into per-video logits (for multi-clip x multi-crop evaluation).

  Args:
    logits: `[N, K]` logits of all eval views (concatenated batches).
    video_ids: `[N]` the batches' `video_id`.
    mask: `[N]` the batches' `mask` (padding rows are ignored).
    num_videos: videos in the split.

  Returns:
    `(video_logits [num_videos, K], seen [num_videos] bool)`; rows of videos never seen (skipped)
    are zero with `seen` False.

  Example:
    >>> video_logits, seen = average_video_logits(logits, ids, mask, info.num_videos["eval"])
    >>> accuracy = (video_logits.argmax(-1) == video_labels)[seen].mean()
  """
  logits, video_ids = np.asarray(logits, np.float64), np.asarray(video_ids)
  keep = np.asarray(mask) > 0
  sums = np.zeros((num_videos, logits.shape[-1]))
  counts = np.zeros(num_videos)
  np.add.at(sums, video_ids[keep], logits[keep])
  np.add.at(counts, video_ids[keep], 1)
  seen = counts > 0
  sums[seen] /= counts[seen, None]
  return sums.astype(np.float32), seen
