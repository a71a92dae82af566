"""Parallel training gives the numbers of one device: jit (replicated and FSDP) and pmap on 8 fake
CPU devices, three steps each, against a single-device run with the same global batch.

The fast cases use a small video ResNet-like net (`TinyVideoNet` of tests/tiny_models.py: 3D convs,
jaxres BatchNorm, residual, classifier) built from jaxres's `Conv` with the models' default lowering
("auto": Winograd and im2col matmuls on CPU), so that the compilations stay cheap; the engines are
the ones `build_engine` makes for any model. The slow tier repeats them with XLA's native
convolution and with the registered default model (`r3d_tiny`, as `build_engine` builds it).
"""

import jax
import numpy as np
import pytest
from tiny_models import TINY_VIDEO_SHAPE as SHAPE
from tiny_models import TinyVideoNet

from jaxres.train import (
  ClassificationTask,
  JitEngine,
  PmapEngine,
  build_engine,
  create_optimizer,
  default_config,
  make_mesh,
  synthetic_batches,
)
from jaxres.train.parallel import PMAP_AXIS


def _config(mode="jit", fsdp=False, num_devices=-1, mesh=None):
  c = default_config()
  c.model.num_classes = 4
  c.parallel.mode, c.parallel.fsdp, c.parallel.num_devices = mode, fsdp, num_devices
  c.parallel.mesh = mesh or c.parallel.mesh
  c.parallel.fsdp_min_size = 256
  c.optimizer.weight_decay = 1e-4
  return c


def _engine(config, model):
  """The engine for `config.parallel`: `build_engine`'s for the registered model ("r3d_tiny"),
  else the same engines around `TinyVideoNet` with the conv lowering `model` names."""
  if model == "r3d_tiny":
    assert config.model.name == model and config.model.conv_lowering == "auto"  # the default path
    return build_engine(config)[0]
  p, task = config.parallel, ClassificationTask(label_smoothing=0.1)
  tx, schedule = create_optimizer(config)
  if p.mode == "pmap":
    return PmapEngine(TinyVideoNet(PMAP_AXIS, model), task, tx, schedule)
  return JitEngine(
    TinyVideoNet(conv_lowering=model),
    task,
    tx,
    schedule,
    mesh=make_mesh(p.num_devices, shape=dict(p.mesh)),
    fsdp=p.fsdp,
    fsdp_min_size=p.fsdp_min_size,
  )


def _train(config, model, steps=3):
  engine = _engine(config, model)
  shape = (8, 4, 16, 16, 3) if model == "r3d_tiny" else SHAPE
  state = engine.init(jax.random.key(0), shape)
  for batch in synthetic_batches(shape, 4, num_batches=steps):
    state, metrics = engine.train_step(state, engine.put_batch(batch), jax.random.key(1))
  return engine.to_global(state), metrics


_references = {}


@pytest.fixture(scope="module")
def reference():
  """The one-device run of a model, trained once per module."""
  assert jax.device_count() == 8

  def get(model):
    if model not in _references:
      _references[model] = _train(_config(num_devices=1), model)
    return _references[model]

  yield get
  _references.clear()


# One device and eight add the batch up in different orders (per-device partial sums, then an
# all-reduce, in the convolutions' weight gradients and BatchNorm's statistics), and float32 rounds
# each order differently by about 1e-7 of the sum. Three SGD steps through BatchNorm over one or
# two clips per device amplify that: measured at most 1.2e-5 of a leaf's largest value with the
# native convolution and 4.6e-5 with the matmul lowerings (r3d_tiny), whose Winograd transforms
# add and subtract more terms per output. 2e-4 leaves 4x headroom and is still far below what a
# real mistake (a gradient or a statistic missing one device's share) changes: 1e-2 and more.
REL_TOL = 2e-4


def _assert_same(a, b):
  leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(leaves_a) == len(leaves_b)
  for x, y in zip(leaves_a, leaves_b):
    x, y = np.asarray(x), np.asarray(y)
    assert x.shape == y.shape
    assert np.abs(x - y).max() <= REL_TOL * np.abs(y).max(), (np.abs(x - y).max(), np.abs(y).max())


@pytest.mark.parametrize(
  "model",
  [
    "auto",
    pytest.param("native", marks=pytest.mark.slow),
    pytest.param("r3d_tiny", marks=pytest.mark.slow),
  ],
)
@pytest.mark.parametrize("mode,fsdp", [("jit", False), ("jit", True), ("pmap", False)])
def test_eight_devices_match_one(reference, mode, fsdp, model):
  ref_state, ref_metrics = reference(model)
  state, metrics = _train(_config(mode, fsdp), model)
  _assert_same(ref_state.params, state.params)
  _assert_same(ref_state.batch_stats, state.batch_stats)
  _assert_same(ref_state.opt_state, state.opt_state)
  assert int(state.step) == 3
  for k in ("loss", "accuracy", "grad_norm", "param_norm", "learning_rate"):
    np.testing.assert_allclose(float(metrics[k]), float(ref_metrics[k]), rtol=1e-5, atol=1e-6)
  if fsdp and model != "r3d_tiny":
    kernel = state.params["conv3"]["kernel"]  # (1, 3, 3, 16, 64)
    shards = kernel.addressable_shards
    assert len(shards) == 8 and kernel.sharding.spec == jax.sharding.PartitionSpec(
      None, None, None, None, "data"
    )
    assert {s.data.shape for s in shards} == {(1, 3, 3, 16, 8)}
    assert len({s.device for s in shards}) == 8
    momentum = state.opt_state[1][0].trace["conv3"]["kernel"]  # sgd's trace
    assert {s.data.shape for s in momentum.addressable_shards} == {(1, 3, 3, 16, 8)}
    assert {s.data.shape for s in state.params["fc"]["kernel"].addressable_shards} == {(8, 4)}
    assert {s.data.shape for s in state.params["bn1"]["scale"].addressable_shards} == {(16,)}


def test_fsdp_keeps_small_arrays_replicated():
  from jaxres.train.parallel import fsdp_spec

  P = jax.sharding.PartitionSpec
  assert fsdp_spec((64,), 8, 256) == P()  # too small
  assert fsdp_spec((3, 3, 3, 32, 64), 8, 256) == P(None, None, None, None, "data")
  assert fsdp_spec((7, 9, 11), 8, 1) == P()  # nothing divisible
  assert fsdp_spec((24, 16), 8, 1) == P("data")  # the largest divisible dimension


@pytest.mark.slow
def test_two_axis_mesh_matches_one_device(reference):
  # 2 replicas x 4-way FSDP: the batch over all 8 devices, parameters over the 4 of each group.
  # Native convolutions: the same sums as one device up to float32 rounding.
  ref_state, ref_metrics = reference("native")
  state, metrics = _train(_config(mesh={"data": 2, "fsdp": 4}), "native")
  for a, b in zip(
    jax.tree.leaves((state.params, state.batch_stats, state.opt_state)),
    jax.tree.leaves((ref_state.params, ref_state.batch_stats, ref_state.opt_state)),
    strict=True,
  ):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=0)
  np.testing.assert_allclose(float(metrics["loss"]), float(ref_metrics["loss"]), rtol=1e-5)
  kernel = state.params["conv3"]["kernel"]  # (1, 3, 3, 16, 64)
  assert kernel.sharding.mesh.shape == {"data": 2, "fsdp": 4}
  assert kernel.sharding.spec == jax.sharding.PartitionSpec(None, None, None, None, "fsdp")
  assert {s.data.shape for s in kernel.addressable_shards} == {(1, 3, 3, 16, 16)}


def test_mesh_shapes_are_checked():
  assert make_mesh(shape={"data": -1, "fsdp": 1}).axis_names == ("data",)
  assert dict(make_mesh(shape={"data": 2, "fsdp": -1}).shape) == {"data": 2, "fsdp": 4}
  with pytest.raises(
    ValueError,
    match=r"parallel.mesh \{'data': 3, 'fsdp': 2\} does not fit 8 "
    r"devices",
  ):
    make_mesh(shape={"data": 3, "fsdp": 2})
  with pytest.raises(ValueError, match="only 'data' and 'fsdp' exist"):
    make_mesh(shape={"model": 8})
