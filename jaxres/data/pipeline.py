"""The input pipeline: a data config -> per-host tf.data batches -> global `jax.Array`s on the mesh.

Stages (each host builds its own, from the same config and seed), one module each:

1. Source (`host_sources`): the host's share of the videos or records; `catalog` lists them.
2. Order: training shuffles (files, then records, seeded by `seed` and the host) and repeats;
   evaluation reads in order, exactly once. Training numbers its examples here; example i's
   randomness is a function of (seed, host, i), so resuming at step n skips the first
   n x batch examples *before* they are decoded and yields what an uninterrupted run would.
3. Clips (`clips`): only the clip's frames are decoded (PyAV seeks for raw videos; tf ops decode
   only the clip's JPEGs for prepared/TFDS records). Unreadable or (with `short_video="skip"`)
   short videos are skipped and counted in `jaxres.data.skips.SKIPPED`.
4. Views (`views`): a random crop (+ flip) per training clip; `eval_clips` x `eval_crops` views
   per eval video with `video_id`, padded (with `mask` 0) to the same number of full batches on
   every host, so nothing is dropped. The same for every task: a task derives what it needs from
   `{"video", "label"}` on device (super-resolution makes its LR input there).
5. Batches of the per-host size, normalised, then global arrays on `sharding` (`iterator`),
   `device_prefetch` batches ahead so host work overlaps the step.

tf.data runs deterministically, so the same seed gives the same batches.

A run lists its data once (`dataset_info`) and hands that `DatasetInfo` to every pipeline it
builds (`info=`), and builds its eval pipeline once (`eval_data`): each evaluation iterates the
same tf.data dataset again, in the same order.

Example:
  >>> config = default_data_config()                          # the built-in demo data
  >>> ensure_demo_data(config)                                # written once, then reused
  >>> info = dataset_info(config); info.num_classes
  4
  >>> mesh = jax.make_mesh((jax.device_count(),), ("data",))
  >>> batches = create_iterator(config, "train", global_batch_size=8, seed=0,
  ...                           sharding=NamedSharding(mesh, P("data")), info=info)
  >>> batch = next(batches); batch["video"].shape, batch["label"].shape
  ((8, 16, 112, 112, 3), (8,))
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import jax
import ml_collections

from jaxres.data import clips, host_sources, records, views
from jaxres.data import config as config_lib
from jaxres.data.catalog import DatasetInfo, check_split, dataset_info, ensure_demo_data, video_list
from jaxres.data.iterator import BatchIterator
from jaxres.data.skips import SKIPPED, SkipCounter
from jaxres.data.tfhost import tf

AUTOTUNE = tf.data.AUTOTUNE
_plain = host_sources.plain

__all__ = [
  "BatchIterator",
  "DatasetInfo",
  "build_dataset",
  "create_iterator",
  "dataset_info",
  "ensure_demo_data",
  "eval_data",
  "video_list",
]


def build_dataset(
  config: ml_collections.ConfigDict,
  split: str,
  *,
  batch_size: int,
  seed: int,
  num_epochs: int | None = None,
  start_step: int = 0,
  process_index: int | None = None,
  process_count: int | None = None,
  skips: SkipCounter = SKIPPED,
  info: Optional[DatasetInfo] = None,
) -> tuple[tf.data.Dataset, int | None]:
  """This host's tf.data pipeline of batches (dicts of tensors, see the module docstring).

  Args:
    config: a data config.
    split: `"train"` (random clips, repeated `num_epochs` times or forever) or `"eval"` (every
      video once, as clips x crops views, padded to whole batches with `mask` 0).
    batch_size: per-host batch size.
    seed: run seed; the same seed gives the same batches.
    num_epochs: training passes (None: forever). Ignored for eval.
    start_step: training batches already consumed (a resumed run): their examples are skipped
      before decoding. Exact when no file in them failed to decode (a failed file is dropped
      after decoding, so each one there shifts the resumed stream by one example).
    process_index: this host (default `jax.process_index()`).
    process_count: hosts (default `jax.process_count()`).
    skips: counter for skipped files.
    info: `dataset_info(config)`, the run's listing: raw sources read their videos from it
      instead of listing the split again (None: listed here).

  Returns:
    `(dataset, num_batches)`; `num_batches` is None for endless training. The dataset can be
    iterated again: an eval one gives the same batches each time.

  Example:
    >>> ds, n = build_dataset(config, "eval", batch_size=8, seed=0)
  """
  config_lib.validate(config)
  check_split(split)
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  train = split == "train"
  host_seed = seed * 7919 + process_index  # Hosts shuffle their (disjoint) files differently.
  element_seed = tf.random.experimental.stateless_fold_in(
    tf.constant([seed, 0x5EED], tf.int64), process_index
  )
  parallel = AUTOTUNE if config.num_parallel_calls < 0 else config.num_parallel_calls

  raw = config.source in config_lib.RAW_SOURCES
  paired = bool(config.lr_path) or (config.source == "prepared" and _prepared_pairs(config))
  if raw:
    listed = info.video_lists[split] if info is not None and info.video_lists else None
    ds, host_videos, max_videos = host_sources.raw_source(
      config, split, process_index, process_count, skips, listed
    )
    if train:
      if config.cache:
        ds = ds.cache()
      ds = ds.shuffle(host_videos, seed=host_seed, reshuffle_each_iteration=True).repeat(num_epochs)
    element = clips.raw_decoder(config, split, skips, host_videos)
  else:
    if config.source == "prepared":
      # Records stay serialized through the shuffle buffer; each is parsed once, in the map below.
      ds, parse, host_videos, max_videos = host_sources.prepared_source(
        config, split, process_index, process_count, train, host_seed, num_epochs
      )
      # JPEG for videos; "any" for frame folders stored as they were (PNG).
      image_format = records.read_manifest(config.path).get("image_format", "jpeg")
    else:
      ds, parse, host_videos, max_videos = host_sources.tfds_source(
        config, split, process_index, process_count, train, host_seed, num_epochs
      )
      ds, parse = ds.map(_plain(parse), num_parallel_calls=parallel), (lambda x: x)
      image_format = "any"
    if config.short_video == "skip":
      keep = clips.short_filter(config, skips, host_videos)
      ds = ds.filter(_plain(lambda r: keep(parse(r))))
    if train:
      if config.cache:  # Cache one pass of records, then shuffle and repeat that.
        ds = ds.cache().repeat(num_epochs)
      ds = ds.shuffle(max(1, config.shuffle_buffer), seed=host_seed, reshuffle_each_iteration=True)
    decode_op = clips.encoded_decoder(config, split, image_format, paired)
    element = lambda r, seed: decode_op(parse(r), seed)

  if train:
    ds = ds.enumerate()
    if start_step:  # Skip in the index space: nothing consumed is decoded again.
      ds = ds.skip(start_step * batch_size)
    ds = ds.map(_plain(lambda i, r: (tf.random.experimental.stateless_fold_in(element_seed, i), r)))
    if raw:  # Python decodes; failed files are filtered out before any transform.
      ds = ds.map(_plain(lambda s, r: (s, element(r, s))), num_parallel_calls=parallel)
      ds = ds.filter(_plain(lambda s, x: x["ok"]))
      ds = ds.map(_plain(lambda s, x: views.train_view(config, s, x)), num_parallel_calls=parallel)
    else:  # One fused tf function per record: parse, decode the clip, augment.
      ds = ds.map(
        _plain(lambda s, r: views.train_view(config, s, element(r, s))), num_parallel_calls=parallel
      )
    ds = ds.batch(batch_size, drop_remainder=True)
    num_batches = None
  else:
    zero_seed = tf.zeros([2], tf.int64)
    if raw:
      ds = ds.map(_plain(lambda r: element(r, zero_seed)), num_parallel_calls=parallel)
      ds = ds.filter(_plain(lambda x: x["ok"]))
      ds = ds.map(
        _plain(lambda x: views.eval_views(config, x)), num_parallel_calls=parallel
      ).unbatch()
    else:
      ds = ds.map(
        _plain(lambda r: views.eval_views(config, element(r, zero_seed))),
        num_parallel_calls=parallel,
      ).unbatch()
    per_video = config.eval_clips * config.eval_crops
    num_batches = math.ceil(max_videos * per_video / batch_size)
    pad = tf.data.Dataset.from_tensors(views.padding(config, paired)).repeat()
    ds = ds.concatenate(pad).take(num_batches * batch_size).batch(batch_size, drop_remainder=True)
  ds = ds.map(_plain(lambda b: views.normalize_batch(config, b)), num_parallel_calls=parallel)
  options = tf.data.Options()
  options.deterministic = True
  options.experimental_optimization.map_parallelization = True
  ds = ds.with_options(options).prefetch(AUTOTUNE)
  return ds, num_batches


def _prepared_pairs(config) -> bool:
  """Whether prepared data holds paired LR frames (`jaxres prepare --lr`); checks the config fits."""
  scale = records.read_manifest(config.path).get("lr_scale")
  if not scale:
    return False
  if config.lr_scale != scale:
    raise ValueError(
      f"{config.path!r} holds LR frames at 1/{scale}; set data.lr_scale={scale} "
      f"(got {config.lr_scale})."
    )
  if config.resize or tuple(config.scale_jitter) != (1.0, 1.0) or config.crop_size % scale:
    raise ValueError(
      f"{config.path!r} holds paired LR frames: set data.resize = 0, "
      f"data.scale_jitter = (1.0, 1.0) and data.crop_size to a multiple of {scale}."
    )
  return True


def create_iterator(
  config: ml_collections.ConfigDict,
  split: str,
  *,
  global_batch_size: int,
  sharding: jax.sharding.Sharding | None,
  seed: int,
  num_epochs: int | None = None,
  start_step: int = 0,
  process_index: int | None = None,
  process_count: int | None = None,
  skips: SkipCounter = SKIPPED,
  info: Optional[DatasetInfo] = None,
) -> BatchIterator:
  """Global batches for the train or eval loop.

  Args:
    config: a data config (`default_data_config()` and overrides).
    split: `"train"` or `"eval"` (see `build_dataset`).
    global_batch_size: batch size over all hosts (divisible by the host count).
    sharding: where batches live, splitting the leading (batch) axis, e.g.
      `NamedSharding(mesh, P("data"))`; None yields per-host numpy arrays.
    seed: the same seed gives the same batches.
    num_epochs: training passes (None: endless); eval is always one pass.
    start_step: training batches already consumed; the iterator yields batch `start_step` on,
      skipping the consumed examples before decoding (see `build_dataset`).
    process_index: this host (default `jax.process_index()`).
    process_count: hosts (default `jax.process_count()`).
    skips: counter for skipped files (default the process-wide `skips.SKIPPED`).
    info: the run's listing, `dataset_info(config)` (None: the split is listed here).

  Returns:
    A `BatchIterator` of dicts `{"video": float32 [B, T, H, W, 3], "label": int32 [B]}`; eval
    adds `"video_id": int32 [B]` (-1 for padding) and `"mask": float32 [B]`.

  Example:
    >>> for batch in create_iterator(config, "eval", global_batch_size=16, sharding=None, seed=0):
    ...   logits = predict(batch["video"])   # averaged per video_id by the task's aggregate
  """
  return _batches(
    config,
    split,
    global_batch_size=global_batch_size,
    sharding=sharding,
    seed=seed,
    num_epochs=num_epochs,
    start_step=start_step,
    process_index=process_index,
    process_count=process_count,
    skips=skips,
    info=info,
  )()


def eval_data(
  config: ml_collections.ConfigDict,
  *,
  global_batch_size: int,
  sharding: jax.sharding.Sharding | None,
  seed: int,
  process_index: int | None = None,
  process_count: int | None = None,
  skips: SkipCounter = SKIPPED,
  info: Optional[DatasetInfo] = None,
) -> Callable[[], BatchIterator]:
  """One pass over the eval split per call, from one tf.data pipeline built (and checked) here.

  The training loop evaluates many times: the pipeline is built once and each call iterates it
  again, giving the same batches in the same order every time.

  Args:
    config: a data config.
    global_batch_size: batch size over all hosts (divisible by the host count).
    sharding: where batches live (None: per-host numpy arrays).
    seed: the run's seed.
    process_index: this host (default `jax.process_index()`).
    process_count: hosts (default `jax.process_count()`).
    skips: counter for skipped files.
    info: the run's listing, `dataset_info(config)` (None: the eval split is listed here, once).

  Returns:
    `() -> BatchIterator` of eval batches (see `create_iterator`).

  Example:
    >>> evaluation = eval_data(config, global_batch_size=16, sharding=None, seed=0, info=info)
    >>> first = [b["video_id"] for b in evaluation()]
    >>> again = [b["video_id"] for b in evaluation()]     # the same batches
  """
  return _batches(
    config,
    "eval",
    global_batch_size=global_batch_size,
    sharding=sharding,
    seed=seed,
    num_epochs=1,
    start_step=0,
    process_index=process_index,
    process_count=process_count,
    skips=skips,
    info=info,
  )


def _batches(
  config,
  split: str,
  *,
  global_batch_size: int,
  sharding,
  seed: int,
  num_epochs,
  start_step: int,
  process_index,
  process_count,
  skips: SkipCounter,
  info: Optional[DatasetInfo],
) -> Callable[[], BatchIterator]:
  """Builds `split`'s host pipeline once; each call of the result iterates it from the start."""
  process_count = jax.process_count() if process_count is None else process_count
  if global_batch_size % process_count:
    raise ValueError(
      f"global_batch_size {global_batch_size} is not divisible by the {process_count} hosts."
    )
  ds, num_batches = build_dataset(
    config,
    split,
    batch_size=global_batch_size // process_count,
    seed=seed,
    num_epochs=num_epochs,
    start_step=start_step,
    process_index=process_index,
    process_count=process_count,
    skips=skips,
    info=info,
  )
  prefetch = config.device_prefetch if sharding is not None else 0
  return lambda: BatchIterator(
    ds,
    sharding=sharding,
    global_batch_size=global_batch_size,
    prefetch=prefetch,
    num_batches=num_batches,
    skips=skips,
  )
