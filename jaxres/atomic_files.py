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
  """A fresh name for a temporary file beside `path`: the same folder (the rename stays on one
  disk), hidden (a folder scan skips it) and the same suffix (PyAV and imageio pick the format by
  it), e.g. `out/.clip.1234-9f3a01bc.partial.mp4` for `out/clip.mp4`."""
  folder, name = os.path.split(path)
  stem, suffix = os.path.splitext(name)
  return os.path.join(folder, f".{stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial{suffix}")


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
  """A temporary path to write; renamed over `path` when the block ends without an error, else
  removed.

  For writers that take a file name (PyAV, imageio, TFRecordWriter); `atomic_open` for Python's
  own files.

  Args:
    path: the file to write; its folder must exist.

  Yields:
    The temporary path (`temporary_path`).

  Example:
    >>> with atomic_path("strip.png") as tmp:
    ...   iio.imwrite(tmp, image)
  """
  tmp = temporary_path(path)
  try:
    yield tmp
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


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
  with atomic_path(path) as tmp, open(tmp, mode) as f:
    yield f


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
