"""Checkpoints with orbax: asynchronous saves, keep the last N plus the best by a metric, restore
onto any mesh (the saved sharding does not matter: arrays are restored into the shardings of the
abstract state they are given).

A checkpoint that cannot be read (a truncated or missing array file, a missing `_METADATA`) does not
stop a resume: `restore_newest_intact` moves it to `<directory>.corrupt/<step>` (kept for the user to
inspect, out of the manager's sight so its step can be saved again), names it, and restores the
newest one that reads.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from typing import Any, Callable, Mapping, Optional

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

from jaxres.convert.files import checkpoint_error_line
from jaxres.convert.orbax_reads import (
  ignore_reads_finishing_after_a_failed_restore as _ignore_reads_finishing_after_a_failed_restore,
)

log = logging.getLogger("jaxres.train")


class CheckpointError(ValueError):
  """A checkpoint that cannot be restored: unreadable, or not in the shapes it is restored into.

  Attributes:
    reason: the first line of orbax's error.
  """

  def __init__(self, message: str, reason: str = ""):
    super().__init__(message)
    self.reason = reason


def write_replicated_arrays_whole_on_cpu() -> None:
  """Turns off orbax's replica-parallel saving of `jax.Array`s when JAX runs on CPU devices.

  Orbax splits the write of a replicated array over its replicas by slicing each device's copy:
  one dispatched slice per replica and array. CPU devices share the host's memory, so the slices
  only add work: saving the demo's r3d_tiny state on 8 CPU devices took 5.7 s the first time (784
  slices, each compiled) and 0.5-0.6 s after, against 0.2 s whole (`benchmarks/checkpoint_save.py`);
  a 2-step `jaxres train` there took 18 s. Orbax makes the same choice for GPUs
  (`JAX_PLATFORMS=cuda`); other backends keep orbax's default. The files are the same either way.

  Example:
    >>> write_replicated_arrays_whole_on_cpu()   # Checkpointer() calls it
  """
  if jax.devices()[0].platform != "cpu":
    return
  current = ocp.type_handlers.get_type_handler(jax.Array)
  if not getattr(current, "_use_replica_parallel", False):
    return  # already whole, or a handler of the user's own
  ocp.type_handlers.register_type_handler(
    jax.Array,
    ocp.type_handlers.ArrayHandler(
      # orbax's default handler's per-array metadata store, kept (pinned: orbax 0.12)
      array_metadata_store=getattr(current, "_array_metadata_store", None),
      use_replica_parallel=False,
    ),
    override=True,
  )


class Checkpointer:
  """An orbax `CheckpointManager` over `directory` for whole `TrainState`s.

  Args:
    directory: where step folders are written (created if missing).
    keep: the last `keep` checkpoints are kept.
    keep_best: also keep the `keep_best` best checkpoints by `best_metric` (0: off); only
      checkpoints saved with metrics (after an evaluation) compete.
    best_metric: key of the metrics dict given to `save`.
    best_mode: "max" or "min".
    async_save: write in a background thread; the step loop goes on meanwhile.

  Example:
    >>> ckpt = Checkpointer(f"{workdir}/checkpoints", keep=2, keep_best=1, best_metric="accuracy")
    >>> ckpt.save(100, state, metrics={"accuracy": 0.8})
    >>> state = ckpt.restore(engine.abstract_state(shape))    # latest, onto the engine's mesh
  """

  def __init__(
    self,
    directory: str,
    *,
    keep: int = 2,
    keep_best: int = 0,
    best_metric: str = "accuracy",
    best_mode: str = "max",
    async_save: bool = True,
  ):
    if best_mode not in ("max", "min"):
      raise ValueError(f"best_mode must be 'max' or 'min', got {best_mode!r}.")
    preserve = [policies.LatestN(keep)]
    if keep_best:
      preserve.append(
        policies.BestN(
          get_metric_fn=lambda m: m[best_metric],
          reverse=best_mode == "min",
          n=keep_best,
          keep_checkpoints_without_metrics=False,
        )
      )
    options = ocp.CheckpointManagerOptions(
      preservation_policy=policies.AnyPreservationPolicy(preserve),
      enable_async_checkpointing=async_save,
      create=True,
    )
    write_replicated_arrays_whole_on_cpu()
    self.directory = os.path.abspath(directory)
    self.best_metric = best_metric
    self._manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_step(self) -> Optional[int]:
    """The newest complete checkpoint's step, or None."""
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, step: int, state: Any, *, metrics: Optional[Mapping[str, float]] = None) -> None:
    """Starts saving `state` (global arrays) at `step`; returns before the write ends when async."""
    if metrics is not None and self.best_metric not in metrics:
      metrics = None  # Only metrics that can rank the checkpoint are worth recording.
    self._manager.save(
      step,
      args=ocp.args.StandardSave(state),
      metrics=None if metrics is None else {k: float(v) for k, v in metrics.items()},
      force=True,
    )

  def restore(self, abstract_state: Any, step: Optional[int] = None) -> Any:
    """The state at `step` (default: latest) in the shapes and shardings of `abstract_state`.

    Args:
      abstract_state: the target tree (`jax.ShapeDtypeStruct`s with shardings, or arrays).
      step: the checkpoint's step (default: the latest).

    Returns:
      The restored tree.

    Raises:
      FileNotFoundError: no checkpoint, or none of `step` (the error lists the steps there are).
      CheckpointError: the checkpoint cannot be read or does not fit `abstract_state`.

    Example:
      >>> state = ckpt.restore(engine.abstract_state(shape), step=100)
    """
    steps = self.all_steps()
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"No checkpoint in {self.directory}.")
    if step not in steps:
      raise FileNotFoundError(
        f"No checkpoint of step {step} in {self.directory}; its steps are "
        f"{', '.join(map(str, steps)) or 'none'}."
      )
    _ignore_reads_finishing_after_a_failed_restore()  # before: reads may fail as soon as it starts
    try:
      return self._manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
    except Exception as e:  # orbax/tensorstore raise ValueError, OSError, KeyError, TypeError...
      reason = checkpoint_error_line(e)
      raise CheckpointError(
        f"The checkpoint {self.step_path(step)} cannot be restored (damaged, or written by "
        f"another config): {reason}",
        reason,
      ) from e

  def restore_newest_intact(
    self, abstract_state: Any, report: Callable[[str], None] = log.warning
  ) -> tuple[int, Any]:
    """The newest checkpoint that restores, after moving aside the newer ones that do not.

    A newer checkpoint that fails while an older one restores is damaged (a config that does not
    fit would fail on all of them): it is moved to `<directory>.corrupt/<step>` and named through
    `report`. When none restores, nothing is moved and the newest one's error is raised.

    Args:
      abstract_state: the target tree, as for `restore`.
      report: called with one line per checkpoint moved aside.

    Returns:
      `(step, state)`.

    Raises:
      FileNotFoundError: no checkpoint.
      CheckpointError: no checkpoint restores (the newest one's error).

    Example:
      >>> step, state = ckpt.restore_newest_intact(engine.abstract_state(shape), report=print)
    """
    failed: list[tuple[int, CheckpointError]] = []
    for step in sorted(self.all_steps(), reverse=True):
      try:
        state = self.restore(abstract_state, step)
      except CheckpointError as e:
        failed.append((step, e))
        continue
      for bad, error in failed:
        moved = self._move_aside(bad)
        report(f"{error.args[0]} Moved it to {moved}; resuming from step {step}.")
      if failed:
        self._manager.reload()
      return step, state
    if failed:
      raise failed[0][1]
    raise FileNotFoundError(f"No checkpoint in {self.directory}.")

  def step_path(self, step: int) -> str:
    """The folder of the checkpoint of `step`."""
    return os.path.join(self.directory, str(step))

  def _move_aside(self, step: int) -> str:
    target = os.path.join(self.directory + ".corrupt", str(step))
    if jax.process_index() == 0:
      if os.path.exists(target):  # an earlier damaged checkpoint of the same step
        target += f".{int(time.time())}"
      os.makedirs(os.path.dirname(target), exist_ok=True)
      shutil.move(self.step_path(step), target)
    if jax.process_count() > 1:
      ocp.multihost.sync_global_processes(f"jaxres_move_aside_{step}")
    return target

  def wait(self) -> None:
    """Blocks until pending asynchronous saves are written."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()
