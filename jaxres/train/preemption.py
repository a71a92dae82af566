"""Stop requests (SIGTERM on preemption) turned into a clean stop at the next step boundary."""

from __future__ import annotations

import signal
import threading

import jax
import numpy as np


class StopRequest:
  """While active, SIGTERM sets a flag instead of killing the process.

  The loop asks `requested()` at each step boundary, saves a checkpoint and returns. With several
  processes the flag is combined over all of them, so every process stops at the same step.

  Example:
    >>> with StopRequest() as stop:
    ...   for step in steps:
    ...     train_step(...)
    ...     if stop.requested(): save(step); break
  """

  def __init__(self, signals=(signal.SIGTERM,)):
    self.signals = tuple(signals)
    self._flag = threading.Event()
    self._previous = {}

  def _handler(self, signum, frame):
    self._flag.set()

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for s in self.signals:
        self._previous[s] = signal.signal(s, self._handler)
    return self

  def __exit__(self, *exc):
    for s, handler in self._previous.items():
      signal.signal(s, handler)
    self._previous.clear()

  def request(self) -> None:
    """Asks for a stop (as the signal does)."""
    self._flag.set()

  def requested(self) -> bool:
    """Whether any process was asked to stop (a collective when there are several processes)."""
    local = self._flag.is_set()
    if jax.process_count() == 1:
      return local
    from jax.experimental import multihost_utils

    flags = multihost_utils.process_allgather(np.array([local], np.int32))
    return bool(np.asarray(flags).any())
