"""`config.profile_steps` writes a jax.profiler trace of those train steps under the run folder."""

import glob
import os

import pytest

from jaxres.tasks import ClassificationTask
from jaxres.train import default_config, train_and_evaluate
from jaxres.train.checks import check_config
from jaxres.train.compile_cache import default_cache_dir, enable_compilation_cache


def _config():
  c = default_config()
  c.model.num_classes = 4
  c.model.conv_lowering = "native"  # compiles fastest
  c.data.num_frames, c.data.resize, c.data.crop_size = 2, 8, 8
  c.synthetic_data = True
  c.global_batch_size = 2
  c.num_train_steps = 3
  c.parallel.num_devices = 1
  c.checkpoint.every_steps = 0
  c.checkpoint.async_save = False
  c.eval_steps = 1
  c.progress_bar = c.tensorboard = c.plot = False
  return c


@pytest.mark.slow
def test_profile_steps_write_a_trace_in_the_run_folder(tmp_path):
  config = _config()
  config.profile_steps = (2, 3)
  summary = train_and_evaluate(config, str(tmp_path))
  assert summary["step"] == 3
  traces = glob.glob(str(tmp_path / "profile" / "plugins" / "profile" / "*" / "*.xplane.pb"))
  assert len(traces) == 1 and os.path.getsize(traces[0]) > 1000, traces


def test_bad_profile_steps_are_refused():
  config = _config()
  for bad in ((3, 2), (0, 2), (1, 2, 3)):
    config.profile_steps = bad
    with pytest.raises(ValueError, match=r"profile_steps=.* must be \(first, last\) train steps"):
      check_config(config, ClassificationTask(), uses_data_config=False)


def test_compilation_cache_defaults_to_a_user_folder(monkeypatch, tmp_path):
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
  assert default_cache_dir() == str(tmp_path / "jaxres" / "xla")
  assert default_config().compilation_cache_dir == str(tmp_path / "jaxres" / "xla")
  # The environment's choice (the test suite's own cache) wins over the config's.
  monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "env"))
  assert enable_compilation_cache(str(tmp_path / "config")) == str(tmp_path / "env")
  assert not os.path.exists(tmp_path / "config")
