"""The `Task` protocol the train and eval steps are written against, and per-video averaging.

A task says what the model sees, the training loss and metrics, and how per-example eval values
reduce to the figures a run reports. Tasks are pure JAX (no TensorFlow, no I/O): the data layer
yields the same `{"video", "label", ...}` batches for every task, and a task derives what it needs
from them on device (e.g. super-resolution makes its low-resolution input from the frames).

Example:
  >>> batch = task.prepare(batch, rng)          # inside the train step (rng None in eval)
  >>> loss, metrics = task.loss_and_metrics(model.apply(v, task.model_input(batch)), batch)
"""

from __future__ import annotations

import collections
from typing import Any, Iterable, Mapping, Protocol, Sequence

import jax
import numpy as np

Batch = Mapping[str, Any]


class Task(Protocol):
  """What the engine needs from a task.

  Per-example eval values may come with a `"weight"` `[B]` entry (0 marks padding); the eval step
  adds it from `batch["mask"]`.
  """

  name: str

  def prepare(self, batch: Batch, rng: jax.Array | None) -> Batch:
    """The batch the model and loss see: augmented (train, `rng` given) or as is plus derived
    entries (eval, `rng` None). Runs inside the compiled step."""

  def model_input(self, batch: Batch) -> jax.Array:
    """The array the model is called on, e.g. `batch["video"]` (after `prepare`)."""

  def loss_and_metrics(
    self, outputs: jax.Array, batch: Batch
  ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The scalar training loss and a dict of scalar metrics of one batch (inside the step)."""

  def eval_metrics(self, outputs: jax.Array, batch: Batch) -> dict[str, jax.Array]:
    """Per-example values, each with leading axis B (inside the eval step)."""

  def aggregate(self, per_example: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Reduces the host copies of `eval_metrics` over a whole eval set to floats."""

  def check_data(self, data_config: Any) -> None:
    """Raises `ValueError` naming the `data.*` key when the data cannot feed this task."""


def mean_by_video(
  per_example: Iterable[Mapping[str, Any]], keys: Sequence[str]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
  """Averages per-example values over the examples (clips, crops) of each video.

  Rows with `weight` 0 (eval padding) are dropped; other weights weigh the mean. Without a
  `video_id` entry every example is its own video (ids 0, 1, ... in order).

  Args:
    per_example: host copies of eval values, each a dict of arrays with leading axis B, holding
      `keys` and optionally `"video_id"` `[B]` and `"weight"` `[B]`.
    keys: the entries to average (any trailing shape, e.g. logits `[B, K]`).

  Returns:
    `(video_ids [V], {key: float64 [V, ...]})`, videos in increasing id order.

  Example:
    >>> ids, means = mean_by_video(values, ["logits"])
    >>> video_accuracy = np.mean(means["logits"].argmax(-1) == labels_of[ids])
  """
  sums: dict[int, dict[str, np.ndarray]] = {}
  counts: dict[int, float] = collections.defaultdict(float)
  next_id = 0
  for rows in per_example:
    rows = {k: np.asarray(v) for k, v in rows.items()}
    n = len(rows[keys[0]])
    weight = rows.get("weight", np.ones(n)).astype(np.float64)
    ids = rows.get("video_id")
    if ids is None:
      ids = np.arange(next_id, next_id + n)
      next_id += n
    for i in np.flatnonzero(weight > 0):
      vid = int(ids[i])
      entry = sums.setdefault(vid, {k: 0.0 for k in keys})
      for k in keys:
        entry[k] = entry[k] + rows[k][i].astype(np.float64) * weight[i]
      counts[vid] += weight[i]
  video_ids = np.array(sorted(sums), np.int64)
  means = {k: np.array([np.asarray(sums[v][k]) / counts[v] for v in video_ids]) for k in keys}
  return video_ids, means
