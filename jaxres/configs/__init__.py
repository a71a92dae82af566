"""The configs shipped with jaxres: one module per experiment, each with `get_config()`.

They are package modules (installed with the wheel), so `jaxres train --config demo` works from any
folder. This module only lists and locates them (standard library only, so `jaxres train --help` can
name them cheaply); `jaxres.train.config.load_config` loads them. What they are made of, the default
config and the shared recipes, is in `jaxres.configs.common` (ml_collections; not imported here),
which is no config itself; neither is `jaxres.configs.defaults`. Configs import nothing from the
training engine, the data pipeline or the tasks (an import-linter contract).

Example:
  >>> from jaxres import configs
  >>> "demo" in configs.names()
  True
  >>> from jaxres.configs import ucf101_r3d_18
  >>> config = ucf101_r3d_18.get_config()
"""

from __future__ import annotations

import os
import pkgutil

# The folder of the shipped config files (inside the installed package).
CONFIGS_DIR = os.path.dirname(os.path.abspath(__file__))
# Modules of the package that are what configs are made of, not configs.
_NOT_CONFIGS = frozenset({"common", "defaults"})


def names() -> list[str]:
  """The names of the shipped configs (e.g. "demo", "sr_edsr_demo"), sorted.

  Returns:
    Module names usable as `--config NAME` or `load_config(NAME)`.

  Example:
    >>> names()[:2]
    ['cifar10_resnet20', 'cifar10_resnet56']
  """
  return sorted(
    m.name for m in pkgutil.iter_modules(__path__) if not m.ispkg and m.name not in _NOT_CONFIGS
  )


def shipped_name(path: str) -> str | None:
  """The shipped config that `path` names, or None.

  A bare name ("demo", "demo.py") names a shipped config, and so does a path into a `configs/`
  folder ("configs/demo.py", from the time the configs lived in the repository's `configs/`
  folder). Callers check first that no such file exists, so a user's own file always wins.

  Args:
    path: what was passed as `--config`.

  Returns:
    The shipped config's module name, or None if `path` names none.

  Example:
    >>> shipped_name("configs/demo.py")
    'demo'
  """
  head, tail = os.path.split(os.path.normpath(path))
  name = tail[:-3] if tail.endswith(".py") else tail
  if head and os.path.basename(head) != "configs":
    return None
  return name if name in names() else None
