"""Counting the files the pipeline skipped, and why, for the training loop's metrics.

Every skip logs one warning naming the file (once per file and reason) and is counted once per file,
however many epochs meet it. Reasons: `not_video` (wrong suffix or no video stream), `corrupt`
(unreadable container), `partial` (decoding stops well before the frame count in the file's own
header: truncated or damaged), `empty` (no decodable frame), `short` (fewer frames than a
clip, with `short_video="skip"`), `missing` (vanished after listing). Frame folders
(`jaxres.data.frames`) count per sequence folder: `corrupt` (an image does not decode, or sizes
differ), `missing` (a gap in the numbered frames, or an absent LR frame), `format` (an image's pixel
format is not read as RGB, e.g. 32-bit float), `empty` (no image).

Example:
  >>> from jaxres.data import skips
  >>> skips.SKIPPED.counts()
  {'corrupt': 2, 'short': 1}
  >>> skips.SKIPPED.files("corrupt")
  ['/data/a/broken.mp4', '/data/b/cut.avi']
"""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger("jaxres.data")


class SkipCounter:
  """Thread-safe record of skipped files by reason (tf.data calls it from its worker threads)."""

  def __init__(self):
    self._lock = threading.Lock()
    self._files: dict[str, dict[str, str]] = {}
    self._shared: set[tuple[str, str]] = set()
    self.failure = ""  # the line of `nothing_usable`, once nothing could be used

  def record(self, path: str, reason: str, detail: str = "", *, shared: bool = False) -> bool:
    """Counts `path` as skipped for `reason`; returns whether this was new (and warned about).

    Args:
      path: the file.
      reason: a short tag (see the module docstring).
      detail: what went wrong, for the warning.
      shared: every host records this same skip (found while listing the files, which each host
        does whole), so counts over hosts take it once; others come from the host's own share.

    Returns:
      True the first time this (path, reason) is recorded.

    Example:
      >>> SKIPPED.record("/data/x.mp4", "corrupt", "moov atom not found")
      True
    """
    with self._lock:
      seen = self._files.setdefault(reason, {})
      if path in seen:
        return False
      seen[path] = detail
      if shared:
        self._shared.add((reason, path))
    logger.warning("Skipping %s (%s%s)", path, reason, f": {detail}" if detail else "")
    return True

  def counts(self) -> dict[str, int]:
    """Files skipped per reason, e.g. `{"corrupt": 2}` (reasons with none are left out)."""
    with self._lock:
      return {reason: len(files) for reason, files in sorted(self._files.items()) if files}

  def total(self) -> int:
    """Files skipped for any reason."""
    return sum(self.counts().values())

  def files(self, reason: str | None = None) -> list[str]:
    """Sorted skipped paths, for one reason or all."""
    with self._lock:
      groups = [self._files.get(reason, {})] if reason else list(self._files.values())
      return sorted({path for group in groups for path in group})

  def metrics(self, prefix: str = "data/skipped_") -> dict[str, int]:
    """Counts as flat metrics for a logger: `{"data/skipped_total": n, "data/skipped_corrupt": k}`."""
    return as_metrics(self.counts(), prefix)

  def split_counts(self) -> tuple[dict[str, int], dict[str, int]]:
    """`(own, shared)` counts per reason: skips in this host's share, and those every host records.

    Example:
      >>> SKIPPED.split_counts()
      ({'corrupt': 1}, {'not_video': 2})
    """
    with self._lock:
      shared: dict[str, int] = {}
      for reason, _ in self._shared:
        shared[reason] = shared.get(reason, 0) + 1
      own = {reason: len(files) - shared.get(reason, 0) for reason, files in self._files.items()}
    return ({k: v for k, v in sorted(own.items()) if v}, dict(sorted(shared.items())))

  def examples(self, n: int = 3) -> list[tuple[str, str, str]]:
    """Up to `n` skipped files as `(path, reason, detail)`, sorted by path."""
    with self._lock:
      found = [(p, r, d) for r, group in self._files.items() for p, d in group.items()]
    return sorted(found)[:n]

  def nothing_usable(self, count: int, what: str, where: str, fix: str) -> ValueError:
    """The one-line error for data of which nothing can be used; kept as `failure` (tf.data
    wraps what its worker threads raise in its own error, which `BatchIterator` replaces with it).

    Args:
      count: how many there are (all of them skipped).
      what: what they are, plural (`"videos"`, `"frame sequences"`).
      where: the folder (or dataset) they are in.
      fix: what to do, one sentence.

    Returns:
      The `ValueError` to raise.

    Example:
      >>> raise SKIPPED.nothing_usable(2, "videos", "/data/a", "check they play, or remove them.")
      ValueError: None of this host's 2 videos in /data/a can be used: 2 skipped (corrupt: 2), e.g. ...
    """
    counts = self.counts()
    shown = "; ".join(
      f"{path} ({reason}{': ' + detail if detail else ''})"
      for path, reason, detail in self.examples()
    )
    line = (
      f"None of this host's {count} {what} in {where} can be used: {sum(counts.values())} skipped "
      f"({', '.join(f'{r}: {k}' for r, k in counts.items())}), e.g. {shown}; {fix}"
    )
    self.failure = " ".join(line.split())  # one line, whatever the details hold
    return ValueError(self.failure)

  def reset(self) -> None:
    """Forgets everything recorded."""
    with self._lock:
      self._files.clear()
      self._shared.clear()
      self.failure = ""


def as_metrics(counts: dict[str, int], prefix: str = "data/skipped_") -> dict[str, int]:
  """Skip counts per reason as flat metrics, with their total.

  Example:
    >>> as_metrics({"corrupt": 2})
    {'data/skipped_total': 2, 'data/skipped_corrupt': 2}
  """
  return {f"{prefix}total": sum(counts.values()), **{prefix + k: v for k, v in counts.items()}}


# The process-wide counter the pipeline records into (read it with SKIPPED.counts()).
SKIPPED = SkipCounter()
