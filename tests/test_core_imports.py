"""The core install (jax, flax, optax, numpy) is enough for the models, the pure steps, the state,
the optimiser, the parallel engines, weight conversion and published weights (`load_pretrained`):
none of them imports the `video` extra."""

import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXTRAS = ("tensorflow", "tensorflow_datasets", "orbax", "ml_collections", "av", "imageio")
CORE_MODULES = (
  "jaxres.models",
  "jaxres.train",
  "jaxres.train.steps",
  "jaxres.train.state",
  "jaxres.train.parallel",
  "jaxres.train.optimizer",
  "jaxres.train.build",
  "jaxres.convert",
  "jaxres.weights",
  "jaxres.inference.pretrained",
)

# Makes the extras' modules look uninstalled (as in a `pip install jaxres` environment).
MISSING_EXTRAS = textwrap.dedent(f"""
    import importlib, importlib.abc, sys

    BLOCKED = {EXTRAS!r}

    class Missing(importlib.abc.MetaPathFinder):
      def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in BLOCKED:
          raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)", name=name)
        return None

    sys.meta_path.insert(0, Missing())
""")


def _python(script: str, *, missing_extras: bool = True) -> subprocess.CompletedProcess:
  """Runs `script` in a fresh interpreter on this checkout, optionally with the extras missing."""
  code = (MISSING_EXTRAS if missing_extras else "") + textwrap.dedent(script)
  env = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])),
  }
  return subprocess.run(
    [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, timeout=300
  )


@pytest.mark.slow
def test_models_steps_and_conversion_work_with_the_extras_missing():
  result = _python(f"""
      try:  # the hook works: the config module needs ml_collections
        importlib.import_module("jaxres.train.config")
        raise AssertionError("jaxres.train.config imported without ml_collections")
      except ImportError:
        pass
      for name in {CORE_MODULES!r}:
        importlib.import_module(name)

      import jax, numpy as np, optax
      from jaxres import models
      from jaxres.train import ClassificationTask, init_state, make_eval_step, make_train_step

      model = models.get("r3d_tiny", num_classes=4, conv_lowering="native")  # compiles fastest
      tx = optax.sgd(0.1, momentum=0.9)
      shape = (2, 4, 16, 16, 3)
      state = jax.jit(lambda key: init_state(model, tx, key, shape))(jax.random.key(0))
      task = ClassificationTask()
      train_step = jax.jit(make_train_step(model, task, tx, lambda step: 0.1), donate_argnums=(0,))
      rng = np.random.default_rng(0)
      batch = {{"video": rng.normal(size=shape).astype(np.float32),
                "label": rng.integers(0, 4, size=shape[0]).astype(np.int32)}}
      state, metrics = train_step(state, batch, jax.random.key(1))
      assert int(state.step) == 1 and np.isfinite(float(metrics["loss"])), metrics
      per_example = jax.jit(make_eval_step(model, task))(state, batch)
      assert all(np.shape(v)[0] == shape[0] for v in per_example.values()), per_example
      print(sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED))
  """)
  assert result.returncode == 0, result.stderr[-4000:]
  assert result.stdout.strip().splitlines()[-1] == "[]"


def test_cli_names_the_extra_a_command_needs():
  result = _python("""
      from jaxres import cli
      sys.exit(cli.main(["train", "--config", "demo"]))
  """)
  assert result.returncode == 1, result.stderr[-4000:]
  assert "jaxres train needs 'ml_collections'" in result.stderr, result.stderr[-4000:]
  assert "pip install 'jaxres[video]'" in result.stderr


def test_importing_the_models_does_not_import_tensorflow():
  result = _python(
    """
      import sys
      import jaxres.models
      import jaxres.train
      print("tensorflow" in sys.modules, "orbax" in sys.modules, "ml_collections" in sys.modules)
  """,
    missing_extras=False,
  )
  assert result.returncode == 0, result.stderr[-4000:]
  assert result.stdout.split() == ["False", "False", "False"]


def test_lazy_train_namespace_exports_every_name():
  import jaxres.train as train

  for name in train.__all__:
    assert getattr(train, name) is not None, name
  assert set(train.__all__) <= set(dir(train))
