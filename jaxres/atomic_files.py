"""Files written whole or not at all: written under a temporary name beside them, then renamed.

A reader (another process, a resumed run) sees the old file or the new one, never a half-written
one; an error or a kill mid-write leaves the old file as it was. The temporary name carries the
process id and a random part, so two processes writing the same file (two first runs making the
demo data, say) never write into each other's temporary file; the last rename wins.

Example:
  >>> write_atomic("runs/demo/config.json", config.to_json())
  >>> with atomic_open("predictions.json") as f:
  ...   json.dump(rows, f)
"""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import IO, Iterator


def temporary_path(path: str) -> str:
  """A fresh name for a temporary file beside `path` (same folder: the rename stays on one disk)."""
  return f"{path}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w") -> Iterator[IO]:
  """Opens a temporary file that replaces `path` when the block ends without an error.

  Args:
    path: the file to write; its folder must exist.
    mode: `"w"` (text) or `"wb"` (bytes).

  Yields:
    The open temporary file.

  Raises:
    ValueError: `mode` is not a write mode.

  Example:
    >>> with atomic_open("out/metrics.jsonl") as f:
    ...   f.writelines(lines)
  """
  if mode not in ("w", "wb"):
    raise ValueError(f"atomic_open writes whole files: mode must be 'w' or 'wb', not {mode!r}.")
  tmp = temporary_path(path)
  try:
    with open(tmp, mode) as f:
      yield f
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def write_atomic(path: str, data: str | bytes | bytearray) -> str:
  """Writes `data` (text or bytes) to `path` through a temporary file; returns `path`.

  Args:
    path: the file to write; its folder must exist.
    data: its whole content.

  Returns:
    `path`.

  Example:
    >>> write_atomic("classes.txt", "".join(f"{name}\\n" for name in names))
  """
  with atomic_open(path, "w" if isinstance(data, str) else "wb") as f:
    f.write(data)
  return path
