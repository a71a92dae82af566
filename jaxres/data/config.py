"""The data section of every config: where clips come from and how they are sampled and augmented.

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

SOURCES = ("demo", "folder", "frames", "prepared", "tfds")
RAW_SOURCES = ("demo", "folder", "frames")  # decoded in Python from files (the others: records)
LAYOUTS = ("sequences", "vimeo", "rawframes")  # of frame folders, see jaxres.data.sequences
SHORT_VIDEO_POLICIES = ("loop", "skip")
DEMO_KINDS = ("motion", "photos")


def default_data_config() -> ml_collections.ConfigDict:
  """Every data field with its default (the built-in demo dataset, Kinetics preprocessing).

  Returns:
    A `ConfigDict`; fields:

    - `source`: `"demo"` (generated videos written to `path`, or a cache folder when empty),
      `"folder"` (class subfolders of videos at `path`), `"frames"` (folders of image files at
      `path`, one per sequence, laid out as `layout` says), `"prepared"` (TFRecord shards written by
      `jaxres prepare` at `path`) or `"tfds"` (the TFDS dataset `tfds_name` in data_dir `path`).
    - `path`: see `source`.
    - `train_split` / `eval_split`: for folders, a split list (UCF101 `trainlist01.txt` /
      `testlist01.txt` lines, or a `.csv` of `path,label`; relative paths are under `path`), empty
      for every video (minus `holdout_fraction`); for frames a sequence list (first token of a line
      the sequence folder: BasicSR `meta_info` files, Vimeo's `sep_trainlist.txt`; MMAction2's
      `path num_frames label` for rawframes); for prepared data the split name written by
      `jaxres prepare`; for TFDS a split string (`"train"`, `"test[:50%]"`).
    - `holdout_fraction`: without split lists, every `1/holdout_fraction`-th video of each class
      (in sorted order) is held out for eval; 0 means train and eval both use all videos.
    - `layout`: for frames, `"sequences"` (every folder of images under `path`: REDS, Vid4),
      `"vimeo"` (Vimeo-90K septuplets, `path/sequences/...`, lists default to `sep_trainlist.txt` /
      `sep_testlist.txt` in `path`) or `"rawframes"` (MMAction2: `path/<class>/<video>/` frames,
      or annotation lists); see `jaxres.data.sequences`.
    - `frame_pattern`: for frames, the glob a sequence's images match (`"img_*"` for MMAction2
      folders that hold optical flow too); frame k is the k-th match in natural name order.
    - `holdout_sequences`: for frames without lists, the sequences (relative to `path`) that form
      the eval split and are left out of train, e.g. REDS4 `("000", "011", "015", "020")`.
    - `lr_path`: for frames, a folder mirroring `path` with LR frames of the same names (REDS
      `train_sharp_bicubic/X4`): batches then carry them as `"lr"`, cropped in step with the HR
      `"video"`, instead of the task degrading HR on device. Needs `resize = 0`.
    - `lr_scale`: the factor between `path` and `lr_path` frames (HR side = `lr_scale` x LR side);
      also checked against prepared data holding paired LR frames (`jaxres prepare --lr`), which
      yields `"lr"` the same way.
    - `tfds_name`, `tfds_video_key`, `tfds_label_key`, `tfds_fps`: TFDS dataset name, feature keys,
      and the frame rate to assume when the dataset stores none.
    - `num_frames`: frames per clip. `frame_stride`: step between clip frames on the video's grid.
      `target_fps`: when > 0, sample at this rate instead (stride = fps / target_fps).
    - `resize`: short side (pixels) frames are resized to before cropping; 0 keeps each video's
      own resolution (super-resolution), upsizing only a short side below `crop_size`.
      `crop_size`: square crop.
    - `scale_jitter`: `(min, max)` factors on `resize` drawn per training clip (1, 1 = none).
    - `flip`: random horizontal flips in training. Off by default: a mirror turns the demo's
      `left` videos into `right` ones, so it is refused for the demo source; turn it on for
      natural video (Kinetics, UCF101).
    - `rotate`: random vertical flips and transposes (H <-> W) of training crops, each with
      probability 1/2 (with `flip`: BasicSR's `augment(hflip, rotation)`, the SR recipes' default).
      Refused for the demo source, like `flip`.
    - `mirror`: training clips are followed by their frames in reverse (`2 x num_frames` frames:
      BasicSR's `flip_sequence`, MMagic's `MirrorSequence`, for recurrent SR on Vimeo-90K's
      7-frame septuplets). Eval clips stay as read.
    - `mean`, `std`: per-channel normalisation of [0, 1] pixels (0 and 1 keep [0, 1], as
      super-resolution needs).
    - `eval_clips`: uniformly spaced clips per video in eval. `eval_crops`: 1 (centre) or 3 (both
      ends and centre along the long side); logits are averaged per `video_id` by the engine.
    - `short_video`: `"loop"` (repeat frames) or `"skip"` (count and drop) for videos shorter than
      a clip.
    - `shuffle_buffer`: examples in the shuffle buffer. `num_parallel_calls`: map/interleave
      parallelism (-1 = AUTOTUNE). `cache`: keep what is read in memory, for small datasets:
      videos (`demo`, `folder`) are decoded whole once and clips taken from the kept frames
      (`jaxres.data.clips.DecodedVideos`: the same pixels, frames x H x W x 3 bytes per video);
      prepared and TFDS records are kept parsed.
      `device_prefetch`: batches put on devices ahead of the step.
    - `demo`: the built-in data. `kind`: `"motion"` (`jaxres.data.demo.write_demo_dataset`, the
      classification demo, with `num_classes`, `videos_per_class`, `num_frames`, `size`, `seed`)
      or `"photos"` (`jaxres.data.photo_demo.write_photo_dataset`, the SR demo's pans over
      scikit-image's photographs, with `videos_per_class` pans per training photo of
      `num_frames` frames of `size` x `size`, and `seed`).

    Batches are the same for every task (`{"video", "label"}`, eval adds `video_id` and `mask`,
    paired frames add `"lr"`); what a task needs beyond that (e.g. super-resolution's LR frames
    when none are given) it makes on device.

  Example:
    >>> config = default_data_config(); config.eval_clips, config.eval_crops = 5, 3
  """
  c = ml_collections.ConfigDict()
  c.source = "demo"
  c.path = ""
  c.train_split = ""
  c.eval_split = ""
  c.holdout_fraction = 0.0
  c.layout = "sequences"
  c.frame_pattern = "*"
  c.holdout_sequences = ()
  c.lr_path = ""
  c.lr_scale = 4
  c.tfds_name = ""
  c.tfds_video_key = "video"
  c.tfds_label_key = "label"
  c.tfds_fps = 25.0

  c.num_frames = 16
  c.frame_stride = 1
  c.target_fps = 0.0
  c.resize = 128
  c.crop_size = 112
  c.scale_jitter = (1.0, 1.0)
  c.flip = False
  c.rotate = False
  c.mirror = False
  c.mean = (0.43216, 0.394666, 0.37645)
  c.std = (0.22803, 0.22145, 0.216989)
  c.eval_clips = 1
  c.eval_crops = 1
  c.short_video = "loop"

  c.shuffle_buffer = 128
  c.num_parallel_calls = -1
  c.cache = False
  c.device_prefetch = 2

  c.demo = ml_collections.ConfigDict()
  c.demo.kind = "motion"
  c.demo.num_classes = 4
  c.demo.videos_per_class = 32
  c.demo.num_frames = 16
  c.demo.size = 64
  c.demo.seed = 0
  return c


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
    raise ValueError("data.target_fps needs a frame rate, which frame folders do not have; set "
                     "data.target_fps = 0 and step through frames with data.frame_stride.")
  if config.lr_path:
    if config.source != "frames":
      raise ValueError(f"data.lr_path (paired LR frames) needs data.source = 'frames', got "
                       f"{config.source!r}.")
    if not isinstance(config.lr_scale, int) or config.lr_scale < 1:
      raise ValueError(f"data.lr_scale must be a positive int, got {config.lr_scale!r}.")
    if config.resize or tuple(config.scale_jitter) != (1.0, 1.0):
      raise ValueError("Paired LR frames (data.lr_path) are cropped at their own resolution: set "
                       "data.resize = 0 and data.scale_jitter = (1.0, 1.0).")
    if config.crop_size % config.lr_scale:
      raise ValueError(f"data.crop_size={config.crop_size} is not a multiple of "
                       f"data.lr_scale={config.lr_scale}; LR and HR crops would not align.")
  if config.short_video not in SHORT_VIDEO_POLICIES:
    raise ValueError(f"data.short_video must be one of {SHORT_VIDEO_POLICIES}.")
  if config.eval_crops not in (1, 3):
    raise ValueError(f"data.eval_crops must be 1 or 3, got {config.eval_crops}.")
  if config.num_frames < 1 or config.frame_stride < 1 or config.eval_clips < 1:
    raise ValueError("data.num_frames, frame_stride and eval_clips must be >= 1.")
  if config.crop_size < 1 or config.resize < 0:
    raise ValueError(f"data.crop_size must be >= 1 and data.resize >= 0 (0: native), got "
                     f"{config.crop_size} and {config.resize}.")
  if config.resize and config.crop_size > config.resize * min(config.scale_jitter):
    raise ValueError(f"data.crop_size {config.crop_size} exceeds the smallest resized short side "
                     f"{config.resize} x {min(config.scale_jitter)}.")
  if demo_kind(config) not in DEMO_KINDS:
    raise ValueError(f"data.demo.kind must be one of {DEMO_KINDS}, got {demo_kind(config)!r}.")
  if config.source == "demo" and demo_kind(config) == "motion" and config.flip:
    raise ValueError("data.flip would mirror the demo's motion directions (left <-> right) and so "
                     "corrupt its labels; keep flip off for source 'demo' (demo.kind 'motion').")
  if config.source == "demo" and demo_kind(config) == "motion" and config.rotate:
    raise ValueError("data.rotate would turn the demo's motion directions and so corrupt its "
                     "labels; keep rotate off for source 'demo' (demo.kind 'motion').")
  if len(config.mean) != 3 or len(config.std) != 3:
    raise ValueError("data.mean and data.std need 3 values.")
