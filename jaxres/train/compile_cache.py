"""XLA's persistent compilation cache, on by default for training runs.

Compiling the train and eval steps is most of a short run's start-up (tens of seconds for a video
ResNet on CPU, minutes on large pod programs); the cache keeps the compiled programs on disk, keyed
on the program, the compiler flags, the devices and jax's version, so a second run of the same
config (a resumed or repeated one) loads them instead. `config.compilation_cache_dir` names the
folder (default `$XDG_CACHE_HOME/jaxres/xla`, else `~/.cache/jaxres/xla`); "" turns it off. A
`JAX_COMPILATION_CACHE_DIR` set in the environment wins (the test suite uses its own).

Example:
  >>> enable_compilation_cache(config.compilation_cache_dir)
"""

from __future__ import annotations

import os

import jax

# `$XDG_CACHE_HOME/jaxres/xla`, else `~/.cache/jaxres/xla`: config data, so the configs hold it.
from jaxres.configs.defaults import default_cache_dir  # noqa: F401  (re-exported)


def enable_compilation_cache(path: str) -> str | None:
  """Points jax's persistent compilation cache at `path` (created if missing) unless the
  environment already chose one; call before the first compilation.

  Args:
    path: the cache folder; "" or None leaves the cache as it is (off unless configured).

  Returns:
    The folder in use, or None when the cache is off.

  Example:
    >>> enable_compilation_cache(os.path.expanduser("~/.cache/jaxres/xla"))
  """
  if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    return os.environ["JAX_COMPILATION_CACHE_DIR"]
  if not path:
    return jax.config.jax_compilation_cache_dir
  path = os.path.expanduser(path)
  os.makedirs(path, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", path)
  return path
