"""Getting back to a trained model: `jaxres.load_run` at the top level (loaded lazily) and
`jaxres.convert.load_variables` on any folder of a run."""

import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import jaxres
from jaxres.convert import load_variables, save_variables

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_import_jaxres_is_light_and_exports_load_run():
  code = (
    "import sys, jaxres; print(sorted(m for m in ('jax', 'tensorflow', 'flax', 'orbax') "
    "if m in sys.modules)); print(jaxres.load_run.__module__)"
  )
  out = subprocess.run(
    [sys.executable, "-c", code],
    capture_output=True,
    text=True,
    timeout=300,
    cwd=REPO,
    env={**os.environ, "PYTHONPATH": REPO},
  )
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.split("\n")[:2] == ["[]", "jaxres.inference.runs"]
  assert "load_run" in dir(jaxres)
  with pytest.raises(AttributeError, match="no attribute 'nothing'"):
    jaxres.nothing  # pylint: disable=pointless-statement


def _equal(a, b):
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


@pytest.mark.slow  # uses the tiny trained run of tests/conftest.py
def test_load_variables_reads_every_folder_of_a_run(tiny_classifier_run, tmp_path):
  workdir, _ = tiny_classifier_run
  run = jaxres.load_run(workdir)
  assert run.step == 2 and run.config.model.name == "r3d_tiny"
  step = os.path.join(workdir, "checkpoints", "2")
  for path in (workdir, os.path.join(workdir, "checkpoints"), step, os.path.join(step, "default")):
    variables = load_variables(path)
    assert set(variables) == {"params", "batch_stats"}
    _equal(variables, run.variables)
  with pytest.raises(FileNotFoundError, match="No checkpoint of step 7 .* its steps are 2"):
    load_variables(workdir, step=7)
  # A converted file: .msgpack round trip gives the same logits.
  path = save_variables(run.variables, str(tmp_path / "model.msgpack"))
  x = np.zeros((1, 4, 16, 16, 3), np.float32)
  apply = jax.jit(lambda v, x: run.model.apply(v, x, train=False))
  np.testing.assert_array_equal(apply(load_variables(path), x), apply(run.variables, x))
