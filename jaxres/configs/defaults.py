"""Every config key with its default: the training config and its data section.

Config data only (ml_collections and the standard library): the shipped configs and the recipes in
`jaxres.configs.common` start from `default_config()`, and nothing here imports the training
engine, the data pipeline or the tasks. `with_defaults` fills in the keys a config saved by an
earlier version lacks; `jaxres.train.config` loads configs, `jaxres.data.config` validates the data
section.

Example:
  >>> config = default_config()
  >>> config.grad_accum_steps, config.data.source
  (1, 'demo')
"""

from __future__ import annotations

import os

import ml_collections


def default_config() -> ml_collections.ConfigDict:
  """Every key the training engine reads, with defaults; experiments override some of them.

  Returns:
    An unlocked `ConfigDict` (`load_config` locks it).

  Example:
    >>> config = default_config()
    >>> config.model.name = "r2plus1d_18"
  """
  c = ml_collections.ConfigDict()
  c.seed = 0
  # Model: `name` picks it from jaxres.models, every other key is a constructor argument
  # (dtype/param_dtype as strings: "bfloat16" computes in bf16, parameters stay float32).
  # conv_lowering: "auto" (matmul lowerings on CPU, XLA's convolution elsewhere) or one of
  # jaxres.models.conv.LOWERINGS for every convolution, e.g. "native" (ResNets only).
  # remat: "none", "block" (recompute each residual block's activations in the backward pass,
  # keeping only its input) or a jax.checkpoint_policies name such as "dots_saveable" (keep the
  # convolutions' outputs, recompute the element-wise work): less memory for more compute.
  c.model = ml_collections.ConfigDict(
    {
      "name": "r3d_tiny",
      "num_classes": 10,
      "dtype": "float32",
      "conv_lowering": "auto",
      "remat": "none",
    }
  )
  # Task arguments (jaxres.tasks): label_smoothing, mixup_alpha, cutmix_alpha for classification;
  # scale, loss, blur_sigma, noise_sigma for super-resolution (`jaxres.configs.common.
  # super_resolution_recipe` ties task.scale and data.lr_scale to model.scale).
  c.task = ml_collections.ConfigDict(
    {"label_smoothing": 0.0, "mixup_alpha": 0.0, "cutmix_alpha": 0.0}
  )
  c.data = default_data_config()
  # Train on in-memory synthetic batches of shape data.num_frames x data.crop_size^2 instead of
  # the pipeline (for timing the step without I/O, and for tests).
  c.synthetic_data = False

  c.global_batch_size = 16
  # Split each global batch into this many micro-batches run in sequence inside the one compiled
  # step (gradients averaged, one optimiser update): the memory of a batch k times smaller.
  # The batch must divide by grad_accum_steps x devices; see jaxres.train.steps for BatchNorm.
  c.grad_accum_steps = 1
  c.num_train_steps = 1000
  c.optimizer = ml_collections.ConfigDict(
    {
      "name": "sgd",
      "learning_rate": 0.1,
      "reference_batch_size": 0,
      "momentum": 0.9,
      "nesterov": False,
      "weight_decay": 1e-4,
      "b1": 0.9,
      "b2": 0.999,
      "eps": 1e-8,
      "trust_coefficient": 0.001,
      "grad_clip_norm": 0.0,
      # Parameter groups (jaxres.train.param_groups): regular expressions searched in parameter
      # paths such as "layer4_1/conv2/kernel". frozen: never updated (nor their BatchNorm
      # statistics); trainable: when set, everything else is frozen; lr_multipliers:
      # ((pattern, factor), ...) on the update; frozen_until: ((pattern, step), ...) fixed before.
      "frozen": (),
      "trainable": (),
      "lr_multipliers": (),
      "frozen_until": (),
    }
  )
  # Start from other weights: a jaxres.weights name ("r3d_18.kinetics400"), a .msgpack/.pth/.pyth
  # file, or a run folder (RUN or RUN@STEP). Matching parameters and statistics are loaded, a
  # classifier of another class count is initialised afresh, the optimiser starts anew
  # (jaxres.train.init_from). A resumed run continues from its own checkpoints. init_fresh:
  # patterns of parameter paths that keep their fresh initialisation, e.g. ("^fc/",).
  c.init_from = ""
  c.init_fresh = ()
  c.schedule = ml_collections.ConfigDict(
    {"name": "cosine", "warmup_steps": 0, "boundaries": (), "decay_factor": 0.1}
  )
  c.ema_decay = 0.0  # > 0 keeps EMA parameters, which evaluation then uses

  # mode "jit" (NamedSharding on a mesh) or "pmap"; fsdp splits parameters and optimiser state
  # over the devices; num_devices -1 uses every device of every host. mesh {"data": d, "fsdp": f}
  # (one of them -1: the rest) makes a two-axis mesh: batches split over all d x f devices,
  # parameters and optimiser state over the f devices of each "fsdp" group (d replicas).
  c.parallel = ml_collections.ConfigDict(
    {
      "mode": "jit",
      "fsdp": False,
      "fsdp_min_size": 2**12,
      "num_devices": -1,
      "mesh": ml_collections.ConfigDict({"data": -1, "fsdp": 1}),
    }
  )
  c.checkpoint = ml_collections.ConfigDict(
    {
      "every_steps": 200,
      "keep": 2,
      "keep_best": 1,
      "best_metric": "accuracy",
      "best_mode": "max",
      "async_save": True,
    }
  )
  c.log_every_steps = 20
  c.eval_every_steps = 500  # 0: only at the end
  c.eval_steps = -1  # batches per evaluation (-1: the whole eval split)
  # Precise BatchNorm (PySlowFast's BN.NUM_BATCHES_PRECISE; jaxres.train.precise_bn): before each
  # evaluation, and so before the final checkpoint, the running statistics are recomputed as the
  # true mean and variance over this many training batches with the parameters fixed; 0: off.
  c.precise_bn_batches = 0
  # XLA's persistent compilation cache (jaxres.train.compile_cache): a repeated or resumed run
  # loads its compiled steps instead of compiling them again; "" turns it off.
  c.compilation_cache_dir = default_cache_dir()
  # (first, last) train steps to trace with jax.profiler into <workdir>/profile (TensorBoard's
  # profile plugin opens it); () traces nothing.
  c.profile_steps = ()
  c.progress_bar = True
  c.tensorboard = True  # TensorBoard event files besides metrics.jsonl
  c.plot = True  # training-curve PNG at the end
  return c


# Sections that hold one model's or task's own constructor arguments: another model takes other
# arguments, so these are kept as they are (the constructors have the defaults).
_ARGUMENT_SECTIONS = ("model", "task")


def with_defaults(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Adds to `config` every key of `default_config()` it lacks, with its default; returns `config`.

  The one place where a config gets keys it lacks: `jaxres.train.config.load_config` calls it, and
  so should whatever reads a config saved by an earlier version of jaxres (a run's `config.json`
  predating `grad_accum_steps`, say), so that readers can read `config.KEY` without a fallback.
  Values present are kept as they are (shared `FieldReference`s included); `model` and `task`
  (constructor arguments of the chosen model and task) are kept whole. A locked config stays locked.

  Args:
    config: a training config, e.g. one read from a run folder's `config.json`.

  Returns:
    `config`, changed in place.

  Example:
    >>> old = ml_collections.ConfigDict(json.load(open("runs/old/config.json")))
    >>> with_defaults(old).grad_accum_steps
    1
  """
  with config.unlocked():
    _fill(config, default_config(), top=True)
  return config


def _fill(
  config: ml_collections.ConfigDict, defaults: ml_collections.ConfigDict, top: bool
) -> None:
  for key, default in defaults.items():
    if key not in config:
      config[key] = default
    elif (
      isinstance(default, ml_collections.ConfigDict)
      and isinstance(config[key], ml_collections.ConfigDict)
      and not (top and key in _ARGUMENT_SECTIONS)
    ):
      _fill(config[key], default, top=False)


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
    - `resize_in_decoder`: training clips from video files are resized by the decoder's scaler
      (swscale's antialiased bilinear filter, while converting each frame to RGB) instead of
      TensorFlow's resize: the same window, pixels within one level of TensorFlow's in 99% of
      the bytes, and a fifth to a quarter less CPU per clip from raw videos
      (`benchmarks/README.md`). Off: the pixels of every other source and of eval views.
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
    - `eval_resize`, `eval_crop_size`: the short side and square crop of eval views (the
      engine's eval, `jaxres eval`, `jaxres predict`), 0 for training's `resize` / `crop_size`.
      Published test protocols often differ from training: PySlowFast resizes the short side to
      256 and takes 3 crops of 256 (its `TEST_CROP_SIZE`) from models trained on 224 crops.
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
      classification demo, with `num_classes`, `videos_per_class`, `num_frames`, `size`, `seed`,
      and `classes`: the motion directions to write, empty for the first `num_classes`)
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
  c.resize_in_decoder = False
  c.flip = False
  c.rotate = False
  c.mirror = False
  c.mean = (0.43216, 0.394666, 0.37645)
  c.std = (0.22803, 0.22145, 0.216989)
  c.eval_resize = 0
  c.eval_crop_size = 0
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
  c.demo.classes = ()
  return c


def default_cache_dir() -> str:
  """XLA's compilation cache folder: `$XDG_CACHE_HOME/jaxres/xla`, else `~/.cache/jaxres/xla`.

  Returns:
    The folder (read from the environment at each call).

  Example:
    >>> default_cache_dir()   # doctest: +SKIP
    '/home/me/.cache/jaxres/xla'
  """
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "jaxres", "xla")
