"""Readers of a run folder while training writes it: only complete checkpoints are chosen, a
newest step deleted (wholly or in part) as it is read gives way to the next newest, a damaged one
is named, and a folder with no variables says what it expected."""

import os
import shutil

import jax
import numpy as np
import pytest

import jaxres
from jaxres import models
from jaxres.convert import files, load_variables
from jaxres.inference.shapes import IncompatibleCheckpointError, abstract_variables
from jaxres.train import load_config
from jaxres.train.checkpoint import Checkpointer
from jaxres.train.run import save_config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """A run folder of r3d_tiny with checkpoints 1, 2, 3 whose parameters are all the step."""
  workdir = str(tmp_path_factory.mktemp("run"))
  config = load_config("demo", ["--config.model.name=r3d_tiny"])
  save_config(config, workdir)
  model = models.from_config(config.model)
  shapes = abstract_variables(model, models.spec("r3d_tiny").input_rank)
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=5, async_save=False)
  for step in (1, 2, 3):
    variables = jax.tree.map(lambda s: np.full(s.shape, step, s.dtype), shapes)
    ckpt.save(step, {**variables, "opt_state": {"mu": np.zeros(3, np.float32)}})
  ckpt.close()
  return workdir


@pytest.fixture
def copy(run, tmp_path):
  """A copy of the run to damage."""
  return shutil.copytree(run, str(tmp_path / "run"))


def _step_of(variables):
  values = {float(np.asarray(x).flat[0]) for x in jax.tree.leaves(variables["params"])}
  assert len(values) == 1
  return int(values.pop())


def test_an_incomplete_newest_step_and_orbax_temporary_folders_are_not_chosen(copy):
  folder = os.path.join(copy, "checkpoints")
  shutil.copytree(os.path.join(folder, "3"), os.path.join(folder, "4.orbax-checkpoint-tmp-17"))
  shutil.copytree(os.path.join(folder, "3"), os.path.join(folder, "5"))
  os.remove(os.path.join(folder, "5", "commit_success.txt"))  # still being written
  os.makedirs(os.path.join(folder, "6", "default"))  # just begun
  assert files.complete_steps(folder) == [1, 2, 3]
  assert jaxres.load_run(copy).step == 3
  assert _step_of(load_variables(copy)) == 3


@pytest.mark.parametrize("how", ["whole", "in_part"])
def test_a_newest_step_deleted_while_read_gives_way_to_the_next_newest(copy, monkeypatch, how):
  restore = files.restore_training_variables
  read = []

  def garbage_collected_first(item):  # orbax deletes step 3 between listing and reading
    read.append(os.path.basename(os.path.dirname(item)))
    if len(read) == 1:
      if how == "whole":
        shutil.rmtree(os.path.dirname(item))
      else:
        for d, _, names in os.walk(item):
          for name in names:
            if name != "_METADATA":
              os.remove(os.path.join(d, name))
    return restore(item)

  monkeypatch.setattr(files, "restore_training_variables", garbage_collected_first)
  run = jaxres.load_run(copy)
  assert run.step == 2 and _step_of(run.variables) == 2 and read == ["3", "2"]


def test_a_damaged_newest_step_is_named_not_skipped(copy):
  data = os.path.join(copy, "checkpoints", "3", "default", "d")
  for name in os.listdir(data):
    with open(os.path.join(data, name), "r+b") as f:
      f.truncate(7)
  with pytest.raises(IncompatibleCheckpointError) as error:
    jaxres.load_run(copy)
  line = str(error.value)
  assert line.startswith("The checkpoint of step 3 in ") and "damaged" in line and "\n" not in line


def test_load_variables_on_an_empty_folder_says_what_it_expected(tmp_path):
  with pytest.raises(FileNotFoundError) as error:
    load_variables(str(tmp_path))
  line = str(error.value)
  assert line.startswith(f"{tmp_path} holds no variables: expected a folder written by")
  assert "\n" not in line


_READ_IN_A_FRESH_PROCESS = """
import glob, os, sys
import jaxres
from jaxres.convert import files

run, how = sys.argv[1], sys.argv[2]
restore, read = files.restore_training_variables, []


def damaged_as_read(item):  # step 3's arrays cut short (a full disk); for "deleted", then removed
  read.append(item)
  if len(read) > 1:
    return restore(item)
  arrays = glob.glob(os.path.join(item, "**", "d", "*"), recursive=True)
  for path in arrays:
    with open(path, "r+b") as f:
      f.truncate(100)
  try:
    return restore(item)
  finally:
    if how == "deleted":
      for path in arrays:
        os.remove(path)


files.restore_training_variables = damaged_as_read
try:
  print("step", jaxres.load_run(run).step)
except ValueError as error:
  print(error, file=sys.stderr)
"""


@pytest.mark.parametrize("how", ["damaged", "deleted"])
def test_a_failed_read_prints_only_its_one_line(copy, how):
  """Orbax's reads left in flight by the failed read of step 3 print no tracebacks, during the read
  or at exit: a damaged step is its one line, a step deleted as it is read falls back silently."""
  import subprocess
  import sys

  done = subprocess.run(
    [sys.executable, "-c", _READ_IN_A_FRESH_PROCESS, copy, how],
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert done.returncode == 0, done.stderr
  if how == "deleted":
    assert (done.stdout, done.stderr) == ("step 2\n", "")
  else:
    assert done.stdout == ""
    assert (
      done.stderr.startswith("The checkpoint of step 3 in ") and done.stderr.count("\n") == 1
    ), done.stderr
