"""What a data config names: the videos of each split, their class names and counts.

For the folder and demo sources the videos are listed from class folders and split lists
(`jaxres.data.sources`), for frames the sequence folders (`jaxres.data.sequences`); prepared data
reads its manifest (`jaxres.data.records`); TFDS reads its builder's info. Nothing is decoded here.

Listing only reads. The built-in demo data are written by `ensure_demo_data`, an explicit set-up
step (`jaxres.train.loop` takes it before listing); listing a demo whose files are missing is an
error that says so. A run lists its data once: `dataset_info` keeps the raw sources' video lists
(`DatasetInfo.video_lists`), and the train and eval pipelines read them from there
(`jaxres.data.pipeline.build_dataset(..., info=info)`).

Example:
  >>> config = default_data_config()
  >>> ensure_demo_data(config)                 # writes the demo videos once, reused after
  >>> info = dataset_info(config)
  >>> info.num_classes, info.num_videos
  (4, {'train': 96, 'eval': 32})
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

import ml_collections

from jaxres.data import config as config_lib
from jaxres.data import demo, photo_demo, records, sequences, sources, split_lists
from jaxres.data.skips import SKIPPED, SkipCounter

SPLITS = ("train", "eval")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What the engine needs to know about a configured dataset.

  Attributes:
    class_names: label -> name (sorted class folder names for folder sources).
    num_videos: videos per split (`"train"`, `"eval"`), before any skips.
    eval_views: clips x crops evaluated per video (eval examples = videos x views).
    video_lists: split -> `sources.VideoList` for the raw sources (demo, folder, frames): the
      listing the pipelines read instead of listing the folders again. None for prepared and
      TFDS data, whose manifest or builder says which records a split holds.
  """

  class_names: tuple[str, ...]
  num_videos: dict[str, int]
  eval_views: int
  video_lists: Optional[dict[str, sources.VideoList]] = dataclasses.field(
    default=None, repr=False, compare=False
  )

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  def num_examples(self, split: str) -> int:
    """Videos in `split` (train) or clips x crops of them (eval)."""
    return self.num_videos[split] * (self.eval_views if split == "eval" else 1)

  def write(self, directory: str) -> str:
    """Writes `classes.txt` (line number = label) into `directory`; returns its path."""
    return sources.write_class_names(directory, self.class_names)


def check_split(split: str) -> None:
  """Raises `ValueError` unless `split` is "train" or "eval"."""
  if split not in SPLITS:
    raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")


def split_name(config: ml_collections.ConfigDict, split: str, default_eval: str) -> str:
  """The configured name of `split` for prepared/TFDS data (`train_split` / `eval_split`)."""
  name = config.train_split if split == "train" else config.eval_split
  return name or ("train" if split == "train" else default_eval)


def demo_root(config: ml_collections.ConfigDict) -> str:
  """Where the demo dataset lives: `config.path`, or a cache folder named by its parameters."""
  if config.path:
    return config.path
  d = config.demo
  cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  if config_lib.demo_kind(config) == "photos":
    name = f"photos-v{d.videos_per_class}-t{d.num_frames}-s{d.size}-seed{d.seed}"
  else:
    name = f"demo-c{d.num_classes}-v{d.videos_per_class}-t{d.num_frames}-s{d.size}-seed{d.seed}"
    if d.get("classes"):
      name += "-" + "-".join(d.classes)
  return os.path.join(cache, "jaxres", name)


def ensure_demo_data(config: ml_collections.ConfigDict) -> Optional[str]:
  """Writes the built-in demo data a `source="demo"` config names, unless already there.

  The set-up step before listing (training and evaluation take it once per run): listing never
  writes. A complete set with the same parameters is reused, so calling it again is cheap.

  Args:
    config: a data config.

  Returns:
    The demo's folder (`demo_root`), or None when `config.source` is not "demo" (nothing to write).

  Example:
    >>> ensure_demo_data(default_data_config())
    '/home/me/.cache/jaxres/demo-c4-v32-t16-s64-seed0'
  """
  if config.source != "demo":
    return None
  d = config.demo
  if config_lib.demo_kind(config) == "photos":
    return photo_demo.write_photo_dataset(
      demo_root(config),
      clips_per_photo=d.videos_per_class,
      num_frames=d.num_frames,
      size=d.size,
      seed=d.seed,
    )
  return demo.write_demo_dataset(
    demo_root(config),
    num_classes=d.num_classes,
    videos_per_class=d.videos_per_class,
    num_frames=d.num_frames,
    size=d.size,
    seed=d.seed,
    classes=tuple(d.get("classes", ())),
  )


def _demo_split_list(config, split: str) -> tuple[str, str]:
  """`(root, split list)` of the demo data; raises `FileNotFoundError` if they are not written."""
  root = demo_root(config)
  default = split_lists.TRAIN_LIST if split == "train" else split_lists.EVAL_LIST
  split_list = (config.train_split if split == "train" else config.eval_split) or default
  split_list = split_list if os.path.isabs(split_list) else os.path.join(root, split_list)
  if not os.path.isfile(split_list):
    raise FileNotFoundError(
      f"No demo split list {split_list}: write the demo data first with "
      f"jaxres.data.catalog.ensure_demo_data(config) (`jaxres train` and `jaxres eval` do); "
      f"listing only reads."
    )
  return root, split_list


def video_list(
  config: ml_collections.ConfigDict, split: str, skips: SkipCounter = SKIPPED, num_classes: int = 0
) -> sources.VideoList:
  """The videos of `split` for the folder, frames and demo sources (all hosts).

  Args:
    config: a data config with source "folder", "frames" (entries are sequence folders) or "demo"
      (written beforehand by `ensure_demo_data`).
    split: "train" or "eval".
    skips: counter for files that are not videos.
    num_classes: labels a rawframes list gives must be below this (0: any).

  Returns:
    A `sources.VideoList`.

  Raises:
    FileNotFoundError: the folder or a split list is missing; for the demo, its data are not
      written yet (the message names the file and `ensure_demo_data`).

  Example:
    >>> len(video_list(default_data_config(), "eval").entries)
  """
  check_split(split)
  if config.source == "frames":
    return sequences.frame_sequences(
      config.path,
      config.layout,
      config.train_split if split == "train" else config.eval_split,
      split=split,
      holdout_fraction=config.holdout_fraction,
      holdout_sequences=tuple(config.holdout_sequences),
      num_classes=num_classes,
    )
  if config.source == "demo":
    root, split_list = _demo_split_list(config, split)
  else:
    root = config.path
    split_list = config.train_split if split == "train" else config.eval_split
  return sources.folder_videos(
    root, split_list, split=split, holdout_fraction=config.holdout_fraction, skips=skips
  )


def tfds_builder(config: ml_collections.ConfigDict):
  """The TFDS builder of `config.tfds_name` (data_dir `config.path`), jaxres' own registered."""
  import tensorflow_datasets as tfds

  from jaxres.data import tfds_builder as _  # noqa: F401 - registers the jaxres_videos builder.

  return tfds.builder(config.tfds_name, data_dir=config.path or None)


def dataset_info(config: ml_collections.ConfigDict, skips: SkipCounter = SKIPPED) -> DatasetInfo:
  """Class names and split sizes of the configured dataset: the run's one listing of it.

  Args:
    config: a data config (the demo's data written beforehand: `ensure_demo_data`).
    skips: counter for listed files that are not videos.

  Returns:
    `DatasetInfo`, with the raw sources' video lists (pass it to the pipelines, which then do not
    list again).

  Raises:
    ValueError: an inconsistent data config (the key is named).
    FileNotFoundError: the data folder, manifest or split list is missing, or the demo's data
      are not written.

  Example:
    >>> info = dataset_info(config); info.num_classes
  """
  config_lib.validate(config)
  views = config.eval_clips * config.eval_crops
  lists = None
  if config.source in config_lib.RAW_SOURCES:
    lists = {"train": video_list(config, "train", skips)}  # eval labels index its classes
    lists["eval"] = video_list(config, "eval", skips, len(lists["train"].class_names))
    names = lists["train"].class_names
    counts = {s: len(v.entries) for s, v in lists.items()}
  elif config.source == "prepared":
    manifest = records.read_manifest(config.path)
    names = tuple(manifest["class_names"])
    counts = {
      s: records.split_of(manifest, split_name(config, s, "eval"), config.path)["num_videos"]
      for s in SPLITS
    }
  else:
    builder = tfds_builder(config)
    label = builder.info.features[config.tfds_label_key]
    names = (
      tuple(label.names) if hasattr(label, "names") else tuple(map(str, range(label.num_classes)))
    )
    counts = {s: builder.info.splits[split_name(config, s, "test")].num_examples for s in SPLITS}
  return DatasetInfo(names, counts, views, lists)
