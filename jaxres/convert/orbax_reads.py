"""Quiet failed orbax restores: the reads a failed restore leaves in flight print nothing.

Every reader of orbax checkpoints (training's `Checkpointer`, `jaxres.inference.load_run`) calls
`ignore_reads_finishing_after_a_failed_restore` before it restores, so a damaged checkpoint (or one
deleted while read) is reported by its one error line alone. It sits here, in the lowest layer that
reads checkpoints, so that inference need not import the training stack.

Example:
  >>> from jaxres.convert.orbax_reads import ignore_reads_finishing_after_a_failed_restore
  >>> ignore_reads_finishing_after_a_failed_restore()      # idempotent; then restore
"""

from __future__ import annotations

import logging
import sys
import threading


def ignore_reads_finishing_after_a_failed_restore() -> None:
  """Silences the tensorstore reads that a failed restore leaves in flight.

  Orbax gives up on the first failed array and closes its event loop; each remaining read then
  finishes into the closed loop and Python prints an unraisable `RuntimeError: Event loop is closed`
  traceback for it, and each other failed read's never-awaited coroutine an unraisable
  "Encountered error while reading array index" (dozens per checkpoint, some at interpreter exit,
  some while the restore is still failing, hence installed before any restore), and asyncio logs
  each failed read's gathering future as an "exception was never retrieved" error. Only those are
  dropped: the restore's own error reports the damage. Installing it again changes nothing.

  Example:
    >>> ignore_reads_finishing_after_a_failed_restore()
    >>> variables = restore_training_variables(item)      # fails with its one error, no tracebacks
  """

  def left_over(error) -> bool:
    text = str(error)
    return (isinstance(error, RuntimeError) and text == "Event loop is closed") or text.startswith(
      "Encountered error while reading array index"
    )

  asyncio_logger = logging.getLogger("asyncio")
  if not any(getattr(f, "_jaxres_left_over", False) for f in asyncio_logger.filters):

    def log_filter(record: logging.LogRecord) -> bool:  # asyncio's never-retrieved futures
      error = record.exc_info[1] if record.exc_info else None
      return error is None or not left_over(error)

    log_filter._jaxres_left_over = True
    asyncio_logger.addFilter(log_filter)
  previous = sys.unraisablehook
  if getattr(previous, "_jaxres_left_over", False):
    return

  def hook(unraisable):
    if not left_over(unraisable.exc_value):
      previous(unraisable)

  previous_thread_hook = threading.excepthook

  def thread_hook(args):  # the same errors raised in a reader thread's callback
    if not left_over(args.exc_value):
      previous_thread_hook(args)

  hook._jaxres_left_over = True
  sys.unraisablehook = hook
  threading.excepthook = thread_hook
