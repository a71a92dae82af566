"""Whole-or-nothing file writes: the content lands, an error keeps the old file, no leftovers."""

import os

import pytest

from jaxres.atomic_files import atomic_open, atomic_path, temporary_path, write_atomic


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
