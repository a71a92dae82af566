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


class UnreadableWeightsError(ValueError):
  """A weights file could not be read as a PyTorch state dict; the message says why and what to do."""


def load_torch_state_dict(path: str) -> dict[str, Any]:
  """Reads a PyTorch state dict: a `.pth` holding one, or a checkpoint holding it under
  `model_state` (PyTorchVideo's / PySlowFast's `.pyth`), `state_dict` (mmagic) or `params` (BasicSR).

  Only tensors and plain containers are unpickled (`torch.load(..., weights_only=True)`): a whole
  pickled model would run arbitrary code when loaded, so it is refused. Needs torch.

  Args:
    path: the file.

  Returns:
    The state dict (key -> torch tensor).

  Raises:
    ImportError: torch is not installed.
    FileNotFoundError: no file at `path`.
    UnreadableWeightsError: a pickled model, not a PyTorch file, or no state dict inside.

  Example:
    >>> state_dict = load_torch_state_dict("SLOW_8x8_R50.pyth")   # its "model_state"
  """
  try:
    import torch
  except ImportError:
    raise ImportError("Reading .pth/.pyth files needs PyTorch: pip install 'jaxres[torch]'.") from None
  import pickle
  if not os.path.isfile(path):
    raise FileNotFoundError(f"no such file {path!r}.")
  try:
    loaded = torch.load(path, map_location="cpu", weights_only=True)
  except pickle.UnpicklingError:  # what weights_only=True raises for pickled objects
    raise UnreadableWeightsError(
        f"{path!r} holds pickled Python objects (a whole model?), which are not loaded; save "
        "torch.save(model.state_dict(), PATH) and convert that.") from None
  except Exception as error:  # torch raises many kinds for non-PyTorch input
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
    raise UnreadableWeightsError(f"cannot read {path!r} as a PyTorch file: {reason}") from None
  if isinstance(loaded, dict):
    for key in ("model_state", "state_dict", "params", "params_ema"):
      if isinstance(loaded.get(key), dict):
        return loaded[key]
    if loaded and all(hasattr(v, "shape") for v in loaded.values()):
      return loaded
  raise UnreadableWeightsError(
      f"{path!r} holds no state dict (a dict of tensors, or one under 'model_state', "
      f"'state_dict', 'params' or 'params_ema'); found {type(loaded).__name__}"
      + (f" with keys {', '.join(map(str, list(loaded)[:8]))}" if isinstance(loaded, dict) else "")
      + ".")
