"""Bad input to `jaxres train` / `jaxres eval` ends with one line on stderr and a non-zero code, a
traceback only with --verbose, and nothing written where nothing should be."""

import os

import numpy as np
import pytest

from jaxres import cli
from jaxres.train import Checkpointer
from jaxres.train.run import lock_run

CONFIG = """
from jaxres.train.config import default_config

def get_config():
  c = default_config()
  c.model.num_classes = 4
  c.data.num_frames, c.data.resize, c.data.crop_size = 4, 16, 16
  c.synthetic_data = True
  c.global_batch_size = 8
  c.num_train_steps = 2
  c.parallel.num_devices = 1
  c.progress_bar = False
  return c
"""


@pytest.fixture
def config(tmp_path):
  path = tmp_path / "tiny.py"
  path.write_text(CONFIG)
  return str(path)


def _one_line(capsys, prog):
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and err.startswith(f"{prog}: "), err
  return err


def test_train_errors_are_one_line(tmp_path, config, capsys):
  run = str(tmp_path / "run")
  cases = [  # (overrides, what the line says)
    (
      [
        "--config.synthetic_data=false",
        "--config.data.source=folder",
        f"--config.data.path={tmp_path}/nonexistent",
      ],
      "nonexistent",
    ),
    (
      [
        "--config.parallel.mode=pmap",
        "--config.parallel.num_devices=8",
        "--config.global_batch_size=12",
      ],
      "not divisible by the 8 devices",
    ),
    (["--config.optimizer.lr=0.1"], "optimizer.learning_rate"),
  ]
  for overrides, said in cases:
    assert cli.main(["train", "--config", config, "--workdir", run, *overrides]) == 2
    assert said in _one_line(capsys, "jaxres train")
  assert not os.path.exists(os.path.join(run, "checkpoints"))

  with lock_run(run):  # another training holds the folder
    assert cli.main(["train", "--config", config, "--workdir", run]) == 2
    assert f"process {os.getpid()}" in _one_line(capsys, "jaxres train")


def test_eval_errors_are_one_line_and_verbose_shows_the_traceback(tmp_path, config, capsys):
  missing = str(tmp_path / "missing")
  assert cli.main(["eval", "--config", config, "--workdir", missing]) == 1
  assert "No checkpoints in" in _one_line(capsys, "jaxres eval")
  assert not os.path.exists(missing)  # looking for checkpoints creates nothing

  run = str(tmp_path / "run")
  ckpt = Checkpointer(os.path.join(run, "checkpoints"), async_save=False)
  ckpt.save(2, {"w": np.zeros(3, np.float32)})  # not the configured model's state
  ckpt.close()
  # A step that does not exist: refused before any data is read (it used to hang).
  assert cli.main(["eval", "--config", config, "--workdir", run, "--step", "123"]) == 1
  assert "No checkpoint of step 123" in _one_line(capsys, "jaxres eval")
  assert cli.main(["eval", "--config", config, "--workdir", run]) == 1
  assert f"{run}/checkpoints/2 cannot be restored" in _one_line(capsys, "jaxres eval")
  assert cli.main(["eval", "--config", config, "--workdir", run, "--step", "123", "--verbose"]) == 1
  err = capsys.readouterr().err
  assert "Traceback" in err and err.strip().splitlines()[-1].startswith(
    "jaxres eval: No checkpoint"
  )


@pytest.mark.parametrize(
  "text, said",
  [
    ("def get_config(:\n  pass\n", "has a syntax error at line 1"),
    ("import no_such_module_here\n", "raised ModuleNotFoundError: No module named"),
    ("x = 1\n", "defines no get_config()"),
    ("def get_config():\n  raise RuntimeError('boom')\n", "get_config() raised RuntimeError: boom"),
    ("def get_config():\n  return None\n", "get_config() returned NoneType"),
  ],
)
def test_broken_config_files_are_one_line_naming_the_file(tmp_path, capsys, text, said):
  path = tmp_path / "broken.py"
  path.write_text(text)
  for command in ("train", "eval"):
    args = [command, "--config", str(path), "--workdir", str(tmp_path / "run")]
    assert cli.main(args) == 2
    line = _one_line(capsys, f"jaxres {command}")
    assert f"Config file '{path}'" in line and said in line, line
  assert cli.main(["train", "--config", str(path), "--workdir", str(tmp_path / "run"), "--verbose"])
  err = capsys.readouterr().err
  assert "Traceback" in err and said in err.strip().splitlines()[-1]
  assert not os.path.exists(tmp_path / "run")


@pytest.mark.parametrize(
  "override, said",
  [
    ("optimizer.learning_rate=-0.1", "'optimizer.learning_rate' must be > 0, got -0.1"),
    ("optimizer.learning_rate=0", "'optimizer.learning_rate' must be > 0, got 0.0"),
    ("global_batch_size=0", "'global_batch_size' must be >= 1, got 0"),
    ("grad_accum_steps=-2", "'grad_accum_steps' must be >= 1, got -2"),
    ("num_train_steps=-1", "'num_train_steps' must be >= 0, got -1"),
    ("optimizer.momentum=1.5", "'optimizer.momentum' must be in [0, 1), got 1.5"),
    ("ema_decay=-0.5", "'ema_decay' must be in [0, 1)"),
    ("log_every_steps=0", "'log_every_steps' must be >= 1, got 0"),
    ("data.num_frames=0", "'data.num_frames' must be >= 1, got 0"),
  ],
)
def test_values_out_of_range_are_refused_before_training(tmp_path, config, capsys, override, said):
  run = tmp_path / "run"
  assert cli.main(["train", "--config", config, "--workdir", str(run), f"--config.{override}"]) == 2
  assert said in _one_line(capsys, "jaxres train")
  assert not run.exists()  # refused before the run folder was made


@pytest.mark.parametrize(
  "option, said",
  [
    (["--num-processes", "0"], "--num-processes must be >= 1, got 0."),
    (["--process-id", "-1"], "--process-id must be >= 0, got -1."),
    (["--num-processes", "2", "--process-id", "2"], "--process-id must be in 0..1"),
  ],
)
def test_process_options_out_of_range_are_one_line(tmp_path, config, capsys, option, said):
  for command in ("train", "eval"):
    args = [command, "--config", config, "--workdir", str(tmp_path / "run"), *option]
    assert cli.main(args) == 2
    assert said in _one_line(capsys, f"jaxres {command}")


def test_zero_steps_on_a_new_folder_claims_no_summary(tmp_path, config, capsys):
  run = tmp_path / "run"
  assert (
    cli.main(["train", "--config", config, "--workdir", str(run), "--config.num_train_steps=0"])
    == 0
  )
  out = capsys.readouterr().out
  assert "summary.json is kept" not in out and "nothing to train" in out, out
  assert not (run / "summary.json").exists()
