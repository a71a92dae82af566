"""Saving and loading variable trees: `.msgpack` files or orbax checkpoint folders."""

from __future__ import annotations

import os
from typing import Any

import flax.serialization
import jax
import numpy as np


def save_variables(variables: Any, path: str) -> str:
  """Writes a variable tree to `path`: a `.msgpack` file, or else an orbax checkpoint folder.

  The msgpack file is written to a temporary name and renamed, so an interrupted save never leaves
  a partial file under `path`.

  Args:
    variables: a pytree of arrays, e.g. `{"params": ..., "batch_stats": ...}`.
    path: destination; its parent folder must exist. An existing file or folder is replaced.

  Returns:
    The absolute path written.

  Example:
    >>> save_variables(variables, "r3d_18.msgpack")
  """
  path = os.path.abspath(path)
  parent = os.path.dirname(path)
  if not os.path.isdir(parent):
    raise FileNotFoundError(f"Output folder {parent!r} does not exist; create it first.")
  tree = jax.tree_util.tree_map(np.asarray, variables)
  if path.endswith(".msgpack"):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
      f.write(flax.serialization.msgpack_serialize(tree))
    os.replace(tmp, path)
  else:
    import orbax.checkpoint as ocp  # imported lazily: it is slow to import.
    with ocp.StandardCheckpointer() as checkpointer:
      checkpointer.save(path, tree, force=True)
  return path


def load_variables(path: str) -> Any:
  """Reads a variable tree written by `save_variables` (numpy arrays).

  Args:
    path: a `.msgpack` file or an orbax checkpoint folder.

  Returns:
    The pytree.

  Example:
    >>> variables = load_variables("r3d_18.msgpack")
  """
  if not os.path.exists(path):
    raise FileNotFoundError(f"No variables at {path!r}.")
  if os.path.isfile(path):
    with open(path, "rb") as f:
      return flax.serialization.msgpack_restore(f.read())
  import orbax.checkpoint as ocp
  with ocp.StandardCheckpointer() as checkpointer:
    return checkpointer.restore(os.path.abspath(path))
