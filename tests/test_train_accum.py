"""Gradient accumulation (`config.grad_accum_steps`): k micro-batches in one compiled step make the
update of the whole batch (without BatchNorm), and BatchNorm sees each micro-batch in turn."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxres.models import BatchNorm
from jaxres.train import (
  ClassificationTask,
  JitEngine,
  create_optimizer,
  default_config,
  make_mesh,
  synthetic_batches,
)
from jaxres.train.checks import check_config
from jaxres.train.steps import split_micro_batches

SHAPE = (16, 2, 4, 4, 3)


class Net(nn.Module):
  batch_norm: bool = False

  @nn.compact
  def __call__(self, x, train=False):
    x = nn.relu(nn.Dense(8, name="hidden")(x.reshape(x.shape[0], -1)))
    if self.batch_norm:
      x = BatchNorm(use_running_average=not train, momentum=0.9, name="bn")(x)
    return nn.Dense(4, name="out")(x)


def _step(model, k, num_devices, batch, state=None):
  config = default_config()
  config.optimizer.weight_decay = 1e-4
  tx, schedule = create_optimizer(config)
  engine = JitEngine(
    model,
    ClassificationTask(label_smoothing=0.1),
    tx,
    schedule,
    mesh=make_mesh(num_devices),
    grad_accum_steps=k,
  )
  state = engine.init(jax.random.key(0), SHAPE) if state is None else state
  return engine.train_step(state, engine.put_batch(batch), jax.random.key(1))


def test_micro_batches_are_strided_so_devices_keep_their_rows():
  x = np.arange(8)
  np.testing.assert_array_equal(split_micro_batches({"x": x}, 2)["x"], [[0, 2, 4, 6], [1, 3, 5, 7]])
  with pytest.raises(ValueError, match="batch of 8 does not split into 3 micro-batches"):
    split_micro_batches({"x": x}, 3)


@pytest.mark.parametrize("k,num_devices", [pytest.param(4, 1, marks=pytest.mark.slow), (2, 8)])
def test_accumulated_step_equals_the_whole_batch_step(k, num_devices):
  batch = next(synthetic_batches(SHAPE, 4, num_batches=1))
  ref_state, ref_metrics = _step(Net(), 1, 1, batch)
  state, metrics = _step(Net(), k, num_devices, batch)
  for a, b in zip(
    jax.tree.leaves((state.params, state.opt_state)),
    jax.tree.leaves((ref_state.params, ref_state.opt_state)),
    strict=True,
  ):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)
  for key in ("loss", "accuracy", "grad_norm"):
    np.testing.assert_allclose(float(metrics[key]), float(ref_metrics[key]), rtol=1e-5)


@pytest.mark.slow
def test_batchnorm_normalises_each_micro_batch_and_updates_its_averages_in_turn():
  k = 2
  batch = next(synthetic_batches(SHAPE, 4, num_batches=1))
  model = Net(batch_norm=True)
  state, _ = _step(model, k, 1, batch)
  # By hand, from the initial variables (the engine's init): the running averages after
  # micro-batch 0 (rows 0, 2, ...), then after micro-batch 1 (rows 1, 3, ...).
  variables = model.init(jax.random.key(0), jnp.zeros((1,) + SHAPE[1:]), train=False)
  stats = variables["batch_stats"]
  micro = split_micro_batches(batch, k)
  for j in range(k):
    _, updates = model.apply(
      {"params": variables["params"], "batch_stats": stats},
      jnp.asarray(micro["video"][j]),
      train=True,
      mutable=["batch_stats"],
    )
    stats = updates["batch_stats"]
  for a, b in zip(jax.tree.leaves(state.batch_stats), jax.tree.leaves(stats), strict=True):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)
  # One pass over the whole batch would give other statistics: the test tells them apart.
  _, whole = model.apply(
    variables, jnp.asarray(batch["video"]), train=True, mutable=["batch_stats"]
  )
  assert (
    np.abs(np.asarray(whole["batch_stats"]["bn"]["mean"]) - np.asarray(stats["bn"]["mean"])).max()
    > 1e-3
  )


def test_a_batch_that_does_not_split_over_micro_batches_and_devices_is_refused():
  config = default_config()
  config.global_batch_size, config.grad_accum_steps = 24, 4
  task = ClassificationTask()
  check_config(config, task, uses_data_config=False, num_devices=2)  # 24 = 4 x 2 x 3
  with pytest.raises(
    ValueError,
    match=r"global_batch_size=24 does not split into "
    r"grad_accum_steps=4 micro-batches over 8 devices; use a "
    r"multiple of 32",
  ):
    check_config(config, task, uses_data_config=False, num_devices=8)
  config.grad_accum_steps = 0
  with pytest.raises(ValueError, match="grad_accum_steps must be a positive integer, got 0"):
    check_config(config, task, uses_data_config=False)
