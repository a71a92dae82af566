"""A TFDS dataset builder for video folders and prepared data: `tfds.builder("jaxres_videos", ...)`.

`JaxresVideos` turns either a folder of class subfolders of videos or a dataset written by
`jaxres prepare` into a regular TFDS dataset (features: `video` (JPEG frames), `label`, `fps`,
`path`), so it loads with `tfds.load` / `tfds.builder` anywhere TFDS datasets do. The pipeline
reads such datasets, and any TFDS video dataset already built (e.g. `ucf101`), with
`config.source = "tfds"`.

Splits: from a prepared dataset, its splits; from a folder, `train`/`eval` from the split lists given
(or `trainlist01.txt` / `testlist01.txt` in the folder), else everything in `train`.

Example:
  >>> import tensorflow_datasets as tfds
  >>> from jaxres.data import tfds_builder
  >>> builder = tfds.builder("jaxres_videos", data_dir="/data/tfds",
  ...                        config=tfds_builder.folder_config("/data/UCF-101", name="ucf101_s1"))
  >>> builder.download_and_prepare()
  >>> config.source, config.tfds_name, config.path = "tfds", "jaxres_videos/ucf101_s1", "/data/tfds"
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds

from jaxres.data import records, sources
from jaxres.data import video as video_io
from jaxres.data.skips import SKIPPED


@dataclasses.dataclass(eq=False)
class JaxresVideosConfig(tfds.core.BuilderConfig):
  """Which data a `JaxresVideos` dataset is built from.

  Attributes:
    source_dir: a folder of class subfolders of videos, or a prepared dataset.
    split_lists: for folders, split name -> split list file ("" = every video).
    resize: for folders, shrink frames so the short side is at most this (0: keep).
    quality: for folders, JPEG quality.
  """

  source_dir: str = ""
  split_lists: dict | None = None
  resize: int = 128
  quality: int = 90


def folder_config(
  source_dir: str,
  *,
  name: str,
  split_lists: dict | None = None,
  resize: int = 128,
  quality: int = 90,
) -> JaxresVideosConfig:
  """A builder config for `source_dir` (a video folder or a prepared dataset) named `name`.

  Example:
    >>> folder_config("/data/demo", name="demo")
  """
  return JaxresVideosConfig(
    name=name,
    description=f"Videos from {source_dir}",
    source_dir=os.path.abspath(source_dir),
    split_lists=split_lists,
    resize=resize,
    quality=quality,
  )


class JaxresVideos(tfds.core.GeneratorBasedBuilder):
  """Videos of a class-subfolder folder or a `jaxres prepare` output, as JPEG frame sequences."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = []

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls):
    # TFDS 4.9.10's own lookup imports `importlib_resources`, which it only installs on Python
    # < 3.9; the module file is all it needs.
    from etils import epath

    return epath.Path(__file__)

  def _is_prepared(self) -> bool:
    return os.path.isfile(os.path.join(self.builder_config.source_dir, records.MANIFEST))

  def _class_names(self) -> tuple[str, ...]:
    if self._is_prepared():
      return tuple(records.read_manifest(self.builder_config.source_dir)["class_names"])
    return sources.list_classes(self.builder_config.source_dir)

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
      features=tfds.features.FeaturesDict(
        {
          "video": tfds.features.Video(shape=(None, None, None, 3), encoding_format="jpeg"),
          "label": tfds.features.ClassLabel(names=list(self._class_names())),
          "fps": tfds.features.Scalar(dtype=np.float32),
          "path": tfds.features.Text(),
        }
      ),
      supervised_keys=("video", "label"),
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    root = self.builder_config.source_dir
    if self._is_prepared():
      manifest = records.read_manifest(root)
      return {
        split: self._generate_examples(files=records.shard_paths(root, manifest, split))
        for split in manifest["splits"]
      }
    lists = self.builder_config.split_lists
    if lists is None:
      train, test = (os.path.join(root, f) for f in ("trainlist01.txt", "testlist01.txt"))
      lists = (
        {"train": train, "eval": test}
        if os.path.isfile(train) and os.path.isfile(test)
        else {"train": ""}
      )
    return {
      split: self._generate_examples(videos=sources.folder_videos(root, path, split=split))
      for split, path in lists.items()
    }

  def _generate_examples(self, files=None, videos=None):
    if files is not None:
      yield from self._generate_prepared(files)
    else:
      yield from self._generate_folder(videos)

  def _generate_prepared(self, files):
    from jaxres.data.tfhost import tf

    spec = {
      "frames": tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True),
      "label": tf.io.FixedLenFeature([], tf.int64),
      "fps": tf.io.FixedLenFeature([], tf.float32),
      "path": tf.io.FixedLenFeature([], tf.string),
    }
    for serialized in tf.data.TFRecordDataset(files).as_numpy_iterator():
      x = tf.io.parse_single_example(serialized, spec)
      path = x["path"].numpy().decode()
      yield (
        path,
        {
          "video": list(x["frames"].numpy()),
          "label": int(x["label"]),
          "fps": float(x["fps"]),
          "path": path,
        },
      )

  def _generate_folder(self, videos: sources.VideoList):
    from jaxres.data.prepare import encode_frames

    root = self.builder_config.source_dir
    for entry in videos.entries:
      rel = os.path.relpath(entry.path, root)
      try:
        video = video_io.read_video(entry.path)
      except video_io.DecodeError as e:
        SKIPPED.record(entry.path, e.reason, e.detail)
        continue
      jpegs, _, _ = encode_frames(
        video.frames, self.builder_config.resize, self.builder_config.quality
      )
      yield rel, {"video": jpegs, "label": entry.label, "fps": video.fps, "path": rel}
