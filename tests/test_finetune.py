"""Fine-tuning: `config.init_from` and parameter groups (frozen, learning-rate factors, late start)."""

import os

import jax
import numpy as np
import pytest

from jaxres.convert import save_variables
from jaxres.inference.shapes import path_name
from jaxres.train import build_train_step, load_config, train_and_evaluate
from jaxres.train.init_from import merge, start_from
from jaxres.train.param_groups import ParamGroups

SHAPE = (4, 4, 16, 16, 3)


def _config(*overrides):
  return load_config(
    "demo",
    [
      "--config.model.num_classes=4",
      "--config.synthetic_data=True",
      "--config.data.num_frames=4",
      "--config.data.resize=16",
      "--config.data.crop_size=16",
      "--config.global_batch_size=4",
      "--config.parallel.num_devices=1",
      "--config.optimizer.momentum=0",
      "--config.optimizer.weight_decay=0",
      "--config.schedule.name=constant",
      "--config.optimizer.learning_rate=0.1",
      *overrides,
    ],
  )


def _batch(seed=0):
  rng = np.random.default_rng(seed)
  return {
    "video": rng.normal(size=SHAPE).astype(np.float32),
    "label": rng.integers(0, 4, SHAPE[0]).astype(np.int32),
  }


def _flat(tree):
  return {path_name(p): np.asarray(x) for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _steps(config, n):
  _, state, step = build_train_step(config, SHAPE, seed=0)
  start = jax.device_get({"params": state.params, "batch_stats": state.batch_stats})
  for i in range(n):
    state, _ = step(state, _batch(i), jax.random.key(1))
  return start, jax.device_get({"params": state.params, "batch_stats": state.batch_stats})


def test_frozen_parameters_and_their_statistics_do_not_move():
  start, end = _steps(_config('--config.optimizer.frozen=("^layer1_0/",)'), 3)
  before, after = _flat(start), _flat(end)
  frozen = [k for k in before if k.split("/", 2)[1] == "layer1_0"]
  assert any(k.startswith("batch_stats/") for k in frozen) and any(
    k.startswith("params/") for k in frozen
  )
  for k in frozen:
    np.testing.assert_array_equal(after[k], before[k], err_msg=k)
  assert not np.array_equal(after["params/fc/kernel"], before["params/fc/kernel"])
  assert not np.array_equal(after["batch_stats/stem/bn/mean"], before["batch_stats/stem/bn/mean"])
  # `trainable`: only the classifier moves.
  start, end = _steps(_config('--config.optimizer.trainable=("^fc/",)'), 2)
  before, after = _flat(start), _flat(end)
  moved = sorted(k for k in before if not np.array_equal(before[k], after[k]))
  assert moved == ["params/fc/bias", "params/fc/kernel"]


@pytest.mark.slow  # compiles several train steps (~9 s)
def test_a_learning_rate_factor_scales_the_update_and_a_late_group_waits():
  start, plain = _steps(_config(), 1)
  _, scaled = _steps(_config('--config.optimizer.lr_multipliers=(("^fc/", 0.125),)'), 1)
  before, plain, scaled = _flat(start), _flat(plain), _flat(scaled)
  np.testing.assert_allclose(
    scaled["params/fc/kernel"] - before["params/fc/kernel"],
    0.125 * (plain["params/fc/kernel"] - before["params/fc/kernel"]),
    rtol=1e-5,
    atol=1e-7,
  )
  np.testing.assert_array_equal(
    scaled["params/layer4_0/conv1/kernel"], plain["params/layer4_0/conv1/kernel"]
  )
  # Fixed before step 2, moving from it.
  late = _config('--config.optimizer.frozen_until=(("^stem/", 2),)')
  _, state, step = build_train_step(late, SHAPE, seed=0)
  history = [np.asarray(state.params["stem"]["conv"]["kernel"])]
  for i in range(3):
    state, _ = step(state, _batch(i), jax.random.key(1))
    history.append(np.asarray(state.params["stem"]["conv"]["kernel"]))
  np.testing.assert_array_equal(history[2], history[0])
  assert not np.array_equal(history[3], history[2])


def test_bad_group_patterns_are_refused_by_name():
  with pytest.raises(ValueError, match=r"config.optimizer.frozen: '\(' is not a regular"):
    _steps(_config('--config.optimizer.frozen=("(",)'), 0)
  groups = ParamGroups(lr_multipliers={"^fc/": 0.5}, trainable=("^fc/", "^layer4"))
  assert groups.multiplier("fc/kernel") == 0.5 and groups.multiplier("stem/conv/kernel") == 0.0
  assert groups.multiplier("layer4_1/conv2/kernel") == 1.0


def test_merge_keeps_a_new_classifier_and_names_every_other_difference():
  fresh = {
    "params": {
      "fc": {"kernel": np.zeros((8, 6)), "bias": np.zeros(6)},
      "conv": {"kernel": np.zeros((3, 3, 3, 8))},
    },
    "batch_stats": {},
  }
  source = {
    "params": {
      "fc": {"kernel": np.ones((8, 4)), "bias": np.ones(4)},
      "conv": {"kernel": np.ones((3, 3, 3, 8))},
    }
  }
  merged, kept = merge(fresh, source, num_classes=6)
  assert kept == ["params/fc/bias", "params/fc/kernel"]
  np.testing.assert_array_equal(merged["params"]["conv"]["kernel"], 1.0)
  np.testing.assert_array_equal(merged["params"]["fc"]["kernel"], 0.0)
  # `init_fresh`: a classifier of the same size starts afresh too.
  same = {
    "params": {
      "fc": {"kernel": np.ones((8, 6)), "bias": np.ones(6)},
      "conv": {"kernel": np.ones((3, 3, 3, 8))},
    }
  }
  merged, kept = merge(fresh, same, num_classes=6, keep_fresh=("^fc/",))
  assert kept == ["params/fc/bias", "params/fc/kernel"]
  np.testing.assert_array_equal(merged["params"]["fc"]["bias"], 0.0)
  assert merge(fresh, same, num_classes=6)[1] == []
  source["params"]["conv"]["kernel"] = np.ones((3, 3, 3, 16))
  source["params"]["extra"] = {"bias": np.ones(2)}
  with pytest.raises(
    ValueError,
    match=r"params/conv/kernel: \(3, 3, 3, 16\) in the source, "
    r"\(3, 3, 3, 8\) in the model; params/extra/bias: in the source \(2,\), "
    r"not in the model",
  ):
    merge(fresh, source, num_classes=6)


@pytest.mark.slow  # trains two short runs
def test_init_from_a_run_loads_it_once_and_resume_does_not_reload(tmp_path):
  source_run, tuned = str(tmp_path / "source"), str(tmp_path / "tuned")
  quiet = [
    "--config.progress_bar=False",
    "--config.plot=False",
    "--config.tensorboard=False",
    "--config.eval_every_steps=0",
    "--config.checkpoint.async_save=False",
  ]
  train_and_evaluate(_config("--config.num_train_steps=2", *quiet), source_run)
  from jaxres.convert import load_variables

  source = load_variables(source_run)
  # Step 0 of a 6-class run started from the 4-class run: the backbone is the source's exactly.
  config = _config("--config.model.num_classes=6", f"--config.init_from={source_run}", *quiet)
  from jaxres.train import build_engine

  engine, _, _ = build_engine(config)
  state, report = start_from(engine.init(jax.random.key(0), SHAPE), source_run, config.model)
  assert "initialised afresh: params/fc/bias, params/fc/kernel" in report
  have, want = _flat({"params": state.params, "batch_stats": state.batch_stats}), _flat(source)
  for k, v in want.items():
    if not k.startswith("params/fc/"):
      np.testing.assert_array_equal(have[k], v, err_msg=k)
  assert have["params/fc/kernel"].shape == (64, 6)
  # The run itself; then the source goes away and the resumed run does not need it.
  config.num_train_steps = 2
  summary = train_and_evaluate(config, tuned)
  assert summary["init_from"] == source_run and summary["step"] == 2
  os.rename(source_run, source_run + ".gone")
  config.num_train_steps = 3
  assert train_and_evaluate(config, tuned)["step"] == 3
  # A .msgpack file works as a source too, and one of another architecture is refused by name.
  path = save_variables(source, str(tmp_path / "source.msgpack"))
  engine2, _, _ = build_engine(
    _config("--config.model.name=resnet18", f"--config.init_from={path}")
  )
  with pytest.raises(ValueError, match="does not fit the configured model"):
    start_from(
      engine2.init(jax.random.key(0), (4, 32, 32, 3)),
      path,
      _config("--config.model.name=resnet18").model,
    )


def test_the_demo_writes_the_directions_it_is_given(tmp_path):
  from jaxres.data.demo import write_demo_dataset

  root = write_demo_dataset(
    str(tmp_path / "diag"),
    num_classes=2,
    videos_per_class=2,
    num_frames=4,
    size=16,
    classes=("up_left", "down_right"),
  )
  assert sorted(n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n))) == [
    "down_right",
    "up_left",
  ]
  with pytest.raises(ValueError, match="2 different directions of right, left"):
    write_demo_dataset(str(tmp_path / "bad"), num_classes=2, classes=("up", "sideways"))
