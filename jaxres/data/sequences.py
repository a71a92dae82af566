"""Frame-folder datasets: which sequence folders form a split, with their labels (`source="frames"`).

Layouts (`data.layout`); paths in lists are relative to `data.path` (or absolute):

- `"sequences"`: every folder under `data.path` that holds images is a sequence, at any depth
  (REDS `train_sharp/000/00000000.png`, Vid4 `GT/calendar/...`). Lists name one folder per line as
  the first token, so BasicSR's `meta_info_*.txt` lines (`000 100 (720,1280,3)`) work as they are.
  No labels (all 0).
- `"vimeo"`: Vimeo-90K, `data.path/sequences/00001/0001/im1.png`..`im7.png`; lists are
  `sep_trainlist.txt` / `sep_testlist.txt` (`00001/0001` per line), by default those in `data.path`.
  No labels.
- `"rawframes"`: MMAction2 rawframes with class labels: `data.path/<class>/<video>/img_00001.jpg`
  (label = sorted class folder index), or an annotation list as MMAction2 writes it
  (`path num_frames label` per line; class names are then the label numbers).

A list line whose second token is a number (BasicSR `meta_info`, MMAction2) says how many frames
the sequence has, and Vimeo septuplets have 7: a folder holding fewer is missing frames, and is
skipped and counted as `missing` when read (`jaxres.data.frames.list_frames(expected=...)`).

Without lists, `holdout_sequences` (names relative to `data.path`, e.g. REDS4's
`("000", "011", "015", "020")`) form the eval split and are left out of train; else
`holdout_fraction` holds out every n-th sequence; else both splits are every sequence.

Example:
  >>> seqs = frame_sequences("/data/REDS/train_sharp", "sequences", split="eval",
  ...                        holdout_sequences=("000", "011", "015", "020"))
  >>> [os.path.basename(e.path) for e in seqs.entries]
  ['000', '011', '015', '020']
"""

from __future__ import annotations

import os
from typing import Sequence

from jaxres.data.frames import is_image, natural_key
from jaxres.data.sources import VideoEntry, VideoList, list_classes

LAYOUTS = ("sequences", "vimeo", "rawframes")
VIMEO_LISTS = {"train": "sep_trainlist.txt", "eval": "sep_testlist.txt"}
VIMEO_FRAMES = 7


def _has_images(folder: str) -> bool:
  with os.scandir(folder) as entries:
    return any(e.is_file() and not e.name.startswith(".") and is_image(e.name) for e in entries)


def find_sequences(root: str) -> list[str]:
  """Folders under `root` (itself included) that hold images, not descending into them; sorted.

  Example:
    >>> find_sequences("/data/Vid4/GT")[:2]
    ['/data/Vid4/GT/calendar', '/data/Vid4/GT/city']
  """
  found = []
  for dirpath, dirnames, _ in os.walk(root):
    dirnames.sort(key=natural_key)
    if _has_images(dirpath):
      found.append(dirpath)
      dirnames[:] = []
    else:
      dirnames[:] = [d for d in dirnames if not d.startswith(".")]
  return found


def read_sequence_list(
  list_path: str, root: str, *, labelled: bool, num_classes: int = 0
) -> list[tuple[str, int, int]]:
  """`(absolute folder, label, frames)` per line of a sequence list (first token: folder; an integer
  second token: its frame count, else 0; MMAction2 lists: `path num_frames label`).

  Args:
    list_path: the list file.
    root: the folder relative paths are under.
    labelled: lines carry a label (MMAction2 rawframes).
    num_classes: labels must be below this (0: any non-negative label).

  Raises:
    FileNotFoundError: the list, or folders it names, do not exist (all missing ones named).
    ValueError: a labelled line without a label in `[0, num_classes)` (one line naming the list
      file and line number).

  Example:
    >>> read_sequence_list("sep_testlist.txt", "/data/vimeo_septuplet/sequences", labelled=False)[0]
    ('/data/vimeo_septuplet/sequences/00001/0266', 0, 0)
  """
  if not os.path.isfile(list_path):
    raise FileNotFoundError(f"Sequence list {list_path!r} does not exist.")
  items = []
  with open(list_path) as f:
    for line_no, line in enumerate(f, 1):
      parts = line.split()
      if not parts or parts[0].startswith("#"):
        continue
      label = 0
      if labelled:
        if len(parts) < 3:
          raise ValueError(
            f"{list_path}:{line_no}: expected MMAction2's 'path num_frames label', "
            f"got {line.strip()!r}."
          )
        label = _label(parts[2], num_classes, f"{list_path}:{line_no}")
      rel = parts[0].replace("\\", "/")
      count = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
      items.append((rel if os.path.isabs(rel) else os.path.join(root, rel), label, count))
  missing = [p for p, _, _ in items if not os.path.isdir(p)]
  if missing:
    shown = "\n  ".join(missing[:20])
    more = f"\n  ... and {len(missing) - 20} more" if len(missing) > 20 else ""
    raise FileNotFoundError(
      f"Sequence list {list_path} names {len(missing)} missing folder(s):\n  {shown}{more}"
    )
  return items


def _label(token: str, num_classes: int, where: str) -> int:
  """The class index `token` of a list line at `where` (`file:line`), checked to be one."""
  if not token.isdigit():  # (a sign, a decimal point or a name: not an index)
    raise ValueError(
      f"{where}: label {token!r} is not a class index (0, 1, ...); fix the line or remove it."
    )
  label = int(token)
  if num_classes and label >= num_classes:
    raise ValueError(
      f"{where}: label {label} is not below the {num_classes} classes of the training list; "
      "fix the line or remove it."
    )
  return label


def frame_sequences(
  root: str,
  layout: str = "sequences",
  split_list: str = "",
  *,
  split: str = "train",
  holdout_fraction: float = 0.0,
  holdout_sequences: Sequence[str] = (),
  num_classes: int = 0,
) -> VideoList:
  """The sequence folders of one split of a frame-folder dataset (see the module notes).

  Args:
    root: `data.path`.
    layout: one of `LAYOUTS`.
    split_list: a list file (relative paths are under `root`); empty for every sequence (Vimeo:
      `sep_trainlist.txt` / `sep_testlist.txt` in `root`).
    split: `"train"` or `"eval"`.
    holdout_fraction: without a list, every `round(1 / holdout_fraction)`-th sequence is eval.
    holdout_sequences: without a list, these sequences (relative to `root`) are the eval split
      and are left out of train.
    num_classes: labels in a rawframes list must be below this (the training list's class
      count, for the eval list; 0: any non-negative label).

  Returns:
    `VideoList` (entries' `path` is the sequence folder, `num_frames` the count its list line
    gives or 0), sorted by path, `video_id` = position.

  Raises:
    FileNotFoundError: no such folder, no sequences, a listed or held-out folder missing.
    ValueError: an unknown layout or a malformed list line (a label that is not a class index).

  Example:
    >>> frame_sequences("/data/vimeo_septuplet", "vimeo", split="eval").entries[0].path
    '/data/vimeo_septuplet/sequences/00001/0266'
  """
  if layout not in LAYOUTS:
    raise ValueError(f"data.layout must be one of {LAYOUTS}, got {layout!r}.")
  if not os.path.isdir(root):
    raise FileNotFoundError(f"Frame folder {root!r} does not exist.")
  root = os.path.abspath(root)
  class_names: tuple[str, ...] = ()
  if layout == "vimeo":
    split_list = split_list or os.path.join(root, VIMEO_LISTS[split])
  if split_list:
    split_list = split_list if os.path.isabs(split_list) else os.path.join(root, split_list)
    base = os.path.join(root, "sequences") if layout == "vimeo" else root
    items = read_sequence_list(
      split_list, base, labelled=layout == "rawframes", num_classes=num_classes
    )
    if layout == "rawframes":
      class_names = tuple(str(i) for i in range(max(label for _, label, _ in items) + 1))
  else:
    if layout == "rawframes":
      class_names = list_classes(root)
      items = [
        (folder, label, 0)
        for label, name in enumerate(class_names)
        for folder in find_sequences(os.path.join(root, name))
      ]
    else:
      items = [(folder, 0, 0) for folder in find_sequences(root)]
    if holdout_sequences:
      held = {os.path.normpath(os.path.join(root, s)) for s in holdout_sequences}
      absent = sorted(held - {os.path.normpath(p) for p, _, _ in items})
      if absent:
        raise FileNotFoundError(
          f"data.holdout_sequences names folders that are not sequences of {root!r}: {absent}."
        )
      items = [item for item in items if (os.path.normpath(item[0]) in held) == (split != "train")]
    elif holdout_fraction > 0:
      every = max(1, round(1.0 / holdout_fraction))
      items = [
        item for i, item in enumerate(items) if (i % every == every - 1) == (split != "train")
      ]
  if not items:
    where = f"list {split_list!r}" if split_list else f"folder {root!r}"
    raise FileNotFoundError(
      f"No frame sequences found in {where} (a sequence is a folder of "
      f"images); check data.path and data.layout={layout!r}."
    )
  if layout == "vimeo":  # septuplets
    items = [(p, label, count or VIMEO_FRAMES) for p, label, count in items]
  items = sorted(set((os.path.abspath(p), label, count) for p, label, count in items))
  return VideoList(
    class_names, tuple(VideoEntry(p, label, i, count) for i, (p, label, count) in enumerate(items))
  )
