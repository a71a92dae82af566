"""A run folder while training: its saved config and the lock that keeps one training in it.

`jaxres train` writes `config.json` (the whole config) and orbax checkpoints under
`checkpoints/`; `jaxres.inference.load_run` rebuilds the trained model from them (re-exported
here with `Run` and `read_config`, where earlier code imports them).

Example:
  >>> with lock_run("runs/demo"):
  ...   save_config(config, "runs/demo")
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

try:
  import fcntl
except ImportError:  # Windows: no advisory locks, so run folders are not locked there.
  fcntl = None

import ml_collections

from jaxres.atomic_files import write_atomic
from jaxres.inference.runs import CONFIG_FILE, Run, load_run, read_config  # noqa: F401

LOCK_FILE = ".lock"


class RunLockedError(RuntimeError):
  """Another live process is training in the same run folder."""


def save_config(config: ml_collections.ConfigDict, workdir: str) -> str:
  """Writes `config` as `workdir/config.json` (what `read_config` reads); returns the path.

  Args:
    config: a training config.
    workdir: the run folder (created if missing).

  Returns:
    The path written (atomically: a temporary file renamed over it).

  Example:
    >>> save_config(config, "runs/demo")
  """
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, CONFIG_FILE)
  return write_atomic(path, config.to_json_best_effort(indent=2))


@contextlib.contextmanager
def lock_run(workdir: str) -> Iterator[str]:
  """Holds `workdir/.lock` exclusively while the block runs: one training per run folder.

  The lock is `fcntl.flock` on the open file, so the OS releases it when the holder exits in any
  way (kill -9 included): a dead process never keeps a folder locked, and a stale `.lock` file left
  behind is simply locked again. The holder's pid is written into the file for the error message.

  Args:
    workdir: the run folder (created if missing).

  Yields:
    The lock file's path.

  Raises:
    RunLockedError: another process holds the lock.

  Example:
    >>> with lock_run("runs/demo"):
    ...   train(...)
  """
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, LOCK_FILE)
  if fcntl is None:
    yield path
    return
  with open(path, "a+") as f:
    try:
      fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      f.seek(0)
      holder = f.read().strip() or "another process"
      raise RunLockedError(
        f"{workdir} is in use by a training run (process {holder}); wait for it to end or "
        "use another --workdir."
      ) from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    try:
      yield path
    finally:
      f.truncate(0)  # the lock itself goes with the file's closing
      fcntl.flock(f.fileno(), fcntl.LOCK_UN)
