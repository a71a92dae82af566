"""Whole-or-nothing file writes: the content lands, an error keeps the old file, no leftovers."""

import os
import signal
import subprocess
import sys
import threading

import pytest

from jaxres import atomic_files
from jaxres.atomic_files import (
  OutputRefusedError,
  atomic_folder,
  atomic_open,
  atomic_path,
  check_output,
  remove_stale_partials,
  temporary_path,
  write_atomic,
)


def test_text_and_bytes_replace_the_file_and_leave_nothing_else(tmp_path):
  path = str(tmp_path / "a.json")
  assert write_atomic(path, "old") == path
  write_atomic(path, b"\x00new")
  with open(path, "rb") as f:
    assert f.read() == b"\x00new"
  assert os.listdir(tmp_path) == ["a.json"]


def test_an_error_mid_write_keeps_the_old_file(tmp_path):
  path = str(tmp_path / "a.txt")
  write_atomic(path, "old")
  with pytest.raises(RuntimeError, match="disk full"):
    with atomic_open(path) as f:
      f.write("half of the new")
      raise RuntimeError("disk full")
  with open(path) as f:
    assert f.read() == "old"
  assert os.listdir(tmp_path) == ["a.txt"]


def test_temporary_names_differ_between_writers_of_one_file(tmp_path):
  path = str(tmp_path / "a.txt")
  names = {temporary_path(path) for _ in range(100)}
  assert len(names) == 100
  for name in names:  # beside it, hidden, with its suffix
    folder, base = os.path.split(name)
    assert folder == str(tmp_path) and base.startswith(".a.") and base.endswith(".partial.txt")
  with atomic_open(path) as first, atomic_open(path) as second:  # interleaved, as two processes
    first.write("first")
    second.write("second")
  with open(path) as f:
    assert f.read() == "first"  # the outer block ends last: its rename wins


def test_modes_other_than_write_are_refused(tmp_path):
  with pytest.raises(ValueError, match="mode must be 'w' or 'wb', not 'a'"):
    with atomic_open(str(tmp_path / "a.txt"), "a"):
      pass


def test_a_path_for_name_taking_writers_is_renamed_or_removed(tmp_path):
  path = str(tmp_path / "a.bin")
  with atomic_path(path) as tmp:
    with open(tmp, "wb") as f:
      f.write(b"new")
    assert not os.path.exists(path)
  with pytest.raises(OSError):
    with atomic_path(path) as tmp:
      with open(tmp, "wb") as f:
        f.write(b"half")
      raise OSError("encoder failed")
  with open(path, "rb") as f:
    assert f.read() == b"new"
  assert os.listdir(tmp_path) == ["a.bin"]


# The write rule: links written through, devices never renamed over, folders swapped whole.

AS_ROOT = os.geteuid() == 0  # root writes through permission bits: read-only cases are skipped


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path):
  (tmp_path / "real").mkdir()
  target = tmp_path / "real" / "a.json"
  target.write_text("old")
  link = tmp_path / "link.json"
  link.symlink_to(target)
  write_atomic(str(link), "new")
  assert link.is_symlink() and os.readlink(link) == str(target)
  assert target.read_text() == "new"
  assert sorted(os.listdir(tmp_path)) == ["link.json", "real"]
  assert os.listdir(tmp_path / "real") == ["a.json"]


def test_devices_and_fifos_are_written_directly_never_renamed_over(tmp_path):
  write_atomic("/dev/null", "into the void")  # a character device: opened and written
  assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
  fifo = str(tmp_path / "pipe")
  os.mkfifo(fifo)
  got = []
  reader = threading.Thread(target=lambda: got.append(open(fifo).read()))
  reader.start()
  write_atomic(fifo, "through the pipe")
  reader.join(10)
  assert got == ["through the pipe"]
  assert os.path.exists(fifo) and not os.path.isfile(fifo)  # still a FIFO
  assert os.listdir(tmp_path) == ["pipe"]
  if os.path.exists("/dev/full"):
    with pytest.raises(OSError) as error:
      write_atomic("/dev/full", "x" * 10)
    assert error.value.errno == 28  # ENOSPC, for the command to report
    assert not os.path.isfile("/dev/full")


def test_a_folder_is_refused_as_a_file(tmp_path):
  with pytest.raises(OutputRefusedError, match="is a folder; name a file"):
    write_atomic(str(tmp_path), "x")
  assert os.listdir(tmp_path) == []


def test_check_output_refuses_inputs_folders_and_missing_parents(tmp_path):
  video = tmp_path / "clip.mp4"
  video.write_bytes(b"video")
  (tmp_path / "alias.mp4").symlink_to(video)
  with pytest.raises(OutputRefusedError, match=r"--json .*alias.mp4 is the input .*clip.mp4"):
    check_output(str(tmp_path / "alias.mp4"), inputs=[str(video)], option="--json")
  with pytest.raises(OutputRefusedError, match="holds the input"):
    check_output(str(tmp_path), inputs=[str(video)], kind="artefact")
  with pytest.raises(OutputRefusedError, match="is a folder; name a file"):
    check_output(str(tmp_path))
  with pytest.raises(OutputRefusedError, match="does not exist; create it first"):
    check_output(str(tmp_path / "no" / "out.json"))
  with pytest.raises(OutputRefusedError, match="is an existing file, not a folder"):
    check_output(str(video), kind="folder")
  with pytest.raises(OutputRefusedError, match=r"clip.mp4 is a file, not a folder"):
    check_output(str(video / "out"), kind="artefact")
  assert check_output("/dev/null") == "/dev/null"
  assert check_output(str(tmp_path / "new" / "deeper"), kind="folder").endswith("deeper")
  assert video.read_bytes() == b"video"


def test_check_output_refuses_a_folder_of_other_things_unless_overwrite(tmp_path):
  out = tmp_path / "out"
  out.mkdir()
  (out / "notes.txt").write_text("mine")
  with pytest.raises(OutputRefusedError, match="holds other things.*--overwrite"):
    check_output(str(out), kind="artefact")
  check_output(str(out), kind="artefact", overwrite=True)
  check_output(str(out), kind="artefact", is_artefact=lambda p: os.listdir(p) == ["notes.txt"])
  check_output(str(out), kind="folder")  # written into, its files kept


@pytest.mark.skipif(AS_ROOT, reason="root writes through permission bits")
def test_check_output_refuses_read_only_destinations(tmp_path):
  folder = tmp_path / "ro"
  folder.mkdir()
  (folder / "a.json").write_text("x")
  os.chmod(folder / "a.json", 0o444)
  with pytest.raises(OutputRefusedError, match="a.json is read-only"):
    check_output(str(folder / "a.json"))
  os.chmod(folder, 0o555)
  try:
    for kind, name in (("file", "b.json"), ("folder", "sub"), ("artefact", "sub")):
      with pytest.raises(OutputRefusedError, match="is read-only; make it writable"):
        check_output(str(folder / name), kind=kind)
  finally:
    os.chmod(folder, 0o755)


def test_check_output_asks_os_access_so_read_only_filesystems_are_refused_as_root(
  tmp_path, monkeypatch
):
  """As root only a read-only filesystem stops a write; os.access says so (EROFS)."""
  real_access = os.access
  monkeypatch.setattr(
    atomic_files.os, "access", lambda p, m: False if str(p) == str(tmp_path) else real_access(p, m)
  )
  with pytest.raises(OutputRefusedError, match=f"folder {tmp_path} is read-only"):
    check_output(str(tmp_path / "a.json"))


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_atomic_folder_replaces_the_old_artefact_whole(tmp_path, monkeypatch, exchange):
  if not exchange:
    monkeypatch.setattr(atomic_files, "_exchange", lambda a, b: False)
  out = tmp_path / "export"
  out.mkdir()
  (out / "model.json").write_text("old")
  (out / "saved_model").mkdir()  # the old export had a SavedModel; the new one has none
  with atomic_folder(str(out)) as folder:
    assert (out / "model.json").read_text() == "old"  # untouched while the new one is built
    with open(os.path.join(folder, "model.json"), "w") as f:
      f.write("new")
  assert os.listdir(out) == ["model.json"] and (out / "model.json").read_text() == "new"
  assert os.listdir(tmp_path) == ["export"]
  with pytest.raises(RuntimeError):  # an error keeps the old one
    with atomic_folder(str(out)) as folder:
      open(os.path.join(folder, "half"), "w").close()
      raise RuntimeError("export failed")
  assert os.listdir(out) == ["model.json"] and os.listdir(tmp_path) == ["export"]


def test_atomic_folder_writes_through_a_link(tmp_path):
  (tmp_path / "real").mkdir()
  (tmp_path / "link").symlink_to(tmp_path / "real")
  with atomic_folder(str(tmp_path / "link")) as folder:
    open(os.path.join(folder, "model.json"), "w").close()
  assert (tmp_path / "link").is_symlink() and os.listdir(tmp_path / "real") == ["model.json"]


_KILLED_WRITER = """
import os, signal, sys
from jaxres import atomic_files
out, where = sys.argv[1], sys.argv[2]
if where == "between-renames":
  atomic_files._exchange = lambda a, b: False
  real_rename = os.rename
  def rename(a, b):
    real_rename(a, b)
    if b.endswith(atomic_files._REPLACED):
      os.kill(os.getpid(), signal.SIGKILL)
  atomic_files.os.rename = rename
with atomic_files.atomic_folder(out) as folder:
  open(os.path.join(folder, "model.json"), "w").write("new")
  if where == "inside":
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("where", ["inside", "between-renames"])
def test_a_kill_leaves_the_old_or_the_new_artefact_and_a_rerun_cleans_up(tmp_path, where):
  out = tmp_path / "export"
  out.mkdir()
  (out / "model.json").write_text("old")
  (out / "saved_model").mkdir()
  result = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(out), where], timeout=60)
  assert result.returncode == -signal.SIGKILL
  leftovers = [n for n in os.listdir(tmp_path) if n != "export"]
  assert len(leftovers) == 1 and leftovers[0].startswith(".export.") and ".partial" in leftovers[0]
  removed = remove_stale_partials(str(out))
  assert [os.path.basename(p) for p in removed] == leftovers
  assert os.listdir(tmp_path) == ["export"]
  if where == "inside":
    assert sorted(os.listdir(out)) == ["model.json", "saved_model"]
    assert (out / "model.json").read_text() == "old"
  else:  # the new one was complete: put in place, without the old saved_model beside it
    assert os.listdir(out) == ["model.json"] and (out / "model.json").read_text() == "new"


def test_stale_partials_of_dead_writers_only_are_removed(tmp_path):
  out = str(tmp_path / "clip.mp4")
  dead = subprocess.run(
    [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
  ).stdout.strip()
  stale = tmp_path / f".clip.{dead}-0123abcd.partial.mp4"
  live = tmp_path / f".clip.{os.getpid()}-0123abcd.partial.mp4"
  other = tmp_path / f".other.{dead}-0123abcd.partial.mp4"
  for leftover in (stale, live, other):
    leftover.write_bytes(b"half")
  assert remove_stale_partials(out) == [str(stale)]
  assert sorted(os.listdir(tmp_path)) == sorted([live.name, other.name])


def test_dev_stdout_redirected_to_a_file_is_appended_to_not_renamed_over(tmp_path):
  """`--json /dev/stdout > log.txt`: /dev/stdout resolves to log.txt, which the shell holds open;
  renaming over it would lose everything (the process writes to the replaced inode)."""
  log = tmp_path / "log.txt"
  script = (
    "from jaxres.atomic_files import check_output, write_atomic\n"
    "print('printed first')\n"
    "assert check_output('/dev/stdout', option='--json') == '/dev/stdout'\n"
    "write_atomic('/dev/stdout', 'written whole\\n')\n"
  )
  with open(log, "w") as stdout:
    inode = os.fstat(stdout.fileno()).st_ino
    subprocess.run([sys.executable, "-c", script], stdout=stdout, check=True, timeout=60)
  assert log.read_text() == "printed first\nwritten whole\n"
  assert os.stat(log).st_ino == inode and os.listdir(tmp_path) == ["log.txt"]
  piped = subprocess.run(
    [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
  )
  assert piped.stdout == "printed first\nwritten whole\n"
