"""Checkpoints with orbax: asynchronous saves, keep the last N plus the best by a metric, restore
onto any mesh (the saved sharding does not matter: arrays are restored into the shardings of the
abstract state they are given)."""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies


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

  def __init__(self, directory: str, *, keep: int = 2, keep_best: int = 0,
               best_metric: str = "accuracy", best_mode: str = "max", async_save: bool = True):
    if best_mode not in ("max", "min"):
      raise ValueError(f"best_mode must be 'max' or 'min', got {best_mode!r}.")
    preserve = [policies.LatestN(keep)]
    if keep_best:
      preserve.append(policies.BestN(get_metric_fn=lambda m: m[best_metric],
                                     reverse=best_mode == "min", n=keep_best,
                                     keep_checkpoints_without_metrics=False))
    options = ocp.CheckpointManagerOptions(
        preservation_policy=policies.AnyPreservationPolicy(preserve),
        enable_async_checkpointing=async_save, create=True)
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
    self._manager.save(step, args=ocp.args.StandardSave(state),
                       metrics=None if metrics is None else {k: float(v) for k, v in metrics.items()},
                       force=True)

  def restore(self, abstract_state: Any, step: Optional[int] = None) -> Any:
    """The state at `step` (default: latest) in the shapes and shardings of `abstract_state`."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"No checkpoint in {self.directory}.")
    return self._manager.restore(step, args=ocp.args.StandardRestore(abstract_state))

  def wait(self) -> None:
    """Blocks until pending asynchronous saves are written."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()
