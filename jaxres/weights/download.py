"""Published files on this machine: downloaded once, hash-checked, kept in a cache.

The cache is `$JAXRES_CACHE_DIR`, else `$XDG_CACHE_HOME/jaxres`, else `~/.cache/jaxres`:
`weights/FILE` holds the publishers' files under their own names, `weights/sha256.json` the
sha256 of each file as first verified (so a file whose publisher gives no hash is still checked
against its first reading, and a changed file is noticed), `converted/` the jaxres variables
made from them. A download goes to a hidden temporary name beside its target and is renamed only
once its hash checks: an interrupted or corrupt download leaves nothing under the final name,
and a rerun starts clean. `$JAXRES_WEIGHTS_MIRROR` (a base URL) fetches every file by its file
name from a mirror instead of the publisher, for clusters without internet.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import sys
import urllib.error
import urllib.request
from typing import Callable, Optional

from jaxres.atomic_files import atomic_open, atomic_path
from jaxres.weights.registry import WeightsEntry

MIRROR_VARIABLE = "JAXRES_WEIGHTS_MIRROR"
_CHUNK = 1 << 20


class WeightsError(RuntimeError):
  """A published file that cannot be had or does not check out; the message says what to do."""


def cache_dir() -> str:
  """The root of jaxres' cache (created when first written to).

  Example:
    >>> cache_dir()
    '/home/me/.cache/jaxres'
  """
  if os.environ.get("JAXRES_CACHE_DIR"):
    return os.path.abspath(os.environ["JAXRES_CACHE_DIR"])
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(os.path.abspath(base), "jaxres")


def cached_file(entry: WeightsEntry) -> str:
  """Where the entry's file is (or will be) in the cache."""
  return os.path.join(cache_dir(), "weights", entry.file_name)


def source_url(entry: WeightsEntry) -> str:
  """The URL the file is fetched from: the mirror's when `$JAXRES_WEIGHTS_MIRROR` is set."""
  mirror = os.environ.get(MIRROR_VARIABLE, "").strip()
  return f"{mirror.rstrip('/')}/{entry.file_name}" if mirror else entry.url


def recorded_sha256(entry: WeightsEntry) -> Optional[str]:
  """The full sha256 of the entry's file as first verified here, or None."""
  return _read_record().get(entry.file_name)


def fetch(entry: WeightsEntry, *, progress: bool = True, timeout: float = 60.0) -> str:
  """The entry's file in the cache, downloaded and verified first if it is not there yet.

  Args:
    entry: a registry entry (`jaxres.weights.get(name)`).
    progress: show a progress bar on stderr while downloading.
    timeout: seconds without data before the download is given up.

  Returns:
    The cached file's path.

  Raises:
    WeightsError: the download failed (HTTP error, timeout, connection cut, full disk) or the
      file's hash differs from the published (or first recorded) one; nothing is left under the
      final name.

  Example:
    >>> fetch(get("r3d_18.kinetics400"))
    '/home/me/.cache/jaxres/weights/r3d_18-b3b3357e.pth'
  """
  path = cached_file(entry)
  if os.path.isfile(path):
    _verify(
      entry,
      path,
      what=f"the cached file {path}",
      remedy=f"delete it and run `jaxres weights download {entry.name}` again",
    )
    return path
  os.makedirs(os.path.dirname(path), exist_ok=True)
  url = source_url(entry)
  try:
    with atomic_path(path) as partial:
      digest = _download(
        url, partial, timeout=timeout, progress=_progress_bar(entry.file_name) if progress else None
      )
      _check_digest(
        entry,
        digest,
        what=f"the file downloaded from {url}",
        remedy="the download was corrupt or the file changed upstream; try again, "
        "or fetch it yourself and check it",
      )
  except WeightsError:
    raise
  except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
    raise WeightsError(
      f"{entry.name}: downloading {url} failed: {_reason(error)}. Check the network (or set "
      f"{MIRROR_VARIABLE} to a mirror), or fetch the file by other means and run `jaxres "
      f"weights import FILE {entry.name}`."
    ) from None
  _record(entry, digest)
  return path


def import_file(entry: WeightsEntry, file: str) -> str:
  """Copies a file the user fetched by other means into the cache, after the same checks.

  The user's file is read, never moved or changed.

  Args:
    entry: the registry entry the file is for.
    file: its path.

  Returns:
    The cached copy's path.

  Raises:
    FileNotFoundError: no such file.
    WeightsError: its hash differs from the published (or recorded) one.

  Example:
    >>> import_file(get("r3d_18.kinetics400"), "downloads/r3d_18-b3b3357e.pth")
  """
  if not os.path.isfile(file):
    raise FileNotFoundError(f"No file {file} to import as {entry.name}.")
  path = cached_file(entry)
  if os.path.exists(path) and os.path.samefile(path, file):
    _verify(entry, path, what=file, remedy="it is not the published file")
    return path
  digest = _file_sha256(file)
  _check_digest(entry, digest, what=file, remedy=f"it is not the file published at {entry.url}")
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with atomic_path(path) as partial:
    shutil.copyfile(file, partial)
  _record(entry, digest)
  return path


def _verify(entry: WeightsEntry, path: str, *, what: str, remedy: str) -> None:
  digest = _file_sha256(path)
  _check_digest(entry, digest, what=what, remedy=remedy)
  _record(entry, digest)


def _check_digest(entry: WeightsEntry, digest: str, *, what: str, remedy: str) -> None:
  expected = entry.sha256 or _read_record().get(entry.file_name)
  if expected and not digest.startswith(expected):
    source = "published" if entry.sha256 else "recorded when it was first read"
    raise WeightsError(
      f"{entry.name}: {what} has sha256 {digest[:16]}..., not the {source} "
      f"{expected[:16]}...; {remedy}."
    )


def _download(
  url: str, target: str, *, timeout: float, progress: Optional[Callable[[int, Optional[int]], None]]
) -> str:
  """Streams `url` into `target`; returns the sha256 of what was written."""
  request = urllib.request.Request(url, headers={"User-Agent": "jaxres"})
  digest = hashlib.sha256()
  with urllib.request.urlopen(request, timeout=timeout) as response, open(target, "wb") as out:
    total = response.headers.get("Content-Length")
    total = int(total) if total and total.isdigit() else None
    done = 0
    while True:
      chunk = response.read(_CHUNK)
      if not chunk:
        break
      out.write(chunk)
      digest.update(chunk)
      done += len(chunk)
      if progress:
        progress(done, total)
    if total is not None and done != total:
      raise ValueError(f"the connection closed after {done} of {total} bytes")
  if progress:
    progress(-1, total)
  return digest.hexdigest()


def _progress_bar(label: str) -> Callable[[int, Optional[int]], None]:
  """A progress callback: tqdm when installed, else a plain line redrawn on stderr."""
  try:
    from tqdm import tqdm  # pylint: disable=import-outside-toplevel
  except ImportError:
    tqdm = None
  state = {"bar": None, "shown": 0}

  def update(done: int, total: Optional[int]) -> None:
    if tqdm is not None:
      if state["bar"] is None:
        state["bar"] = tqdm(total=total, unit="B", unit_scale=True, desc=label, file=sys.stderr)
      if done < 0:
        state["bar"].close()
        return
      state["bar"].update(done - state["shown"])
      state["shown"] = done
    elif done < 0:
      print(file=sys.stderr)
    else:
      share = f" {100 * done // total}%" if total else ""
      print(f"\r{label}: {done / 1e6:.1f} MB{share}", end="", file=sys.stderr)

  return update


def _file_sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(_CHUNK), b""):
      digest.update(chunk)
  return digest.hexdigest()


def _record_path() -> str:
  return os.path.join(cache_dir(), "weights", "sha256.json")


def _read_record() -> dict[str, str]:
  try:
    with open(_record_path()) as f:
      return dict(json.load(f))
  except (FileNotFoundError, ValueError):
    return {}


def _record(entry: WeightsEntry, digest: str) -> None:
  record = _read_record()
  if record.get(entry.file_name) == digest:
    return
  record[entry.file_name] = digest
  os.makedirs(os.path.dirname(_record_path()), exist_ok=True)
  with atomic_open(_record_path()) as f:
    json.dump(record, f, indent=1, sort_keys=True)


def _reason(error: BaseException) -> str:
  if isinstance(error, urllib.error.HTTPError):
    return f"HTTP {error.code} {error.reason}"
  if isinstance(error, urllib.error.URLError):
    return str(error.reason)
  if isinstance(error, http.client.IncompleteRead):
    return f"the connection closed after {len(error.partial)} bytes"
  if isinstance(error, OSError) and error.errno == 28:
    return f"the disk is full ({cache_dir()})"
  return str(error) or type(error).__name__
