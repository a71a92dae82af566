"""The default training config, and loading config files with `--config.key=value` overrides.

Config files define `get_config()` returning a `ConfigDict`; they start from `default_config()` and
override what their experiment changes. The shipped ones live in the `jaxres.configs` package and are
loaded by name ("demo", "sr_edsr_demo"); any other file by its path. Loaded configs are locked:
setting a key that does not exist is an error that names it (and the closest existing key).

Example:
  >>> config = load_config("demo", ["--config.optimizer.learning_rate=0.05"])
  >>> config.optimizer.learning_rat = 1.0    # AttributeError naming the key
"""

from __future__ import annotations

import ast
import difflib
import importlib
import importlib.util
import os
from typing import Any, Sequence

import ml_collections

from jaxres import configs as shipped_configs
from jaxres.configs import CONFIGS_DIR  # re-exported: where the shipped config files are


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
  c.model = ml_collections.ConfigDict({"name": "r3d_tiny", "num_classes": 10, "dtype": "float32",
                                       "conv_lowering": "auto", "remat": "none"})
  # Task arguments (jaxres.tasks): label_smoothing, mixup_alpha, cutmix_alpha for classification;
  # scale, loss, blur_sigma, noise_sigma for super-resolution.
  c.task = ml_collections.ConfigDict({"label_smoothing": 0.0, "mixup_alpha": 0.0, "cutmix_alpha": 0.0})
  c.data = _data_config()
  # Train on in-memory synthetic batches of shape data.num_frames x data.crop_size^2 instead of
  # the pipeline (for timing the step without I/O, and for tests).
  c.synthetic_data = False

  c.global_batch_size = 16
  # Split each global batch into this many micro-batches run in sequence inside the one compiled
  # step (gradients averaged, one optimiser update): the memory of a batch k times smaller.
  # The batch must divide by grad_accum_steps x devices; see jaxres.train.steps for BatchNorm.
  c.grad_accum_steps = 1
  c.num_train_steps = 1000
  c.optimizer = ml_collections.ConfigDict({
      "name": "sgd", "learning_rate": 0.1, "reference_batch_size": 0, "momentum": 0.9,
      "nesterov": False, "weight_decay": 1e-4, "b1": 0.9, "b2": 0.999, "eps": 1e-8,
      "trust_coefficient": 0.001, "grad_clip_norm": 0.0})
  c.schedule = ml_collections.ConfigDict({
      "name": "cosine", "warmup_steps": 0, "boundaries": (), "decay_factor": 0.1})
  c.ema_decay = 0.0  # > 0 keeps EMA parameters, which evaluation then uses

  # mode "jit" (NamedSharding on a mesh) or "pmap"; fsdp splits parameters and optimiser state
  # over the devices; num_devices -1 uses every device of every host. mesh {"data": d, "fsdp": f}
  # (one of them -1: the rest) makes a two-axis mesh: batches split over all d x f devices,
  # parameters and optimiser state over the f devices of each "fsdp" group (d replicas).
  c.parallel = ml_collections.ConfigDict({
      "mode": "jit", "fsdp": False, "fsdp_min_size": 2 ** 12, "num_devices": -1,
      "mesh": ml_collections.ConfigDict({"data": -1, "fsdp": 1})})
  c.checkpoint = ml_collections.ConfigDict({
      "every_steps": 200, "keep": 2, "keep_best": 1, "best_metric": "accuracy", "best_mode": "max",
      "async_save": True})
  c.log_every_steps = 20
  c.eval_every_steps = 500  # 0: only at the end
  c.eval_steps = -1  # batches per evaluation (-1: the whole eval split)
  # XLA's persistent compilation cache (jaxres.train.compile_cache): a repeated or resumed run
  # loads its compiled steps instead of compiling them again; "" turns it off.
  c.compilation_cache_dir = _cache_dir()
  # (first, last) train steps to trace with jax.profiler into <workdir>/profile (TensorBoard's
  # profile plugin opens it); () traces nothing.
  c.profile_steps = ()
  c.progress_bar = True
  c.tensorboard = True  # TensorBoard event files besides metrics.jsonl
  c.plot = True  # training-curve PNG at the end
  return c


def _cache_dir() -> str:
  from jaxres.train.compile_cache import default_cache_dir
  return default_cache_dir()


def _data_config() -> ml_collections.ConfigDict:
  try:
    from jaxres.data.config import default_data_config
  except ImportError:  # the data package is optional for users who feed their own batches
    return ml_collections.ConfigDict()
  return default_data_config()


def load_config(path: str | None = None, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """Loads `get_config()` from a shipped config or a config file, locks it, and applies overrides.

  Args:
    path: a shipped config's name ("demo", "sr_edsr_demo"; see `jaxres.configs.names()`) or a Python
      file with `get_config()`. An existing file wins over a shipped name; a missing
      `configs/<name>.py` means the shipped `<name>`. None: "demo".
    overrides: strings `--config.a.b=value` (or `config.a.b=value`); values are parsed as Python
      literals ("0.1", "(2, 4)", "True"), else taken as strings, and must fit the existing type.

  Returns:
    The locked config.

  Raises:
    FileNotFoundError: `path` is neither a file nor a shipped config (the message lists them).

  Example:
    >>> config = load_config("ucf101_r2plus1d_18", ["--config.global_batch_size=32"])
    >>> config = load_config("my_configs/experiment.py")
  """
  path = path or "demo"
  if os.path.isfile(path):
    module_spec = importlib.util.spec_from_file_location("jaxres_config", path)
    if module_spec is None:
      raise FileNotFoundError(f"Config file {path!r} is not a Python file (*.py with get_config()).")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
  elif name := shipped_configs.shipped_name(path):
    module = importlib.import_module(f"{shipped_configs.__name__}.{name}")
  else:
    raise FileNotFoundError(
        f"No config file {path!r}, and no shipped config of that name. Pass the path of a Python "
        f"file with get_config(), or one of: {', '.join(shipped_configs.names())}.")
  config = module.get_config()
  config.lock()
  for item in overrides:
    apply_override(config, item)
  return config


def _parse(text: str, current: Any) -> Any:
  if isinstance(current, bool):
    if text.lower() not in ("true", "false", "1", "0"):
      raise ValueError(f"expected true/false, got {text!r}")
    return text.lower() in ("true", "1")
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    value = text
  if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
    value = float(value)
  if isinstance(current, str) and not isinstance(value, str):
    value = text
  if isinstance(current, tuple) and isinstance(value, list):
    value = tuple(value)
  if isinstance(current, tuple) and not isinstance(value, tuple):
    value = (value,)
  return value


def _keys(node: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
  keys = []
  for name, value in node.items():
    keys += (_keys(value, f"{prefix}{name}.") if isinstance(value, ml_collections.ConfigDict)
             else [prefix + name])
  return keys


def suggest_key(config: ml_collections.ConfigDict, key: str) -> str | None:
  """The config key most likely meant by the unknown dotted `key`, or None.

  Tried in order: a leaf in the same section whose word initials spell the typed leaf
  (`lr` -> `learning_rate`); the typed leaf in another section; initials anywhere; close spellings of the typed leaf among the leaves in the same
  section, then among all leaf names; close spellings of the whole dotted key (`difflib`).

  Args:
    config: the config the key was looked up in.
    key: the dotted key as typed, e.g. `"optimizer.lr"`.

  Returns:
    A full dotted key of `config`, e.g. `"optimizer.learning_rate"`.

  Example:
    >>> suggest_key(default_config(), "optimizer.lr")
    'optimizer.learning_rate'
  """
  keys = _keys(config)
  section, _, leaf = key.rpartition(".")
  leaf_of = lambda k: k.rpartition(".")[2]
  local = [k for k in keys if k.rpartition(".")[0] == section]
  initials = lambda k: "".join(word[:1] for word in leaf_of(k).split("_"))
  for match in (lambda k: k in local and initials(k) == leaf and "_" in leaf_of(k),
                lambda k: leaf_of(k) == leaf,  # the right name in another section
                lambda k: initials(k) == leaf and "_" in leaf_of(k)):
    found = [k for k in keys if match(k)]
    if found:
      return min(found, key=lambda k: k.count("."))  # model.num_classes, not data.demo.num_classes
  for group in (local, keys):
    close = difflib.get_close_matches(leaf, [leaf_of(k) for k in group], n=1)
    if close:
      return next(k for k in group if leaf_of(k) == close[0])
  close = difflib.get_close_matches(key, keys, n=1)
  return close[0] if close else None


def apply_override(config: ml_collections.ConfigDict, item: str) -> None:
  """Applies one `--config.a.b=value` to a locked config; unknown keys raise KeyError naming them."""
  text = item[2:] if item.startswith("--") else item
  if not text.startswith("config.") or "=" not in text:
    raise ValueError(f"Overrides look like --config.key=value, got {item!r}.")
  key, value = text[len("config."):].split("=", 1)
  *parents, leaf = key.split(".")
  node = config
  for depth, name in enumerate(parents + [leaf]):
    if not isinstance(node, ml_collections.ConfigDict) or name not in node:
      close = suggest_key(config, key)
      hint = f" Did you mean '{close}'?" if close else ""
      raise KeyError(f"Unknown config key '{key}'.{hint}")
    if depth < len(parents):
      node = node[name]
  try:
    node[leaf] = _parse(value, node[leaf])
  except (TypeError, ValueError) as e:
    raise ValueError(f"Bad value for config key '{key}': {e}") from None


# Clips per epoch of the torchvision video recipe: training samples 5 clips per video.
VIDEO_DATASETS = {
    "ucf101": {"num_classes": 101, "train_videos": 9537, "path": "/data/UCF-101",
               "train_split": "ucfTrainTestlist/trainlist01.txt",
               "eval_split": "ucfTrainTestlist/testlist01.txt"},
    "kinetics400": {"num_classes": 400, "train_videos": 240436, "path": "/data/kinetics400",
                    "train_split": "train.csv", "eval_split": "val.csv"},
}


def torchvision_video_recipe(model: str, dataset: str) -> ml_collections.ConfigDict:
  """The torchvision `references/video_classification` recipe for a video ResNet on a dataset.

  16 frames at 15 fps, short side resized to 128, random 112 crops and flips; SGD momentum 0.9,
  weight decay 1e-4, learning rate 0.08 for a global batch of 192 (8 GPUs x 24; scaled linearly
  with `global_batch_size`), 45 epochs of 5 clips per video, 10 epochs of linear warm-up, x0.1 at
  epochs 20, 30, 40; bf16 compute; video accuracy from 5 clips per video at eval.

  Args:
    model: "r3d_18", "mc3_18" or "r2plus1d_18".
    dataset: "ucf101" or "kinetics400" (`data.path` and the split files are placeholders to set).

  Returns:
    The config.

  Example:
    >>> config = torchvision_video_recipe("r2plus1d_18", "kinetics400")
  """
  d = VIDEO_DATASETS[dataset]
  c = default_config()
  c.model.name = model
  c.model.num_classes = d["num_classes"]
  c.model.dtype = "bfloat16"
  c.data.source = "folder"
  c.data.path = d["path"]
  c.data.train_split = d["train_split"]
  c.data.eval_split = d["eval_split"]
  c.data.num_frames = 16
  c.data.target_fps = 15.0
  c.data.resize = 128
  c.data.crop_size = 112
  c.data.eval_clips = 5
  c.global_batch_size = 192
  steps_per_epoch = d["train_videos"] * 5 // c.global_batch_size
  c.num_train_steps = 45 * steps_per_epoch
  c.optimizer.learning_rate = 0.08
  c.optimizer.reference_batch_size = 192
  c.optimizer.weight_decay = 1e-4
  c.schedule.name = "step"
  c.schedule.warmup_steps = 10 * steps_per_epoch
  c.schedule.boundaries = tuple(e * steps_per_epoch for e in (20, 30, 40))
  c.checkpoint.every_steps = steps_per_epoch
  c.checkpoint.best_metric = "video_accuracy"
  c.eval_every_steps = 5 * steps_per_epoch
  c.log_every_steps = 50
  return c


def cifar10_recipe(model: str) -> ml_collections.ConfigDict:
  """He et al. (2015)'s CIFAR-10 recipe for a CIFAR ResNet (`resnet20` ... `resnet110`).

  SGD 0.1, momentum 0.9, weight decay 1e-4, batch 128, 64k steps with x0.1 at 32k and 48k;
  images are 1-frame clips from TFDS "cifar10".

  Args:
    model: the registry name of the network.

  Returns:
    The config.

  Example:
    >>> config = cifar10_recipe("resnet56")
  """
  c = default_config()
  c.model.name = model
  c.model.num_classes = 10
  c.data.source = "tfds"
  c.data.tfds_name = "cifar10"
  c.data.tfds_video_key = "image"
  c.data.eval_split = "test"
  c.data.train_split = "train"
  c.data.num_frames = 1
  c.data.resize = 32
  c.data.crop_size = 32
  c.data.mean = (0.4914, 0.4822, 0.4465)
  c.data.std = (0.2470, 0.2435, 0.2616)
  c.global_batch_size = 128
  c.num_train_steps = 64_000
  c.optimizer.learning_rate = 0.1
  c.optimizer.weight_decay = 1e-4
  c.schedule.name = "step"
  c.schedule.boundaries = (32_000, 48_000)
  c.checkpoint.every_steps = 2_000
  c.eval_every_steps = 2_000
  c.log_every_steps = 100
  return c


def split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
  """Separates `--config.key=value` (or `--config.key value`) items from the other arguments.

  Args:
    argv: command-line arguments.

  Returns:
    `(other arguments, overrides)`, overrides as `--config.key=value` strings for `load_config`.

  Example:
    >>> split_overrides(["--workdir", "r", "--config.seed", "1"])
    (['--workdir', 'r'], ['--config.seed=1'])
  """
  rest, overrides = [], []
  i = 0
  while i < len(argv):
    item = argv[i]
    if item.startswith("--config."):
      if "=" not in item and i + 1 < len(argv):
        item, i = f"{item}={argv[i + 1]}", i + 1
      overrides.append(item)
    else:
      rest.append(item)
    i += 1
  return rest, overrides
