"""Loading config files with `--config.key=value` overrides, and filling in keys a config lacks.

Config files define `get_config()` returning a `ConfigDict`; they start from `default_config()` and
override what their experiment changes. The defaults and the shared recipes are config data and live
in `jaxres.configs.common` (re-exported here for config files that import them from this module).
The shipped configs live in the `jaxres.configs` package and are loaded by name ("demo",
"sr_edsr_demo"); any other file by its path. Loaded configs are locked: setting a key that does not
exist is an error that names it (and the closest existing key). Keys a config file lacks (one written
for an earlier version) get their defaults (`with_defaults`), so readers read `config.KEY`.

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

# The shipped configs' package: listed by `jaxres.configs` (standard library only), each imported by
# its module name when loaded.
from jaxres.configs import CONFIGS_DIR, shipped_name  # noqa: F401 (CONFIGS_DIR: re-exported)
from jaxres.configs import names as shipped_names

# Re-exported: config files written for earlier versions import these from here.
from jaxres.configs.common import (  # noqa: F401
  VIDEO_DATASETS,
  cifar10_recipe,
  default_config,
  torchvision_video_recipe,
)

# Where a config lacking keys (saved by an earlier version) gets their defaults.
from jaxres.configs.defaults import with_defaults

SHIPPED_PACKAGE = "jaxres.configs"


def load_config(
  path: str | None = None, overrides: Sequence[str] = ()
) -> ml_collections.ConfigDict:
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
    ValueError: the file raises, has a syntax error, lacks `get_config` or it returns no
      ConfigDict; or a value is out of range (`check_values`); one line naming file or key.

  Example:
    >>> config = load_config("ucf101_r2plus1d_18", ["--config.global_batch_size=32"])
    >>> config = load_config("my_configs/experiment.py")
  """
  path = path or "demo"
  if os.path.isfile(path):
    module_spec = importlib.util.spec_from_file_location("jaxres_config", path)
    if module_spec is None:
      raise FileNotFoundError(
        f"Config file {path!r} is not a Python file (*.py with get_config())."
      )
    module = importlib.util.module_from_spec(module_spec)
    try:
      module_spec.loader.exec_module(module)
    except SyntaxError as e:
      raise ValueError(
        f"Config file {path!r} has a syntax error at line {e.lineno}: {e.msg}."
      ) from e
    except Exception as e:  # noqa: BLE001 - whatever the file raises, one line naming it
      raise ValueError(f"Config file {path!r} raised {_one_line(e)} while loading.") from e
  elif name := shipped_name(path):
    module = importlib.import_module(f"{SHIPPED_PACKAGE}.{name}")
  else:
    raise FileNotFoundError(
      f"No config file {path!r}, and no shipped config of that name. Pass the path of a Python "
      f"file with get_config(), or one of: {', '.join(shipped_names())}."
    )
  config = with_defaults(_call_get_config(module, path))
  config.lock()
  for item in overrides:
    apply_override(config, item)
  check_values(config)
  return config


def _one_line(error: BaseException) -> str:
  text = str(error).strip()
  return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def _call_get_config(module, path: str) -> ml_collections.ConfigDict:
  """`module.get_config()`, or a ValueError naming `path` when it lacks one, raises, or returns
  something other than a ConfigDict."""
  get_config = getattr(module, "get_config", None)
  if not callable(get_config):
    raise ValueError(
      f"Config file {path!r} defines no get_config(); add one returning a ConfigDict."
    )
  try:
    config = get_config()
  except Exception as e:  # noqa: BLE001 - whatever get_config raises, one line naming the file
    raise ValueError(f"Config file {path!r}: get_config() raised {_one_line(e)}.") from e
  if not isinstance(config, ml_collections.ConfigDict):
    raise ValueError(
      f"Config file {path!r}: get_config() returned {type(config).__name__}, not an "
      "ml_collections.ConfigDict (start from default_config() and return it)."
    )
  return config


# Numeric keys and the values that make sense for them: (dotted key, test, the allowed range as
# said to the user). Keys a config lacks (another model's or task's arguments) are not checked.
_VALUE_RULES = (
  ("global_batch_size", lambda v: v >= 1, ">= 1"),
  ("grad_accum_steps", lambda v: v >= 1, ">= 1"),
  ("num_train_steps", lambda v: v >= 0, ">= 0"),
  ("optimizer.learning_rate", lambda v: v > 0, "> 0"),
  ("optimizer.reference_batch_size", lambda v: v >= 0, ">= 0 (0: no scaling)"),
  ("optimizer.momentum", lambda v: 0 <= v < 1, "in [0, 1)"),
  ("optimizer.weight_decay", lambda v: v >= 0, ">= 0"),
  ("optimizer.b1", lambda v: 0 <= v < 1, "in [0, 1)"),
  ("optimizer.b2", lambda v: 0 <= v < 1, "in [0, 1)"),
  ("optimizer.eps", lambda v: v >= 0, ">= 0"),
  ("optimizer.trust_coefficient", lambda v: v > 0, "> 0"),
  ("optimizer.grad_clip_norm", lambda v: v >= 0, ">= 0 (0: no clipping)"),
  ("schedule.warmup_steps", lambda v: v >= 0, ">= 0"),
  ("schedule.decay_factor", lambda v: v > 0, "> 0"),
  ("ema_decay", lambda v: 0 <= v < 1, "in [0, 1) (0: no EMA)"),
  ("parallel.fsdp_min_size", lambda v: v >= 0, ">= 0"),
  ("parallel.num_devices", lambda v: v == -1 or v >= 1, "-1 (every device) or >= 1"),
  ("checkpoint.every_steps", lambda v: v >= 0, ">= 0 (0: only at the end)"),
  ("checkpoint.keep", lambda v: v >= 1, ">= 1"),
  ("checkpoint.keep_best", lambda v: v >= 0, ">= 0 (0: off)"),
  ("log_every_steps", lambda v: v >= 1, ">= 1"),
  ("eval_every_steps", lambda v: v >= 0, ">= 0 (0: only at the end)"),
  ("eval_steps", lambda v: v == -1 or v >= 1, "-1 (the whole eval split) or >= 1"),
  ("precise_bn_batches", lambda v: v >= 0, ">= 0 (0: off)"),
  ("data.num_frames", lambda v: v >= 1, ">= 1"),
  ("data.crop_size", lambda v: v >= 1, ">= 1"),
  ("data.resize", lambda v: v >= 0, ">= 0 (0: keep)"),
  ("task.label_smoothing", lambda v: 0 <= v < 1, "in [0, 1)"),
  ("task.mixup_alpha", lambda v: v >= 0, ">= 0 (0: off)"),
  ("task.cutmix_alpha", lambda v: v >= 0, ">= 0 (0: off)"),
  ("model.num_classes", lambda v: v >= 1, ">= 1"),
  ("model.scale", lambda v: v >= 1, ">= 1"),
)


def check_values(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the first numeric key whose value makes no sense (a negative
  learning rate, a batch of 0), before anything is built or trained.

  Args:
    config: a loaded config.

  Raises:
    ValueError: one line naming the key, its value and the allowed range.

  Example:
    >>> check_values(load_config("demo", ["--config.optimizer.learning_rate=-0.1"]))
    Traceback (most recent call last):
    ValueError: Config key 'optimizer.learning_rate' must be > 0, got -0.1 (...)
  """
  for key, allowed, said in _VALUE_RULES:
    node = config
    for name in key.split("."):
      node = node.get(name) if isinstance(node, ml_collections.ConfigDict) else None
    if node is None or isinstance(node, bool) or not isinstance(node, (int, float)):
      continue
    if not allowed(node):
      raise ValueError(
        f"Config key '{key}' must be {said}, got {node!r} (--config.{key}=VALUE sets it)."
      )


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
    keys += (
      _keys(value, f"{prefix}{name}.")
      if isinstance(value, ml_collections.ConfigDict)
      else [prefix + name]
    )
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
  for match in (
    lambda k: k in local and initials(k) == leaf and "_" in leaf_of(k),
    lambda k: leaf_of(k) == leaf,  # the right name in another section
    lambda k: initials(k) == leaf and "_" in leaf_of(k),
  ):
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
  key, value = text[len("config.") :].split("=", 1)
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
