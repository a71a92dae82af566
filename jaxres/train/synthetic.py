"""Deterministic in-memory batches for tests and benchmarks (no files, no tf.data)."""

from __future__ import annotations

import itertools
from typing import Iterator, Optional, Sequence

import numpy as np


def synthetic_batches(
  batch_shape: Sequence[int],
  num_classes: int,
  *,
  seed: int = 0,
  start_step: int = 0,
  num_batches: Optional[int] = None,
  eval: bool = False,
) -> Iterator[dict[str, np.ndarray]]:
  """Classification batches whose class is a per-class colour offset plus noise (learnable).

  Batch `i` depends only on `(seed, i)`, so a run resumed at `start_step` sees the same batches
  as an uninterrupted one.

  Args:
    batch_shape: global `[B, T, H, W, 3]` (or `[B, H, W, 3]`).
    num_classes: labels are in `[0, num_classes)`.
    seed: data seed.
    start_step: index of the first batch.
    num_batches: stop after this many (None: forever).
    eval: also yield `"video_id"` (2 clips per video) and `"mask"`.

  Returns:
    An iterator of `{"video": float32, "label": int32}` numpy dicts.

  Example:
    >>> batch = next(synthetic_batches((8, 4, 16, 16, 3), 10))
  """
  b = batch_shape[0]
  colours = np.random.default_rng(seed + 12345).normal(size=(num_classes, 3)).astype(np.float32)
  stop = None if num_batches is None else start_step + num_batches
  for step in itertools.islice(
    itertools.count(start_step), 0, None if stop is None else stop - start_step
  ):
    rng = np.random.default_rng([seed, step])
    labels = (
      rng.integers(0, num_classes, size=b)
      if not eval
      else np.repeat(rng.integers(0, num_classes, size=(b + 1) // 2), 2)[:b]
    )
    video = rng.normal(size=tuple(batch_shape)).astype(np.float32)
    video += 0.5 * colours[labels].reshape((b,) + (1,) * (len(batch_shape) - 2) + (3,))
    batch = {"video": video, "label": labels.astype(np.int32)}
    if eval:
      batch["video_id"] = (step * b + np.arange(b)) // 2
      batch["video_id"] = batch["video_id"].astype(np.int32)
      batch["mask"] = np.ones(b, np.float32)
    yield batch
