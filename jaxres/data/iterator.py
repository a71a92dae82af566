"""Host batches -> global `jax.Array`s on a sharding, a few batches ahead of the step."""

from __future__ import annotations

import collections
import weakref
from typing import Iterator

import jax

from jaxres.data.skips import SkipCounter
from jaxres.data.tfhost import tf


class BatchIterator:
  """Iterates global batches: numpy dicts (no sharding) or `jax.Array`s laid out on `sharding`.

  Keeps `prefetch` batches already on their devices (transfers are asynchronous, so the next
  batch's copy overlaps the current step). `len()` is the number of batches for eval.

  Call `close()` (or use it as a context manager) when done with an iterator that is not
  exhausted, e.g. an endless training one: it stops tf.data's background work now. An iterator that
  is not closed is closed when it is garbage-collected or, at the latest, at interpreter exit (a
  `weakref.finalize`, which runs before modules are torn down): destroyed during teardown, a decode
  still running in a `numpy_function` could never take the GIL back and the tf.data iterator's
  destructor would wait for it forever (a script that leaves an iterator open would never exit).

  Attributes:
    num_batches: batches in one pass (eval), None for endless training.
    skips: the counter skipped files are recorded in (`skips.counts()`).

  Example:
    >>> with create_iterator(config, "train", global_batch_size=8, sharding=None, seed=0) as it:
    ...   batch = next(it)
  """

  def __init__(
    self,
    dataset: tf.data.Dataset,
    *,
    sharding,
    global_batch_size: int,
    prefetch: int,
    num_batches: int | None,
    skips: SkipCounter,
  ):
    self.num_batches, self.skips = num_batches, skips
    # A plain generator (no reference back to self), so dropping the last reference to the
    # BatchIterator destroys the tf.data iterator at once rather than at a later garbage collection.
    self._batches = _prefetched(
      dataset.as_numpy_iterator(), sharding, global_batch_size, max(0, prefetch)
    )
    # Holds the generator, not self: runs when self is collected, or at exit if still open.
    self._finalizer = weakref.finalize(self, self._batches.close)

  def __iter__(self):
    return self

  def __next__(self) -> dict:
    try:
      return next(self._batches)
    except tf.errors.OpError as e:  # what a decoder raised, under tf.data's own name for it
      if self.skips.failure:
        raise ValueError(self.skips.failure) from e
      raise

  def __len__(self) -> int:
    if self.num_batches is None:
      raise TypeError("An endless training iterator has no length.")
    return self.num_batches

  def close(self) -> None:
    """Stops the pipeline and frees its buffers; `next()` then raises StopIteration."""
    self._finalizer()

  def __enter__(self) -> "BatchIterator":
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()


def _prefetched(numpy_batches, sharding, global_batch_size: int, size: int) -> Iterator[dict]:
  """`numpy_batches` as global arrays on `sharding`, `size` batches ahead."""

  def to_global(batch):
    if sharding is None:
      return batch
    return {
      k: jax.make_array_from_process_local_data(sharding, v, (global_batch_size, *v.shape[1:]))
      for k, v in batch.items()
    }

  queue = collections.deque()
  for batch in numpy_batches:
    queue.append(to_global(batch))
    if len(queue) > size:
      yield queue.popleft()
  while queue:
    yield queue.popleft()
