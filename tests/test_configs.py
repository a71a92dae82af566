"""Every shipped config loads by name, is locked, names its misspelt keys, and builds its model and
optimiser; config names and paths resolve as documented, also from an installed (non-editable) wheel."""

import os
import shutil
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import ml_collections
import pytest

from jaxres import configs, models
from jaxres.commands import train as train_command
from jaxres.train import build_model, build_task, create_optimizer, load_config
from jaxres.train.config import CONFIGS_DIR

CONFIGS = configs.names()
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_configs_exist():
  names = set(CONFIGS)
  assert all(os.path.isfile(os.path.join(CONFIGS_DIR, f"{n}.py")) for n in names)
  expected = (
    {"demo", "demo_2d", "cifar10_resnet20", "cifar10_resnet56"}
    | {f"{d}_{m}" for d in ("ucf101", "kinetics400") for m in ("r3d_18", "mc3_18", "r2plus1d_18")}
    | {"kinetics400_csn_r101", "kinetics400_slowfast_r50", "kinetics400_x3d_m"}
  )
  assert expected <= names


@pytest.mark.parametrize("name", ["csn_r101", "slowfast_r50"])
def test_pytorchvideo_recipes_are_pyslowfasts(name):
  c = load_config(f"kinetics400_{name}")
  assert (c.model.name, c.model.dropout_rate, c.data.num_frames, c.data.frame_stride) == (
    name,
    0.5,
    32,
    2,
  )
  assert (c.global_batch_size, c.optimizer.learning_rate, c.schedule.name) == (64, 0.1, "cosine")
  epoch = 240436 // 64
  assert (c.num_train_steps, c.schedule.warmup_steps) == (196 * epoch, 34 * epoch)
  spec = models.spec(c.model.name)
  assert (spec.num_frames, spec.frame_stride, spec.crop_size) == (
    c.data.num_frames,
    c.data.frame_stride,
    c.data.crop_size,
  )


@pytest.mark.parametrize(
  "name, model, lr, frames",
  [("reds_basicvsr", "basicvsr", 2e-4, 15), ("vimeo_basicvsrpp", "basicvsrpp", 1e-4, 7)],
)
def test_video_sr_recipes_are_the_papers(name, model, lr, frames):
  c = load_config(name)
  assert (c.model.name, c.model.scale, c.task.scale, c.data.lr_scale) == (model, 4, 4, 4)
  assert (c.optimizer.learning_rate, c.global_batch_size, c.data.crop_size) == (lr, 8, 256)
  assert (c.data.source, c.data.num_frames, c.task.loss) == ("frames", frames, "charbonnier")
  c = load_config(name, ["--config.model.scale=2"])  # one scale for model, task and LR frames
  assert (c.task.scale, c.data.lr_scale) == (2, 2)


@pytest.mark.parametrize("name", CONFIGS)
def test_config_loads_and_builds(name):
  config = load_config(name)
  assert config.is_locked
  spec = models.spec(config.model.name)
  model = build_model(config)
  task = build_task(config)
  tx, schedule = create_optimizer(config)
  assert float(schedule(0)) >= 0.0 and float(schedule(config.num_train_steps)) >= 0.0
  if spec.task == "classification":
    d = config.data
    frames = (d.num_frames,) if spec.input_rank == 5 else ()
    x = jax.ShapeDtypeStruct((1, *frames, d.crop_size, d.crop_size, 3), jnp.float32)
    variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
    out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, x)
    assert out.shape == (1, config.model.num_classes)
    jax.eval_shape(tx.init, variables["params"])
    assert hasattr(task, "loss_and_metrics")


def test_x3d_m_recipe_trains_on_the_models_default_clip():
  config = load_config("kinetics400_x3d_m")
  spec = models.spec(config.model.name)
  assert (config.data.num_frames, config.data.crop_size) == (spec.num_frames, spec.crop_size)
  assert 30 / config.data.target_fps == spec.frame_stride == 5
  assert config.optimizer.nesterov and config.optimizer.weight_decay == 5e-5


def test_misspelt_keys_are_errors_that_name_them():
  config = load_config("demo")
  with pytest.raises(AttributeError, match="learning_rat"):
    config.optimizer.learning_rat = 0.1
  with pytest.raises(
    KeyError, match=r"optimizer\.learning_rat.*Did you mean 'optimizer\.learning_rate'"
  ):
    load_config("demo", ["--config.optimizer.learning_rat=0.1"])
  with pytest.raises(KeyError, match="'modle.name'"):
    load_config("demo", ["--config.modle.name=r3d_18"])


@pytest.mark.parametrize(
  "typed, meant",
  [
    ("optimizer.lr", "optimizer.learning_rate"),  # the README's promise: initials of the leaf
    ("optimizer.wd", "optimizer.weight_decay"),
    ("lr", "optimizer.learning_rate"),
    ("num_classes", "model.num_classes"),  # the right leaf in another section
    ("optim.learning_rate", "optimizer.learning_rate"),
    ("batch_size", "global_batch_size"),  # close leaf names
    ("model.nam", "model.name"),
  ],
)
def test_unknown_keys_suggest_the_key_meant(typed, meant):
  with pytest.raises(KeyError, match=f"Unknown config key '{typed}'. Did you mean '{meant}'"):
    load_config("demo", [f"--config.{typed}=1"])


def test_overrides_are_typed():
  config = load_config(
    "demo",
    [
      "--config.optimizer.learning_rate=1",
      "--config.schedule.boundaries=(10, 20)",
      "--config.parallel.fsdp=true",
      "--config.model.name=mc3_18",
    ],
  )
  assert config.optimizer.learning_rate == 1.0 and isinstance(config.optimizer.learning_rate, float)
  assert config.schedule.boundaries == (10, 20)
  assert config.parallel.fsdp is True and config.model.name == "mc3_18"
  with pytest.raises(ValueError, match="global_batch_size"):
    load_config("demo", ["--config.global_batch_size=abc"])


def test_conv_lowering_is_set_from_the_command_line():
  assert build_model(load_config("demo")).conv_lowering is None  # "auto": the model's default
  config = load_config("demo_2d", ["--config.model.conv_lowering=native"])
  assert build_model(config).conv_lowering == "native"
  with pytest.raises(ValueError, match=r"config\.model\.conv_lowering must be one of .*'fast'"):
    build_model(load_config("demo", ["--config.model.conv_lowering=fast"]))


def test_float64_models_need_64_bit_jax():
  config = load_config("demo", ["--config.model.dtype=float64"])
  with pytest.raises(ValueError, match=r"model\.dtype='float64' needs 64-bit JAX.*JAX_ENABLE_X64"):
    build_model(config)
  with jax.enable_x64(True):
    model = build_model(config)
    x = jax.ShapeDtypeStruct((1, 2, 16, 16, 3), jnp.float64)
    variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
    assert variables["params"]["stem"]["conv"]["kernel"].dtype == jnp.float32  # param_dtype's
    assert variables["batch_stats"]["stem"]["bn"]["mean"].dtype == jnp.float64
    assert jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, x).dtype == (
      jnp.float64
    )


def test_names_paths_and_old_repository_paths_resolve(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)  # no configs/ folder here
  reference = load_config("demo").to_dict()
  for path in (
    "demo.py",
    "configs/demo.py",
    "./configs/demo.py",
    os.path.join(CONFIGS_DIR, "demo.py"),
  ):
    assert load_config(path).to_dict() == reference, path
  assert load_config(None).to_dict() == reference
  assert load_config("configs/sr_edsr_demo.py").model.name == "edsr_bicubic_baseline"
  assert load_config("demo_2d").model.name == "tsn_resnet18"
  # A user's own file wins over a shipped name; a missing file elsewhere is an error, not a shipped config.
  (tmp_path / "configs").mkdir()
  (tmp_path / "configs" / "demo.py").write_text(
    textwrap.dedent("""
      from jaxres.configs import demo
      def get_config():
        c = demo.get_config()
        c.num_train_steps = 7
        return c
  """)
  )
  assert load_config("configs/demo.py").num_train_steps == 7
  assert load_config("demo").num_train_steps == reference["num_train_steps"]
  with pytest.raises(FileNotFoundError, match=r"'experiments/demo.py'.*one of: .*sr_edsr_demo"):
    load_config("experiments/demo.py")
  with pytest.raises(FileNotFoundError, match=r"'dmeo'.*demo_2d"):
    load_config("dmeo")


def test_cli_help_lists_the_shipped_configs(capsys):
  with pytest.raises(SystemExit):
    train_command.main(["--help"])
  help_text = " ".join(capsys.readouterr().out.split())
  for name in CONFIGS:
    assert name in help_text


def test_shipped_configs_load_from_a_non_editable_wheel(tmp_path):
  """Builds the wheel from a copy of the sources (setuptools' build/ folder would keep stale files;
  no build isolation: nothing is downloaded) and installs it into a bare target folder; a fresh
  interpreter outside the repository finds `demo` inside the installed package."""
  source = tmp_path / "src"
  source.mkdir()
  for name in ("pyproject.toml", "README.md"):
    shutil.copy(os.path.join(REPO, name), source / name)
  shutil.copytree(
    os.path.join(REPO, "jaxres"), source / "jaxres", ignore=shutil.ignore_patterns("__pycache__")
  )
  pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
  subprocess.run(
    pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(source)],
    check=True,
    cwd=tmp_path,
  )
  wheels = list((tmp_path / "dist").glob("jaxres-*.whl"))
  assert len(wheels) == 1, wheels
  target = tmp_path / "site"
  subprocess.run(
    pip + ["install", "--no-deps", "--target", str(target), str(wheels[0])],
    check=True,
    cwd=tmp_path,
  )
  script = textwrap.dedent("""
      import jaxres, jaxres.configs
      from jaxres.train.config import load_config
      config = load_config("demo")
      print(jaxres.__file__)
      print(jaxres.configs.names())
      print(config.model.name, load_config("configs/sr_edsr_demo.py").model.name)
  """)
  env = {
    **os.environ,
    "PYTHONPATH": str(target),
  }  # dependencies come from this interpreter's site-packages
  out = subprocess.run(
    [sys.executable, "-c", script],
    check=True,
    cwd=tmp_path,
    env=env,
    capture_output=True,
    text=True,
  ).stdout.splitlines()
  assert out[0].startswith(str(target)), out  # the installed copy, not the repository
  assert "demo" in out[1] and "sr_edsr_demo" in out[1]
  assert out[2] == "r3d_tiny edsr_bicubic_baseline"


def test_shipped_configs_import_nothing_from_the_engine_data_or_tasks():
  """Configs are config data: importing every one (and building it) loads no jaxres.train,
  jaxres.data or jaxres.tasks module (import-linter checks the imports; this, what runs)."""
  script = textwrap.dedent(f"""
      import importlib, sys
      for name in {CONFIGS!r}:
        importlib.import_module("jaxres.configs." + name).get_config()
      print(sorted(m for m in sys.modules if m.split(".")[:2] in
                   (["jaxres", "train"], ["jaxres", "data"], ["jaxres", "tasks"])))
  """)
  env = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])),
  }
  out = subprocess.run(
    [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
  )
  assert out.returncode == 0, out.stderr[-4000:]
  assert out.stdout.strip() == "[]", out.stdout
  assert not {"common", "defaults"} & set(CONFIGS)  # what configs are made of is not a config


def test_old_names_stay_importable_from_train_config():
  from jaxres.configs import common
  from jaxres.train import config as train_config

  for name in ("default_config", "torchvision_video_recipe", "cifar10_recipe", "VIDEO_DATASETS"):
    assert getattr(train_config, name) is getattr(common, name), name
  from jaxres.data.config import default_data_config

  assert default_data_config is common.default_data_config


def test_a_config_saved_before_a_key_existed_gets_its_default(tmp_path):
  from jaxres.train.config import default_config, with_defaults

  saved = load_config("sr_edsr_demo").to_dict()
  for key in ("grad_accum_steps", "profile_steps", "compilation_cache_dir"):
    del saved[key]  # what a run saved before these keys existed lacks
  del saved["parallel"]["mesh"], saved["data"]["demo"]["kind"]
  config = with_defaults(ml_collections.ConfigDict(saved))
  defaults = default_config()
  assert (config.grad_accum_steps, config.profile_steps, config.compilation_cache_dir) == (
    1,
    (),
    defaults.compilation_cache_dir,
  )
  assert config.parallel.mesh.to_dict() == {"data": -1, "fsdp": 1}
  assert config.data.demo.kind == "motion"
  # Values present stay; model and task (constructor arguments) get no other model's keys.
  assert config.model.to_dict() == saved["model"] and config.task.to_dict() == saved["task"]
  assert config.optimizer.learning_rate == saved["optimizer"]["learning_rate"]
  # A config file of an older kind (its own ConfigDict, lacking newer keys) loads the same way.
  old = dict(saved)
  old.pop("synthetic_data")
  path = tmp_path / "old_config.py"
  path.write_text(
    f"import ml_collections\ndef get_config():\n  return ml_collections.ConfigDict({old!r})\n"
  )
  loaded = load_config(str(path), ["--config.grad_accum_steps=2"])
  assert loaded.is_locked and loaded.grad_accum_steps == 2 and loaded.synthetic_data is False
  assert loaded.profile_steps == ()
