"""Every shipped config loads, is locked, names its misspelt keys, and builds its model and optimiser."""

import glob
import os

import jax
import jax.numpy as jnp
import pytest

from jaxres import models
from jaxres.train import build_model, build_task, create_optimizer, load_config
from jaxres.train.config import CONFIGS_DIR

CONFIGS = sorted(glob.glob(os.path.join(CONFIGS_DIR, "*.py")))


def test_configs_exist():
  names = {os.path.basename(p)[:-3] for p in CONFIGS}
  expected = {"demo", "demo_2d", "cifar10_resnet20", "cifar10_resnet56"} | {
      f"{d}_{m}" for d in ("ucf101", "kinetics400") for m in ("r3d_18", "mc3_18", "r2plus1d_18")}
  assert expected <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.basename(p)[:-3])
def test_config_loads_and_builds(path):
  config = load_config(path)
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


def test_misspelt_keys_are_errors_that_name_them():
  config = load_config("demo")
  with pytest.raises(AttributeError, match="learning_rat"):
    config.optimizer.learning_rat = 0.1
  with pytest.raises(KeyError, match=r"optimizer\.learning_rat.*Did you mean 'optimizer\.learning_rate'"):
    load_config("demo", ["--config.optimizer.learning_rat=0.1"])
  with pytest.raises(KeyError, match="'modle.name'"):
    load_config("demo", ["--config.modle.name=r3d_18"])


def test_overrides_are_typed():
  config = load_config("demo", ["--config.optimizer.learning_rate=1", "--config.schedule.boundaries=(10, 20)",
                                "--config.parallel.fsdp=true", "--config.model.name=mc3_18"])
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
