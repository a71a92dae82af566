"""Video folders (one subfolder per class), split lists, class names and per-host file sharding.

Class indices are the positions of the class subfolder names in sorted order, so they are the same
on every host and in every run; `write_class_names` stores them next to a run or prepared dataset.

Split lists name videos relative to the root (absolute paths also work):

- UCF101 style (`trainlist01.txt` / `testlist01.txt`): `Class/video.avi [number]` per line. The
  label always comes from the class folder; the optional number (UCF's 1-based index) is ignored.
- CSV (`.csv`): `path,label` per line (an optional `path,label` header); `label` is a class name or
  an integer index.

Example:
  >>> videos = folder_videos("/data/UCF-101", "/data/ucfTrainTestlist/trainlist01.txt")
  >>> videos.class_names[:2], len(videos.entries)
  (('ApplyEyeMakeup', 'ApplyLipstick'), 9537)
  >>> mine = shard_entries(videos.entries, process_index=0, process_count=2)
"""

from __future__ import annotations

import csv
import dataclasses
import os
from typing import Sequence

from jaxres.atomic_files import write_atomic
from jaxres.data.skips import SKIPPED, SkipCounter
from jaxres.data.video import VIDEO_SUFFIXES

CLASS_NAMES_FILE = "classes.txt"


@dataclasses.dataclass(frozen=True)
class VideoEntry:
  """One video of a split.

  Attributes:
    path: absolute path of the file.
    label: class index.
    video_id: position of the video in its split (sorted by path), the same on every host.
    num_frames: frames a list says a frame folder holds (0: not said; see `jaxres.data.sequences`).
  """

  path: str
  label: int
  video_id: int
  num_frames: int = 0


@dataclasses.dataclass(frozen=True)
class VideoList:
  """The videos of one split with the class names their labels index."""

  class_names: tuple[str, ...]
  entries: tuple[VideoEntry, ...]


def list_classes(root: str) -> tuple[str, ...]:
  """Sorted names of the class subfolders of `root`.

  Args:
    root: dataset folder.

  Returns:
    The class names; index = label.

  Raises:
    FileNotFoundError: `root` does not exist or has no class subfolders.

  Example:
    >>> list_classes("/data/UCF-101")[:2]
    ('ApplyEyeMakeup', 'ApplyLipstick')
  """
  if not os.path.isdir(root):
    raise FileNotFoundError(f"Video folder {root!r} does not exist.")
  names = sorted(
    d for d in os.listdir(root) if not d.startswith(".") and os.path.isdir(os.path.join(root, d))
  )
  if not names:
    raise FileNotFoundError(
      f"Video folder {root!r} has no class subfolders (expected ROOT/<class>/<video files>)."
    )
  return tuple(names)


def _is_video(path: str) -> bool:
  return os.path.splitext(path)[1].lower() in VIDEO_SUFFIXES


def _all_videos(root: str, class_names: Sequence[str], skips: SkipCounter) -> list[tuple[str, int]]:
  items = []
  for label, name in enumerate(class_names):
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, name)):
      dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
      for filename in sorted(filenames):
        if filename.startswith("."):
          continue
        path = os.path.join(dirpath, filename)
        if _is_video(path):
          items.append((path, label))
        else:
          skips.record(path, "not_video", "not a video file suffix", shared=True)
  return items


def read_split_list(list_path: str, root: str, class_names: Sequence[str]) -> list[tuple[str, int]]:
  """Reads a UCF101-style or CSV split list into `(absolute path, label)` pairs.

  Args:
    list_path: the list file (`.csv` -> `path,label`; anything else -> UCF101 lines).
    root: folder the listed relative paths are under.
    class_names: sorted class names (labels index them).

  Returns:
    The listed videos, in file order.

  Raises:
    FileNotFoundError: the list, or files it names, do not exist (all missing files are named).
    ValueError: a line names an unknown class or a label out of range.

  Example:
    >>> read_split_list("testlist01.txt", "/data/UCF-101", names)[0]
    ('/data/UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi', 0)
  """
  if not os.path.isfile(list_path):
    raise FileNotFoundError(f"Split list {list_path!r} does not exist.")
  index = {name: i for i, name in enumerate(class_names)}
  items = []

  def resolve(rel: str, line_no: int) -> str:
    rel = rel.strip().replace("\\", "/")
    return rel if os.path.isabs(rel) else os.path.join(root, rel)

  with open(list_path, newline="") as f:
    if list_path.lower().endswith(".csv"):
      for line_no, row in enumerate(csv.reader(f), 1):
        if not row or not row[0].strip() or row[0].lstrip().startswith("#"):
          continue
        if line_no == 1 and [c.strip().lower() for c in row[:2]] == ["path", "label"]:
          continue
        if len(row) < 2:
          raise ValueError(f"{list_path}:{line_no}: expected 'path,label', got {row!r}.")
        raw = row[1].strip()
        if raw in index:
          label = index[raw]
        elif raw.lstrip("-").isdigit() and 0 <= int(raw) < len(class_names):
          label = int(raw)
        else:
          raise ValueError(
            f"{list_path}:{line_no}: label {raw!r} is not a class name or an index "
            f"in [0, {len(class_names)})."
          )
        items.append((resolve(row[0], line_no), label))
    else:
      for line_no, line in enumerate(f, 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
          continue
        rel = parts[0].replace("\\", "/")
        folder = rel.split("/")[-2] if "/" in rel else ""
        if folder not in index:
          raise ValueError(
            f"{list_path}:{line_no}: {rel!r} is not under a class folder of "
            f"{root!r} (classes: {', '.join(class_names[:5])}, ...)."
          )
        items.append((resolve(rel, line_no), index[folder]))
  missing = [p for p, _ in items if not os.path.exists(p)]
  if missing:
    shown = "\n  ".join(missing[:20])
    more = f"\n  ... and {len(missing) - 20} more" if len(missing) > 20 else ""
    raise FileNotFoundError(
      f"Split list {list_path} names {len(missing)} missing file(s):\n  {shown}{more}"
    )
  return items


def folder_videos(
  root: str,
  split_list: str = "",
  *,
  split: str = "train",
  holdout_fraction: float = 0.0,
  skips: SkipCounter = SKIPPED,
) -> VideoList:
  """The videos of one split of a class-subfolder dataset.

  Args:
    root: dataset folder (`ROOT/<class>/<videos>`).
    split_list: a split list file (see the module docstring); empty for the whole folder.
    split: `"train"` or `"eval"`; with no list and `holdout_fraction > 0`, picks which side of the
      per-class holdout (every `round(1 / holdout_fraction)`-th video in sorted order) to return.
    holdout_fraction: see `split`.
    skips: where files that are not videos are counted.

  Returns:
    `VideoList` with entries sorted by path and `video_id` = position.

  Raises:
    FileNotFoundError: no such folder, no class folders, no videos, or listed files missing.
    ValueError: a split list line is malformed.

  Example:
    >>> folder_videos(demo_root, os.path.join(demo_root, "testlist01.txt"), split="eval")
  """
  class_names = list_classes(root)
  if split_list:
    items = read_split_list(split_list, root, class_names)
    kept = []
    for path, label in items:
      if _is_video(path):
        kept.append((path, label))
      else:
        skips.record(path, "not_video", "not a video file suffix", shared=True)
    items = kept
  else:
    items = _all_videos(root, class_names, skips)
    if holdout_fraction > 0:
      every = max(1, round(1.0 / holdout_fraction))
      by_class: dict[int, int] = {}
      picked = []
      for path, label in items:
        i = by_class[label] = by_class.get(label, -1) + 1
        if (i % every == every - 1) == (split != "train"):
          picked.append((path, label))
      items = picked
  if not items:
    where = f"split list {split_list!r}" if split_list else f"folder {root!r}"
    raise FileNotFoundError(f"No videos found in {where} (suffixes: {' '.join(VIDEO_SUFFIXES)}).")
  items = sorted(set((os.path.abspath(p), label) for p, label in items))
  return VideoList(
    tuple(class_names), tuple(VideoEntry(p, label, i) for i, (p, label) in enumerate(items))
  )


def shard_entries(entries: Sequence, process_index: int, process_count: int) -> list:
  """The entries (or shard files) host `process_index` of `process_count` reads: every n-th one.

  Args:
    entries: the full, identically ordered list on every host.
    process_index: this host.
    process_count: number of hosts.

  Returns:
    `entries[process_index::process_count]`: disjoint across hosts, together covering all.

  Example:
    >>> shard_entries(list(range(5)), 1, 2)
    [1, 3]
  """
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index {process_index} not in [0, {process_count}).")
  return list(entries[process_index::process_count])


def write_class_names(directory: str, class_names: Sequence[str]) -> str:
  """Writes `classes.txt` (one name per line, line number = label) into `directory`; returns its path.

  Example:
    >>> write_class_names(workdir, info.class_names)
  """
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, CLASS_NAMES_FILE)
  return write_atomic(path, "".join(f"{name}\n" for name in class_names))


def read_class_names(directory: str) -> tuple[str, ...]:
  """Reads the `classes.txt` written by `write_class_names`.

  Example:
    >>> read_class_names(workdir)[:2]
  """
  with open(os.path.join(directory, CLASS_NAMES_FILE)) as f:
    return tuple(line.rstrip("\n") for line in f if line.strip())
