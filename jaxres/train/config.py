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
    module_spec.loader.exec_module(module)
  elif name := shipped_name(path):
    module = importlib.import_module(f"{SHIPPED_PACKAGE}.{name}")
  else:
    raise FileNotFoundError(
      f"No config file {path!r}, and no shipped config of that name. Pass the path of a Python "
      f"file with get_config(), or one of: {', '.join(shipped_names())}."
    )
  config = with_defaults(module.get_config())
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
