"""Saving and loading variable trees (`.msgpack` files or orbax checkpoint folders), and reading
PyTorch state dicts."""

from __future__ import annotations

import os
from typing import Any

import flax.serialization
import jax
import numpy as np

from jaxres.atomic_files import atomic_folder, write_atomic
from jaxres.convert.torch_checkpoint import UnreadableWeightsError, read_torch_checkpoint  # noqa: F401 (re-exported)


def save_variables(variables: Any, path: str) -> str:
  """Writes a variable tree to `path`: a `.msgpack` file, or else an orbax checkpoint folder.

  Written whole: the msgpack file under a temporary name then renamed, the checkpoint folder
  built beside and swapped in (`jaxres.atomic_files.atomic_folder`), so an interrupted save leaves
  the old content and never a mix. A symlink is written through to its target.

  Args:
    variables: a pytree of arrays, e.g. `{"params": ..., "batch_stats": ...}`.
    path: destination; its parent folder must exist. An existing file or folder is replaced
      (`jaxres.atomic_files.check_output` says first whether that is allowed).

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
    write_atomic(path, flax.serialization.msgpack_serialize(tree))
  else:
    import orbax.checkpoint as ocp  # imported lazily: it is slow to import.

    with atomic_folder(path) as folder, ocp.StandardCheckpointer() as checkpointer:
      checkpointer.save(folder, tree, force=True)
  return path


def load_variables(path: str, *, step: int | None = None) -> Any:
  """Reads a variable tree written by `save_variables`, or the variables of a training checkpoint.

  Args:
    path: a `.msgpack` file or an orbax checkpoint folder written by `save_variables`; or a
      `jaxres train` run: its folder, its `checkpoints/` folder, one step's folder or that step's
      `default/` item. From a run, the model's `{"params", "batch_stats"}` come back (the EMA
      parameters when the run kept them); `jaxres.load_run` also rebuilds the model.
    step: for a run, the checkpoint step (default: the latest).

  Returns:
    The pytree (numpy arrays).

  Raises:
    FileNotFoundError: nothing at `path`, a folder that holds none of the above (an empty one
      too), or a run without (that step's) complete checkpoint.
    UnreadableCheckpointError: a run's checkpoint that cannot be read (damaged).

  Example:
    >>> variables = load_variables("r3d_18.msgpack")
    >>> variables = load_variables("runs/demo")          # the latest checkpoint's variables
  """
  if not os.path.exists(path):
    raise FileNotFoundError(f"No variables at {path!r}.")
  if os.path.isfile(path):
    with open(path, "rb") as f:
      return flax.serialization.msgpack_restore(f.read())
  if _training_item(os.path.abspath(path), step) is not None:
    return read_run_variables(path, step)[0]
  if not os.path.isfile(os.path.join(path, "_METADATA")):
    raise FileNotFoundError(
      f"{path} holds no variables: expected a folder written by save_variables (with its "
      "_METADATA), a `jaxres train` run folder (with config.json and checkpoints/) or a "
      ".msgpack file."
    )
  import orbax.checkpoint as ocp  # imported lazily: it is slow to import.

  with ocp.StandardCheckpointer() as checkpointer:
    return checkpointer.restore(os.path.abspath(path))


# The parts of a saved `TrainState` that a model needs; the optimiser state and step stay on disk.
_VARIABLE_FIELDS = ("params", "batch_stats", "ema_params")


def restore_training_variables(item: str) -> dict[str, Any]:
  """The model's variables from one training checkpoint, reading nothing else.

  Only `params`, `batch_stats` and `ema_params` are read (orbax's partial restore): the
  optimiser's state, often twice the parameters' size, stays on disk.

  Args:
    item: a checkpoint's item folder, `RUN/checkpoints/STEP/default` (`training_checkpoint`).

  Returns:
    `{"params", "batch_stats"}` as numpy arrays; the EMA parameters as `params` when the run
    kept them.

  Example:
    >>> item, step = training_checkpoint("runs/demo")
    >>> variables = restore_training_variables(item)
  """
  import orbax.checkpoint as ocp  # imported lazily: it is slow to import.
  from etils import epath  # orbax's path type

  handler = ocp.PyTreeCheckpointHandler()
  try:
    saved = handler.metadata(epath.Path(item)).tree
    wanted = {k: saved[k] for k in _VARIABLE_FIELDS if isinstance(saved.get(k), dict) and saved[k]}
    as_numpy = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), wanted)
    tree = handler.restore(
      epath.Path(item),
      args=ocp.args.PyTreeRestore(item=wanted, restore_args=as_numpy, partial_restore=True),
    )
  finally:
    handler.close()
  return {
    "params": tree.get("ema_params") or tree["params"],
    "batch_stats": tree.get("batch_stats") or {},
  }


def checkpoint_error_line(error: BaseException) -> str:
  """The first line of an orbax/TensorStore error, without the page of JSON that follows it.

  Example:
    >>> checkpoint_error_line(ValueError("Shape mismatch [tensorstore_spec={...}]"))
    'Shape mismatch'
  """
  text = str(error).strip() or type(error).__name__
  for spec in (" [tensorstore_spec", " See full TensorStore details"):
    text = text.split(spec)[0]
  return text.splitlines()[0]


def training_checkpoint(run: str, step: int | None = None) -> tuple[str, int]:
  """The item folder of a `jaxres train` checkpoint and its step.

  Args:
    run: the run folder, its `checkpoints/` folder, one step's folder or its `default/` item.
    step: the checkpoint step (default: the latest; ignored when `run` names one step).

  Returns:
    `(item folder, step)`.

  Raises:
    FileNotFoundError: not a run's folder, or no checkpoint (of that step) in it.

  Example:
    >>> training_checkpoint("runs/demo")
    ('/abs/runs/demo/checkpoints/200/default', 200)
  """
  item = _training_item(os.path.abspath(run), step)
  if item is None:
    raise FileNotFoundError(f"No checkpoints in {run}: is it the workdir of `jaxres train`?")
  return item, int(os.path.basename(os.path.dirname(item)))


class UnreadableCheckpointError(ValueError):
  """A complete training checkpoint that cannot be read (damaged), named in one line."""


# Written last by orbax's CheckpointManager into a step folder (and its item), once it is whole.
COMMIT_MARKER = "commit_success.txt"


def is_complete_step(step_dir: str, *, marked: bool = True) -> bool:
  """Whether a CheckpointManager step folder holds a finished checkpoint.

  Orbax writes a step under a temporary name (`<step>.orbax-checkpoint-tmp-...`, never a step
  here) and finishes it with its metadata and commit marker; its garbage collection deletes old
  steps file by file. A step is complete when its `_CHECKPOINT_METADATA`, its item's `_METADATA`
  and (when `marked`: the writer leaves markers, as orbax 0.12 does) `commit_success.txt` are there.

  Example:
    >>> is_complete_step("runs/demo/checkpoints/200")
    True
  """
  return (
    os.path.isfile(os.path.join(step_dir, "_CHECKPOINT_METADATA"))
    and os.path.isfile(os.path.join(step_dir, "default", "_METADATA"))
    and (not marked or os.path.isfile(os.path.join(step_dir, COMMIT_MARKER)))
  )


def complete_steps(folder: str) -> list[int]:
  """The steps of a run's `checkpoints/` folder whose checkpoints are complete, ascending.

  Folders that are not steps (orbax's temporary ones), and steps still being written or being
  deleted, are left out. Commit markers are required once any step has one (older orbax wrote
  none).

  Example:
    >>> complete_steps("runs/demo/checkpoints")
    [100, 200]
  """
  try:
    names = [n for n in os.listdir(folder) if n.isdigit()]
  except FileNotFoundError:
    return []
  marked = any(os.path.isfile(os.path.join(folder, n, COMMIT_MARKER)) for n in names)
  return sorted(int(n) for n in names if is_complete_step(os.path.join(folder, n), marked=marked))


def _files_under(folder: str) -> set[str]:
  return {os.path.join(d, f) for d, _, names in os.walk(folder) for f in names}


def read_run_variables(run: str, step: int | None = None) -> tuple[dict[str, Any], int]:
  """The model's variables from a run's newest complete checkpoint (or `step`'s), and its step.

  Safe while the run's training writes checkpoints: only complete steps are chosen, and when the
  newest one disappears or is deleted in part while it is read (orbax's garbage collection of old
  steps), the next newest complete step is read instead. A step that fails while it stays whole is
  damaged, and is reported, not skipped.

  Args:
    run: the run folder, its `checkpoints/` folder, one step's folder or its `default/` item.
    step: the checkpoint step (default: the newest complete one; ignored when `run` names one).

  Returns:
    `(variables, step)`, the variables as `restore_training_variables` gives them.

  Raises:
    FileNotFoundError: not a run's folder, or no complete checkpoint (of that step) in it.
    UnreadableCheckpointError: the chosen checkpoint is whole but cannot be read.

  Example:
    >>> variables, step = read_run_variables("runs/demo")
  """
  item, chosen = training_checkpoint(run, step)
  folder = os.path.dirname(os.path.dirname(item))
  named = os.path.abspath(run) in (item, os.path.dirname(item))  # one step's folder, or its item
  newest = step is None and not named
  gone: list[int] = []
  while True:
    step_dir = os.path.dirname(item)
    files = _files_under(step_dir)
    try:
      return restore_training_variables(item), chosen
    except Exception as e:  # orbax/tensorstore raise ValueError, OSError, KeyError, TypeError...
      whole = is_complete_step(step_dir, marked=False) and files <= _files_under(step_dir)
      if not newest or whole or len(gone) >= 8:
        raise UnreadableCheckpointError(
          f"The checkpoint of step {chosen} in {folder} cannot be read (damaged?): "
          f"{checkpoint_error_line(e)}"
        ) from e
      gone.append(chosen)  # deleted (in part) while read: the next newest complete one
    older = [s for s in complete_steps(folder) if s not in gone]
    if not older:
      raise FileNotFoundError(
        f"No complete checkpoint in {folder}: step(s) {', '.join(map(str, gone))} were deleted "
        "while read (is training still running? try again)."
      )
    chosen = older[-1]
    item = os.path.join(folder, str(chosen), "default")


def _training_item(path: str, step: int | None) -> str | None:
  """The `default/` item of a training checkpoint that `path` names (None: not a training one).

  `jaxres train` saves whole train states with an orbax CheckpointManager:
  `RUN/checkpoints/STEP/default/`.
  """
  if os.path.basename(path) == "default" and os.path.isfile(
    os.path.join(os.path.dirname(path), "_CHECKPOINT_METADATA")
  ):
    return path
  if os.path.isdir(os.path.join(path, "default")) and os.path.isfile(
    os.path.join(path, "_CHECKPOINT_METADATA")
  ):
    return os.path.join(path, "default")
  folder = os.path.join(path, "checkpoints")
  if not os.path.isdir(folder):
    if (
      not os.path.isfile(os.path.join(path, "config.json"))
      and os.path.basename(path) != "checkpoints"
    ):
      return None  # a folder written by save_variables
    folder = path if os.path.basename(path) == "checkpoints" else folder
  steps = complete_steps(folder)
  if step is None and not steps:
    raise FileNotFoundError(
      f"No complete checkpoint in {folder}: has `jaxres train` saved one yet?"
    )
  if step is not None and step not in steps:
    raise FileNotFoundError(
      f"No checkpoint of step {step} in {folder}; its steps are "
      f"{', '.join(map(str, steps)) or 'none'}."
    )
  return os.path.join(folder, str(steps[-1] if step is None else step), "default")


def load_torch_state_dict(path: str) -> dict[str, Any]:
  """Reads a PyTorch state dict: a `.pth` holding one, or a checkpoint holding it under
  `model_state` (PyTorchVideo's / PySlowFast's `.pyth`), `state_dict` (mmagic) or `params` (BasicSR).

  The file is read by `read_torch_checkpoint`, without torch: only tensors and plain containers
  are unpickled (as `torch.load(..., weights_only=True)` does), so a whole pickled model, which
  would run arbitrary code when loaded, is refused.

  Args:
    path: the file.

  Returns:
    The state dict (key -> numpy array).

  Raises:
    FileNotFoundError: no file at `path`.
    UnsafeCheckpointError: a pickled model or other object (an `UnreadableWeightsError`).
    UnreadableWeightsError: not a PyTorch file, or no state dict inside.

  Example:
    >>> state_dict = load_torch_state_dict("SLOW_8x8_R50.pyth")   # its "model_state"
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"no such file {path!r}.")
  loaded = read_torch_checkpoint(path)
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
    + "."
  )
