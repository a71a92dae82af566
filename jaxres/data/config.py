"""The data section of every config: where clips come from and how they are sampled and augmented.

Its fields and their defaults are config data (`jaxres.configs.defaults.default_data_config`,
re-exported here, documents every one); this module checks them (`validate`).

Example:
  >>> config = default_data_config()
  >>> config.source, config.num_frames, config.crop_size
  ('demo', 16, 112)
  >>> config.source, config.path = "folder", "/data/UCF-101"
  >>> config.train_split = "/data/ucfTrainTestlist/trainlist01.txt"
  >>> config.source, config.path = "frames", "/data/REDS/train_sharp"       # frame folders
  >>> config.lr_path, config.lr_scale = "/data/REDS/train_sharp_bicubic/X4", 4
"""

from __future__ import annotations

import ml_collections

from jaxres.configs.defaults import default_data_config  # noqa: F401  (re-exported)

SOURCES = ("demo", "folder", "frames", "prepared", "tfds")
RAW_SOURCES = ("demo", "folder", "frames")  # decoded in Python from files (the others: records)
LAYOUTS = ("sequences", "vimeo", "rawframes")  # of frame folders, see jaxres.data.sequences
SHORT_VIDEO_POLICIES = ("loop", "skip")
DEMO_KINDS = ("motion", "photos")


def demo_kind(config: ml_collections.ConfigDict) -> str:
  """`config.demo.kind` ("motion" for configs saved before the field existed)."""
  return config.demo.get("kind", "motion")


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises `ValueError` naming the first inconsistent data field.

  Args:
    config: a data config (as from `default_data_config`).

  Example:
    >>> validate(default_data_config())
  """
  if config.source not in SOURCES:
    raise ValueError(f"data.source must be one of {SOURCES}, got {config.source!r}.")
  if config.source in ("folder", "frames", "prepared") and not config.path:
    raise ValueError(f"data.path is required for source {config.source!r}.")
  if config.source == "tfds" and not config.tfds_name:
    raise ValueError("data.tfds_name is required for source 'tfds'.")
  if config.layout not in LAYOUTS:
    raise ValueError(f"data.layout must be one of {LAYOUTS}, got {config.layout!r}.")
  if config.source == "frames" and config.target_fps > 0:
    raise ValueError(
      "data.target_fps needs a frame rate, which frame folders do not have; set "
      "data.target_fps = 0 and step through frames with data.frame_stride."
    )
  if config.lr_path:
    if config.source != "frames":
      raise ValueError(
        f"data.lr_path (paired LR frames) needs data.source = 'frames', got {config.source!r}."
      )
    if not isinstance(config.lr_scale, int) or config.lr_scale < 1:
      raise ValueError(f"data.lr_scale must be a positive int, got {config.lr_scale!r}.")
    if config.resize or tuple(config.scale_jitter) != (1.0, 1.0):
      raise ValueError(
        "Paired LR frames (data.lr_path) are cropped at their own resolution: set "
        "data.resize = 0 and data.scale_jitter = (1.0, 1.0)."
      )
    if config.crop_size % config.lr_scale:
      raise ValueError(
        f"data.crop_size={config.crop_size} is not a multiple of "
        f"data.lr_scale={config.lr_scale}; LR and HR crops would not align."
      )
  if config.short_video not in SHORT_VIDEO_POLICIES:
    raise ValueError(f"data.short_video must be one of {SHORT_VIDEO_POLICIES}.")
  if config.eval_crops not in (1, 3):
    raise ValueError(f"data.eval_crops must be 1 or 3, got {config.eval_crops}.")
  if config.num_frames < 1 or config.frame_stride < 1 or config.eval_clips < 1:
    raise ValueError("data.num_frames, frame_stride and eval_clips must be >= 1.")
  if config.crop_size < 1 or config.resize < 0:
    raise ValueError(
      f"data.crop_size must be >= 1 and data.resize >= 0 (0: native), got "
      f"{config.crop_size} and {config.resize}."
    )
  if config.resize and config.crop_size > config.resize * min(config.scale_jitter):
    raise ValueError(
      f"data.crop_size {config.crop_size} exceeds the smallest resized short side "
      f"{config.resize} x {min(config.scale_jitter)}."
    )
  eval_resize, eval_crop = config.eval_resize, config.eval_crop_size
  if eval_resize < 0 or eval_crop < 0:
    raise ValueError(
      f"data.eval_resize and data.eval_crop_size must be >= 0 (0: training's), got "
      f"{eval_resize} and {eval_crop}."
    )
  eval_resize, eval_crop = eval_resize or config.resize, eval_crop or config.crop_size
  if eval_resize and eval_crop > eval_resize:
    raise ValueError(
      f"The eval crop {eval_crop} (data.eval_crop_size, else data.crop_size) "
      f"exceeds the eval short side {eval_resize} (data.eval_resize, else "
      "data.resize)."
    )
  if config.lr_path and eval_crop % config.lr_scale:
    raise ValueError(
      f"data.eval_crop_size={eval_crop} is not a multiple of "
      f"data.lr_scale={config.lr_scale}; LR and HR crops would not align."
    )
  if demo_kind(config) not in DEMO_KINDS:
    raise ValueError(f"data.demo.kind must be one of {DEMO_KINDS}, got {demo_kind(config)!r}.")
  if config.source == "demo" and demo_kind(config) == "motion" and config.flip:
    raise ValueError(
      "data.flip would mirror the demo's motion directions (left <-> right) and so "
      "corrupt its labels; keep flip off for source 'demo' (demo.kind 'motion')."
    )
  if config.source == "demo" and demo_kind(config) == "motion" and config.rotate:
    raise ValueError(
      "data.rotate would turn the demo's motion directions and so corrupt its "
      "labels; keep rotate off for source 'demo' (demo.kind 'motion')."
    )
  if len(config.mean) != 3 or len(config.std) != 3:
    raise ValueError("data.mean and data.std need 3 values.")
