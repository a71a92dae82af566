"""The write rule every jaxres command follows for what it writes.

1. Whole or not at all. A file is written under a temporary name beside it, then renamed over it
   (`atomic_path`, `atomic_open`, `write_atomic`); a folder artefact (an export, a converted
   checkpoint) is built in a temporary folder beside it and swapped in whole (`atomic_folder`). A
   reader sees the old content or the new, never a mix; an error or a kill keeps the old one.
2. Nothing the command did not make is lost. Before any work, `check_output` refuses, in one line
   naming the path and what to do, an output that is one of the inputs (or a folder holding one),
   a folder where a file is meant (or a file where a folder is meant), a destination that cannot
   be written, and a folder that holds things the command did not make (unless the user said
   `--overwrite`).
3. Links and special files. The final path is resolved (`os.path.realpath`): a symlink output is
   written through, to its target (the link stays a link). A character device or FIFO
   (`/dev/null`, a named pipe) or a process's open file (`/dev/stdout`, `/dev/fd/N`, even when a
   shell's `>` made it a file) is opened and written directly (appending), not atomically, as a
   shell redirection would: nothing is ever renamed over it, and an error writing it (`/dev/full`:
   no space left) comes back as the OSError. Sockets and block devices are refused.
4. Leftovers. Temporary names are hidden and say who made them, `.NAME.PID-RAND.partial.EXT`
   (`temporary_path`); a process killed by SIGKILL cannot remove its own, so
   `remove_stale_partials(output)` removes those of processes no longer alive (call it before
   writing an output again).

Two processes writing the same file never write into each other's temporary file (the pid and a
random part differ); the last rename wins.

Example:
  >>> check_output("predictions.json", inputs=videos, option="--json")
  >>> write_atomic("runs/demo/config.json", config.to_json())
  >>> with atomic_open("predictions.json") as f:
  ...   json.dump(rows, f)
  >>> with atomic_folder("exported/demo") as folder:
  ...   write_atomic(os.path.join(folder, "model.json"), spec)
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import shutil
import stat
import sys
import uuid
from typing import IO, Callable, Iterator, Optional, Sequence

__all__ = [
  "OutputRefusedError",
  "atomic_folder",
  "atomic_open",
  "atomic_path",
  "check_output",
  "remove_stale_partials",
  "temporary_path",
  "write_atomic",
]

# Inside an `atomic_folder` staging folder: the old artefact while it is swapped out.
_REPLACED = ".replaced"


class OutputRefusedError(ValueError):
  """An output the write rule refuses (`check_output`, or a socket/block device to write)."""


def temporary_path(path: str) -> str:
  """A fresh name for a temporary file beside `path`: the same folder (the rename stays on one
  disk), hidden (a folder scan skips it) and the same suffix (PyAV and imageio pick the format by
  it), e.g. `out/.clip.1234-9f3a01bc.partial.mp4` for `out/clip.mp4` (1234: the writer's pid)."""
  folder, name = os.path.split(path)
  stem, suffix = os.path.splitext(name)
  return os.path.join(folder, f".{stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial{suffix}")


# A process's own open files (`/dev/stdout`, `/dev/fd/3`, `/proc/self/fd/1`): whatever they lead
# to (a terminal, a pipe, or the file a shell's `>` opened), they are written in place.
_OPEN_FILE_LINKS = ("/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/fd/", "/proc/")


def _is_written_directly(path: str) -> bool:
  """Whether `path` is a character device, a FIFO or a process's open file (`/dev/stdout`):
  written in place, never renamed over."""
  if os.path.abspath(path).startswith(_OPEN_FILE_LINKS) or os.path.realpath(path).startswith(
    "/proc/"
  ):
    return os.path.exists(path)
  try:
    mode = os.stat(path).st_mode
  except OSError:
    return False
  return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def _refuse_special(path: str, shown: str, option: str) -> None:
  """Raises for what can be neither renamed over nor written as a stream (sockets, block devices)."""
  try:
    mode = os.stat(path).st_mode
  except OSError:
    return
  if stat.S_ISSOCK(mode) or stat.S_ISBLK(mode):
    what = "a socket" if stat.S_ISSOCK(mode) else "a block device"
    raise OutputRefusedError(f"{option} {shown} is {what}, not a file; name a file.")


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
  """A temporary path to write; renamed over `path` when the block ends without an error, else
  removed.

  For writers that take a file name (PyAV, imageio, TFRecordWriter); `atomic_open` for Python's
  own files. A symlink `path` is written through (the temporary file sits beside the link's
  target and replaces it; the link stays). A character device or FIFO is yielded as it is, to be
  written directly (nothing is renamed over it).

  Args:
    path: the file to write; its folder must exist.

  Yields:
    The path to write: the temporary path (`temporary_path`), or the device/FIFO itself.

  Raises:
    OutputRefusedError: `path` is a folder, a socket or a block device.

  Example:
    >>> with atomic_path("strip.png") as tmp:
    ...   iio.imwrite(tmp, image)
  """
  if _is_written_directly(path):
    yield path  # as given: `/dev/stdout` resolved would be the file a shell's `>` opened
    return
  target = os.path.realpath(path)
  _refuse_special(target, path, "output")
  if os.path.isdir(target):
    raise OutputRefusedError(f"output {path} is a folder; name a file.")
  tmp = temporary_path(target)
  try:
    yield tmp
    with contextlib.suppress(OSError):  # keep the replaced file's permissions
      os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
    os.replace(tmp, target)
  finally:
    if os.path.lexists(tmp):
      os.remove(tmp)


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w") -> Iterator[IO]:
  """Opens a temporary file that replaces `path` when the block ends without an error.

  A symlink is written through and a device or FIFO directly (see `atomic_path`).

  Args:
    path: the file to write; its folder must exist.
    mode: `"w"` (text) or `"wb"` (bytes).

  Yields:
    The open file (a device, FIFO or `/dev/stdout` opened to append: what was printed to a
    redirected stdout before is kept).

  Raises:
    ValueError: `mode` is not a write mode.

  Example:
    >>> with atomic_open("out/metrics.jsonl") as f:
    ...   f.writelines(lines)
  """
  if mode not in ("w", "wb"):
    raise ValueError(f"atomic_open writes whole files: mode must be 'w' or 'wb', not {mode!r}.")
  if _is_written_directly(path):
    sys.stdout.flush()  # what was printed comes first
    with open(path, mode.replace("w", "a")) as f:
      yield f
    return
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


def _exchange(a: str, b: str) -> bool:
  """Atomically swaps two existing paths (Linux renameat2 RENAME_EXCHANGE); False if unsupported
  here (another system, an old kernel or a filesystem without it)."""
  try:
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = libc.renameat2
  except (OSError, AttributeError):
    return False
  at_fdcwd, rename_exchange = -100, 2
  if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
    return True
  code = ctypes.get_errno()
  if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
    return False
  raise OSError(code, os.strerror(code), b)


@contextlib.contextmanager
def atomic_folder(path: str) -> Iterator[str]:
  """An empty folder to build a folder artefact in, swapped in whole for `path` when the block
  ends without an error (else removed).

  The folder is built inside a hidden staging folder beside `path` (`temporary_path`; anything a
  writer puts beside the folder it is given lands there too). At the end it is exchanged with
  the old artefact in one atomic step where the system allows (Linux renameat2), then the old one
  is removed: a kill at any moment leaves the old complete artefact or the new one, never a mix.
  Elsewhere the old one is renamed aside first; a kill between the two renames leaves both in the
  staging folder and `remove_stale_partials(path)` puts the new one in place. A symlink `path`
  is written through to its target. Call `check_output(path, kind="artefact")` first: this
  replaces whatever folder is at `path`.

  Args:
    path: the artefact folder; missing parent folders are created.

  Yields:
    The folder to write the artefact into.

  Example:
    >>> with atomic_folder("exported/demo") as folder:
    ...   write_atomic(os.path.join(folder, "model.json"), spec)
  """
  target = os.path.realpath(path)
  if os.path.lexists(target) and not os.path.isdir(target):
    raise OutputRefusedError(f"output {path} is an existing file, not a folder; name a folder.")
  os.makedirs(os.path.dirname(target), exist_ok=True)
  remove_stale_partials(target)
  staging = temporary_path(target)
  os.mkdir(staging)
  built = os.path.join(staging, os.path.basename(target))
  try:
    os.mkdir(built)
    yield built
    if not os.path.isdir(target):
      os.rename(built, target)
    elif not _exchange(built, target):
      os.rename(target, os.path.join(staging, _REPLACED))
      os.rename(built, target)
  finally:
    shutil.rmtree(staging, ignore_errors=True)


_PARTIAL = re.compile(r"\.(?P<stem>.*)\.(?P<pid>\d+)-[0-9a-f]{8}\.partial(?P<suffix>.*)")


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # someone else's process
    return True
  return True


def remove_stale_partials(path: str) -> list[str]:
  """Removes the temporary files and staging folders that writers of `path` left when killed.

  Only leftovers named for `path` (`.NAME.PID-RAND.partial.EXT` beside it, `temporary_path`)
  whose process is no longer alive on this machine are touched; a live writer's are kept. A
  staging folder killed mid-swap (`atomic_folder` without renameat2) that still holds the new
  complete artefact, with `path` missing, puts it in place instead of losing it. On a folder
  shared by several machines, a pid means nothing on another machine: call this where only this
  machine writes the output.

  Args:
    path: the output file or folder (it need not exist).

  Returns:
    The paths removed.

  Example:
    >>> remove_stale_partials("out.mp4")   # after a SIGKILLed `jaxres upscale in.mp4 out.mp4`
    ['/abs/.out.4242-1f2e3d4c.partial.mp4']
  """
  target = os.path.realpath(path)
  folder, name = os.path.split(target)
  stem, suffix = os.path.splitext(name)
  try:
    names = os.listdir(folder or ".")
  except OSError:
    return []
  removed = []
  for entry in sorted(names):
    match = _PARTIAL.fullmatch(entry)
    if not match or match["stem"] != stem or match["suffix"] != suffix:
      continue
    if _alive(int(match["pid"])):
      continue
    leftover = os.path.join(folder, entry)
    if os.path.isdir(leftover) and not os.path.islink(leftover):
      built = os.path.join(leftover, name)
      if (
        not os.path.lexists(target)
        and os.path.isdir(os.path.join(leftover, _REPLACED))
        and os.path.isdir(built)
      ):
        os.rename(built, target)  # killed between the two renames: the new one was complete
      shutil.rmtree(leftover, ignore_errors=True)
    else:
      with contextlib.suppress(FileNotFoundError):
        os.remove(leftover)
    removed.append(leftover)
  return removed


def _nearest_existing(path: str) -> str:
  while not os.path.lexists(path):
    parent = os.path.dirname(path)
    if parent == path:
      break
    path = parent
  return path


def _same_or_inside(path: str, folder: str) -> bool:
  return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_output(
  path: str,
  *,
  inputs: Sequence[str] = (),
  kind: str = "file",
  overwrite: bool = False,
  is_artefact: Optional[Callable[[str], bool]] = None,
  option: str = "OUT",
) -> str:
  """Refuses, before any work, an output that the write rule (module notes) forbids.

  What `kind` means:
  - `"file"`: one file (written by `atomic_path`); its folder must exist. A character device or
    FIFO passes (written directly); a folder, socket or block device is refused.
  - `"folder"`: a folder the command writes into, keeping what is there (a prepared dataset, a
    run folder); created with its missing parents.
  - `"artefact"`: a folder swapped in whole (`atomic_folder`); created with its missing parents.
    An existing folder that is not empty must be an earlier artefact of the command
    (`is_artefact(folder)`), else it is refused unless `overwrite`.

  Every kind is refused when it is one of `inputs` (the same file, through links too), an
  artefact also when it holds an input (replacing it whole would remove the input), and when it cannot be written (`os.access`: permission bits, or a
  read-only filesystem; note that root passes permission bits, as it does when writing).

  Args:
    path: the output path the user gave.
    inputs: the paths the command reads (missing ones are ignored).
    kind: `"file"`, `"folder"` or `"artefact"`.
    overwrite: an `"artefact"` may replace a folder holding other things (`--overwrite`).
    is_artefact: says whether an existing folder is an earlier artefact of the command.
    option: how the user named the output, for the message (`OUT`, `--json`, `--out`).

  Returns:
    The resolved path that will be written (`os.path.realpath`).

  Raises:
    OutputRefusedError: (a ValueError) one line naming the path and what to do.

  Example:
    >>> check_output("exported/demo", inputs=["runs/demo"], kind="artefact", option="--out",
    ...              is_artefact=looks_like_an_export)
  """
  if kind not in ("file", "folder", "artefact"):
    raise ValueError(f"kind must be 'file', 'folder' or 'artefact', not {kind!r}.")
  if not path:
    raise OutputRefusedError(f"{option} is empty; name a {'file' if kind == 'file' else 'folder'}.")
  shown = f"{option} {path}"
  target = os.path.realpath(path)
  for source in inputs:
    if not source or not os.path.lexists(source):
      continue
    source_real = os.path.realpath(source)
    same = source_real == target
    if not same and os.path.exists(target) and os.path.exists(source_real):
      same = os.path.samefile(source_real, target)
    if same:
      raise OutputRefusedError(f"{shown} is the input {source}; choose another name.")
    if kind == "artefact" and _same_or_inside(source_real, target):  # the swap would remove it
      raise OutputRefusedError(f"{shown} holds the input {source}; choose another folder.")
  if kind == "file":
    if _is_written_directly(path):
      return path
    _refuse_special(target, path, option)
    if os.path.isdir(target):
      raise OutputRefusedError(f"{shown} is a folder; name a file (e.g. {path.rstrip('/')}/out).")
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
      raise OutputRefusedError(f"{shown}: folder {parent} does not exist; create it first.")
    if os.path.exists(target) and not os.access(target, os.W_OK):
      raise OutputRefusedError(f"{shown} is read-only; make it writable or name another file.")
    if not os.access(parent, os.W_OK | os.X_OK):
      raise OutputRefusedError(
        f"{shown}: folder {parent} is read-only; make it writable or name another folder."
      )
    return target
  if os.path.lexists(target) and not os.path.isdir(target):
    raise OutputRefusedError(f"{shown} is an existing file, not a folder; name a folder.")
  existing = _nearest_existing(target)
  if not os.path.isdir(existing):
    raise OutputRefusedError(f"{shown}: {existing} is a file, not a folder; name another folder.")
  if existing == target and kind == "artefact":
    writable = os.path.dirname(target)  # the swap renames in the parent folder
  else:
    writable = existing
  for folder in {writable, existing}:
    if not os.access(folder, os.W_OK | os.X_OK):
      raise OutputRefusedError(
        f"{shown}: folder {folder} is read-only; make it writable or name another folder."
      )
  if kind == "artefact" and existing == target and os.listdir(target) and not overwrite:
    if not (is_artefact and is_artefact(target)):
      raise OutputRefusedError(
        f"{shown} is a folder that holds other things; name a new folder, or add --overwrite "
        "to replace it whole (nothing was written)."
      )
  return target
