"""Parallel training gives the numbers of one device: jit (replicated and FSDP) and pmap on 8 fake
CPU devices, three steps each, against a single-device run with the same global batch.

The model is a small video ResNet-like net (3D conv, jaxres BatchNorm, residual, classifier) so
that the four compilations stay cheap; the engines are the ones `build_engine` makes for any model.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxres.models import BatchNorm
from jaxres.train import (ClassificationTask, JitEngine, PmapEngine, create_optimizer,
                          default_config, make_mesh, synthetic_batches)
from jaxres.train.parallel import PMAP_AXIS

SHAPE = (8, 4, 8, 8, 3)


class TinyVideoNet(nn.Module):
  bn_axis_name: str | None = None

  @nn.compact
  def __call__(self, x, train=False):
    norm = lambda name: BatchNorm(use_running_average=not train, axis_name=self.bn_axis_name,
                                  name=name)
    x = nn.relu(norm("bn1")(nn.Conv(16, (3, 3, 3), use_bias=False, name="conv1")(x)))
    y = nn.Conv(16, (3, 3, 3), use_bias=False, name="conv2")(x)
    x = nn.relu(x + norm("bn2")(y))
    x = nn.Conv(64, (1, 3, 3), strides=(1, 2, 2), name="conv3")(x)
    return nn.Dense(4, name="fc")(jnp.mean(x, axis=(1, 2, 3)))


def _config(mode="jit", fsdp=False, num_devices=-1):
  c = default_config()
  c.model.num_classes = 4
  c.parallel.mode, c.parallel.fsdp, c.parallel.num_devices = mode, fsdp, num_devices
  c.parallel.fsdp_min_size = 256
  c.optimizer.weight_decay = 1e-4
  return c


def _train(config, steps=3):
  p, task = config.parallel, ClassificationTask(label_smoothing=0.1)
  tx, schedule = create_optimizer(config)
  if p.mode == "pmap":
    engine = PmapEngine(TinyVideoNet(bn_axis_name=PMAP_AXIS), task, tx, schedule)
  else:
    engine = JitEngine(TinyVideoNet(), task, tx, schedule, mesh=make_mesh(p.num_devices),
                       fsdp=p.fsdp, fsdp_min_size=p.fsdp_min_size)
  state = engine.init(jax.random.key(0), SHAPE)
  for batch in synthetic_batches(SHAPE, 4, num_batches=steps):
    state, metrics = engine.train_step(state, engine.put_batch(batch), jax.random.key(1))
  return engine.to_global(state), metrics


@pytest.fixture(scope="module")
def reference():
  assert jax.device_count() == 8
  return _train(_config(num_devices=1))


def _assert_same(a, b, atol=1e-5):
  leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(leaves_a) == len(leaves_b)
  for x, y in zip(leaves_a, leaves_b):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol, rtol=0)


@pytest.mark.parametrize("mode,fsdp", [("jit", False), ("jit", True), ("pmap", False)])
def test_eight_devices_match_one(reference, mode, fsdp):
  ref_state, ref_metrics = reference
  state, metrics = _train(_config(mode, fsdp))
  _assert_same(ref_state.params, state.params)
  _assert_same(ref_state.batch_stats, state.batch_stats)
  _assert_same(ref_state.opt_state, state.opt_state)
  assert int(state.step) == 3
  for k in ("loss", "accuracy", "grad_norm", "param_norm", "learning_rate"):
    np.testing.assert_allclose(float(metrics[k]), float(ref_metrics[k]), rtol=1e-5, atol=1e-6)
  if fsdp:
    kernel = state.params["conv3"]["kernel"]          # (1, 3, 3, 16, 64)
    shards = kernel.addressable_shards
    assert len(shards) == 8 and kernel.sharding.spec == jax.sharding.PartitionSpec(
        None, None, None, None, "data")
    assert {s.data.shape for s in shards} == {(1, 3, 3, 16, 8)}
    assert len({s.device for s in shards}) == 8
    momentum = state.opt_state[1][0].trace["conv3"]["kernel"]  # sgd's trace
    assert {s.data.shape for s in momentum.addressable_shards} == {(1, 3, 3, 16, 8)}
    assert {s.data.shape for s in state.params["fc"]["kernel"].addressable_shards} == {(8, 4)}
    assert {s.data.shape for s in state.params["bn1"]["scale"].addressable_shards} == {(16,)}


def test_fsdp_keeps_small_arrays_replicated():
  from jaxres.train.parallel import fsdp_spec
  P = jax.sharding.PartitionSpec
  assert fsdp_spec((64,), 8, 256) == P()                 # too small
  assert fsdp_spec((3, 3, 3, 32, 64), 8, 256) == P(None, None, None, None, "data")
  assert fsdp_spec((7, 9, 11), 8, 1) == P()              # nothing divisible
  assert fsdp_spec((24, 16), 8, 1) == P("data")          # the largest divisible dimension
