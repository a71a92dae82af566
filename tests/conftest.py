"""Test configuration: 8 fake CPU devices so sharding is tested without accelerators, and a
persistent compilation cache shared by the xdist workers and the subprocesses tests start."""

import os
import sys

from xla_env import CODEGEN_FLAGS, DEVICE_FLAG  # the tests' folder is on sys.path; no jax there

# Must happen before jax is imported anywhere.
os.environ.setdefault("XLA_FLAGS", "")
if DEVICE_FLAG not in os.environ["XLA_FLAGS"]:
  os.environ["XLA_FLAGS"] += f" {DEVICE_FLAG}=8"
# Cheaper code generation for XLA:CPU: the tests check values, not speed, and compiling is most
# of their time. LLVM at -O1: a cold 100-step r3d_tiny run took 32 s against 48 s at XLA's default
# level, with steps no slower (0.061 against 0.075 s: the dots run in libraries; -O0 made them 3.6x
# slower). XLA's older elemental emitters for fusions instead of the MLIR ones: the model zoo's and
# the lowering tests' files took 160 s against 210 s, with the demo's steps as fast. Children
# inherit both (tests/xla_env.py keeps them when they change the device count).
for _flag, _value in CODEGEN_FLAGS.items():
  if _flag not in os.environ["XLA_FLAGS"]:
    os.environ["XLA_FLAGS"] += f" {_flag}={_value}"
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # TensorFlow must not grab accelerators.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# Compiling is most of the suite's time on CPU, and the same programs come back run after run
# (and in every subprocess that trains). Keyed on the program, the flags and jax's version, so a
# stale entry is never used; `pytest --cache-clear` empties it. Set as environment variables so
# that `jaxres train` subprocesses inherit them.
_CACHE_SETTINGS = {
  "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0.1",  # skip the many op-by-op compilations
  "JAX_COMPILATION_CACHE_MAX_SIZE": str(4 << 30),  # least recently used entries go first
}


def pytest_configure(config):
  cache = getattr(config, "cache", None)  # absent under -p no:cacheprovider
  default = (
    str(cache.mkdir("jax-compilation-cache"))
    if cache is not None
    else os.path.expanduser("~/.cache/jaxres/jax-test-cache")
  )
  os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", default)
  for key, value in _CACHE_SETTINGS.items():
    os.environ.setdefault(key, value)
  if "jax" in sys.modules:  # imported by a plugin before us: jax read its environment already
    import jax

    jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
    jax.config.update(
      "jax_persistent_cache_min_compile_time_secs",
      float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]),
    )
    jax.config.update(
      "jax_compilation_cache_max_size", int(os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"])
    )


# Triton, which torchvision loads, crashes the process (SIGSEGV) when TensorFlow was imported
# before it: load it first, whichever order the test modules import them in.
try:
  import torchvision  # noqa: F401  pylint: disable=unused-import
except ImportError:  # the torch extra is optional
  pass

# --- A tiny trained classification run, shared by the tests of using a trained model ------------

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_classifier_run(tmp_path_factory):
  """`(workdir, demo_root)`: r3d_tiny trained 2 steps on a 4-class demo set of 12 tiny videos.

  The run folder holds what `jaxres train` writes (config.json, classes.txt, checkpoints/).
  """
  from jaxres.train import load_config, train_and_evaluate

  root = tmp_path_factory.mktemp("tiny_run")
  demo, workdir = str(root / "demo"), str(root / "run")
  config = load_config(
    "demo",
    [
      f"--config.data.path={demo}",
      "--config.data.demo.videos_per_class=3",
      "--config.data.demo.num_frames=8",
      "--config.data.demo.size=24",
      "--config.data.num_frames=4",
      "--config.data.frame_stride=1",
      "--config.data.resize=20",
      "--config.data.crop_size=16",
      "--config.data.shuffle_buffer=4",
      "--config.global_batch_size=4",
      "--config.num_train_steps=2",
      "--config.eval_every_steps=0",
      "--config.parallel.num_devices=1",
      "--config.progress_bar=False",
      "--config.plot=False",
      "--config.tensorboard=False",
      "--config.checkpoint.async_save=False",
    ],
  )
  train_and_evaluate(config, workdir)
  return workdir, demo


# --- Order and groups for the xdist workers ------------------------------------------------------

# With two workers, a minutes-long test that starts late keeps one worker busy after the other ran
# out of tests (up to 2.5 minutes of a 24-minute run). Each worker takes the next test as it
# frees up, so the longest start first and the short ones fill in the end. Seconds are from
# `--durations` of the full suite on a 2-core EPYC; a name that no longer matches only loses its
# place.
_LONGEST_FIRST = (
  "tests/test_readme.py::test_readme_blocks_run_as_written[demo]",  # the README's blocks, by chain
  "tests/test_readme.py::test_readme_blocks_run_as_written[sr]",
  "tests/test_readme.py::test_readme_blocks_run_as_written[train@",
  "tests/test_demo.py::test_demo_reaches_90_percent",  # 125-160 s with the other worker busy
  "tests/test_train_multihost.py::test_two_processes_match_one",  # 47-71 s, three processes
  "tests/test_sr_upscale.py::test_peak_memory_does_not_grow_with_video_length",  # 108-132 s
  "tests/test_train_checkpoint.py::test_sigterm_then_kill9",  # ~31 s + 25 s fixture
  "tests/test_sr_memory_budget.py::test_upscale_stays_within_max_memory",  # 62-65 s
  "tests/test_sr_demo.py::",  # 50 s
  "tests/test_benchmarks.py::test_vs_torch_ratios_at_tiny_size",  # 31-36 s
  "tests/test_train_exit.py::test_train_on_demo_videos_exits_after_its_summary",  # 16 s
)
# Tests that share a fixture costing 10-40 s run on one worker, which builds it once.
_GROUPS = {
  "tests/test_predict.py::": "tiny_classifier_run",
  "tests/test_export.py::test_run_export": "tiny_classifier_run",
  "tests/test_load_run.py::test_load_variables": "tiny_classifier_run",
  "tests/test_sr_train.py::test_short_training": "trained_run",
  "tests/test_sr_train.py::test_upscale_command": "trained_run",
  "tests/test_train_parallel.py::": "one_device_references",  # its `reference` fixture
}


def pytest_collection_modifyitems(config, items):
  def rank(item):
    for i, prefix in enumerate(_LONGEST_FIRST):
      if item.nodeid.startswith(prefix):
        return 0, i
    return (1 if item.get_closest_marker("slow") else 2), 0

  items.sort(key=rank)  # stable: files keep their order within a rank


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, which `-p no:xdist` leaves out
def pytest_xdist_make_scheduler(config, log):
  """xdist's scope scheduler with `_GROUPS` as the scopes (every other test its own), in the
  collection order above: a worker gets the next test (or group) when it has 2 or fewer left.
  (xdist's own `xdist_group` marks do not reach its scheduler under pytest 9.)"""
  from xdist.scheduler import LoadScopeScheduling

  class GroupScheduling(LoadScopeScheduling):
    def _split_scope(self, nodeid):
      return next((group for prefix, group in _GROUPS.items() if nodeid.startswith(prefix)), nodeid)

  config.option.loadscopereorder = False  # keep the order; xdist would put big groups first
  return GroupScheduling(config, log)
