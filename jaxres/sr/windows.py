"""Cutting an axis (frames, rows, columns) into overlapping windows whose kept parts tile it.

Example:
  >>> spans(10, 6, 1)
  [(0, 6, 0, 5), (4, 10, 5, 10)]
"""

from __future__ import annotations


def spans(n: int, window: int, overlap: int) -> list[tuple[int, int, int, int]]:
  """Cuts `range(n)` into windows of length `min(window, n)` whose kept parts tile `range(n)`.

  Args:
    n: length of the axis.
    window: window length (> 2 * overlap unless it covers the axis).
    overlap: context kept on each side of a window's kept part (not at the axis' ends).

  Returns:
    A list of `(start, end, keep_start, keep_end)`: the window is `[start, end)`, and of its output
    `[keep_start, keep_end)` (absolute indices) is kept. Kept parts are disjoint and cover `range(n)`.

  Example:
    >>> spans(10, 6, 1)
    [(0, 6, 0, 5), (4, 10, 5, 10)]
  """
  if n <= window:
    return [(0, n, 0, n)]
  if window <= 2 * overlap:
    raise ValueError(f"window {window} must exceed 2 * overlap {overlap}.")
  out, keep = [], 0
  while keep < n:
    start = max(0, keep - overlap)
    end = start + window
    if end >= n:
      start, end = n - window, n
      out.append((start, end, keep, n))
      break
    out.append((start, end, keep, end - overlap))
    keep = end - overlap
  return out
