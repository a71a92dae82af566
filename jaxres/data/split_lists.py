"""Split lists of the datasets jaxres writes: the motion demo, the photo demo, generated footage.

UCF101-style lists, which `jaxres.data.sources.read_split_list` reads back: one video per line,
relative to the dataset folder with `/` separators, `path label` (1-based class number) in the
training list, `path` alone in the eval list. Each list is written whole or not at all
(`jaxres.atomic_files`): a reader never sees half of one, and a writer killed mid-way leaves the
old list.

Example:
  >>> write_split_list(os.path.join(root, TRAIN_LIST), [f"{p} 1" for p in train])
  >>> write_split_list(os.path.join(root, EVAL_LIST), test)
"""

from __future__ import annotations

from typing import Iterable

from jaxres.atomic_files import write_atomic

TRAIN_LIST = "trainlist01.txt"  # the names UCF101 gives its first split, which the writers keep
EVAL_LIST = "testlist01.txt"


def write_split_list(path: str, lines: Iterable[str]) -> str:
  """Writes a split list, one line per entry, atomically; returns `path`.

  Args:
    path: the list file; its folder must exist.
    lines: the entries (`"class/video.mp4 1"` or `"class/video.mp4"`), without line ends.

  Returns:
    `path`.

  Raises:
    ValueError: an entry is empty or holds a line break (it would read back as other entries).

  Example:
    >>> write_split_list("/data/demo/testlist01.txt", ["up/up_g00.mp4", "down/down_g00.mp4"])
    '/data/demo/testlist01.txt'
  """
  lines = list(lines)
  bad = [line for line in lines if not line.strip() or "\n" in line or "\r" in line]
  if bad:
    raise ValueError(f"Split list {path}: entries must be one non-empty line each, got {bad[0]!r}.")
  return write_atomic(path, "".join(f"{line}\n" for line in lines))
