"""Precise BatchNorm statistics (`jaxres.train.precise_bn`, `config.precise_bn_batches`) and
zero-initialised residual BatchNorm (`model.zero_init_residual`)."""

import functools
import itertools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxres import models
from jaxres.models.blocks import BasicBlock, BottleneckBlock
from jaxres.models.layers import layer_factories
from jaxres.models.norm import BatchNorm
from jaxres.models.pytorchvideo_resnet import PVBottleneck
from jaxres.models.x3d import DepthwiseConv, X3DBlock
from jaxres.train import default_config, train_and_evaluate
from jaxres.train.build import build_engine
from jaxres.train.checkpoint import Checkpointer
from jaxres.train.loop import model_input_shape, synthetic_data
from jaxres.train.precise_bn import make_precise_bn, precise_batch_stats

EPS = 1e-5


class TwoNorms(nn.Module):
  """x -> BN -> Dense(4) -> BN: the second layer sees inputs normalised with batch statistics."""

  @nn.compact
  def __call__(self, x, train=False):
    x = BatchNorm(use_running_average=not train, name="bn1")(x)
    x = nn.Dense(4, name="dense")(x)
    return BatchNorm(use_running_average=not train, name="bn2")(x)


def _numpy_stats(batches, variables):
  """Each layer's mean and variance over all the batches' elements, BN1 normalising per batch."""
  p = jax.tree.map(np.asarray, variables["params"])
  first, second = [], []
  for x in batches:
    x = np.asarray(x, np.float64)
    first.append(x.reshape(-1, x.shape[-1]))
    mean, var = x.mean((0, 1)), x.var((0, 1))  # per batch: what train mode normalises with
    y = (x - mean) / np.sqrt(var + EPS) * p["bn1"]["scale"] + p["bn1"]["bias"]
    y = y @ p["dense"]["kernel"] + p["dense"]["bias"]
    second.append(y.reshape(-1, y.shape[-1]))
  first, second = np.concatenate(first), np.concatenate(second)
  return {"bn1": (first.mean(0), first.var(0)), "bn2": (second.mean(0), second.var(0))}


def test_precise_statistics_are_the_mean_and_variance_over_the_batches():
  model = TwoNorms()
  rng = np.random.default_rng(0)
  # Batch means that differ, so the spread between batches counts.
  batches = [
    rng.normal(loc=3.0 * i, scale=1.0 + i, size=(4, 5, 3)).astype(np.float32) for i in range(4)
  ]
  variables = model.init(jax.random.key(0), batches[0])
  params = jax.tree.map(np.asarray, variables["params"])
  update = make_precise_bn(model)
  stats, used = update(variables, iter(batches), 3)  # the first 3 batches only
  assert used == 3
  expected = _numpy_stats(batches[:3], variables)
  for layer in ("bn1", "bn2"):
    np.testing.assert_allclose(stats[layer]["mean"], expected[layer][0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(stats[layer]["var"], expected[layer][1], rtol=1e-5, atol=1e-5)
  # The mean of the batch variances alone (fvcore's earlier estimator) is a different number here.
  mean_of_vars = np.mean([b.reshape(-1, 3).var(0) for b in batches[:3]], 0)
  assert not np.allclose(stats["bn1"]["var"], mean_of_vars, rtol=1e-2)
  # Parameters stay; the statistics' tree is the model's.
  jax.tree.map(np.testing.assert_array_equal, jax.tree.map(np.asarray, variables["params"]), params)
  assert jax.tree.structure(stats) == jax.tree.structure(variables["batch_stats"])
  # Fewer batches than asked: all of them; none: an error.
  stats, used = update(variables, iter(batches), 10)
  assert used == 4
  np.testing.assert_allclose(
    stats["bn1"]["mean"], _numpy_stats(batches, variables)["bn1"][0], rtol=1e-5, atol=1e-5
  )
  with pytest.raises(ValueError, match="at least one batch"):
    precise_batch_stats(model, variables, [], 5)


def _loop_config():
  c = default_config()
  c.model.num_classes = 4
  c.data.num_frames, c.data.resize, c.data.crop_size = 4, 16, 16
  c.synthetic_data = True
  c.global_batch_size = 8
  c.num_train_steps = 4
  c.parallel.num_devices = 2
  c.checkpoint.every_steps = 0
  c.checkpoint.keep_best = 0
  c.eval_every_steps = 0
  c.eval_steps = 1
  c.precise_bn_batches = 2
  c.progress_bar = c.tensorboard = c.plot = False
  return c


@pytest.mark.slow  # trains and evaluates (~10 s)
def test_the_loop_evaluates_and_saves_precise_statistics(tmp_path):
  config = _loop_config()
  train, eval_data = synthetic_data(config)
  opened = []

  def train_data(start):
    opened.append(start)
    return train(start)

  train_and_evaluate(config, str(tmp_path), train_data=train_data, eval_data=eval_data)
  assert opened == [0, 4]  # the run's own stream, then the precise-BN batches after the last step
  engine, model, task = build_engine(config)
  ckpt = Checkpointer(str(tmp_path / "checkpoints"), async_save=False)
  try:
    abstract = engine.abstract_state(model_input_shape(task, next(iter(train(0)))))
    saved = ckpt.restore(abstract, 4)
  finally:
    ckpt.close()
  batches = [b["video"] for b in itertools.islice(train(4), 2)]
  expected = precise_batch_stats(model, saved.variables, batches, 2)
  jax.tree.map(
    lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
    jax.tree.map(np.asarray, saved.batch_stats),
    jax.tree.map(np.asarray, expected),
  )
  # Not the running averages of plain training: those move by 0.1 per step from (0, 1).
  assert not np.allclose(saved.batch_stats["stem"]["bn"]["var"], 1.0, atol=0.2)


def _count(tree):
  return sum(math.prod(x.shape) for x in jax.tree.leaves(tree))


def _identity_check(block, x):
  def run(block):
    variables = jax.jit(block.init)(jax.random.key(0), x)
    return variables, jax.jit(lambda v: block.apply(v, x, mutable=["batch_stats"])[0])(variables)

  variables, y = run(block)
  np.testing.assert_allclose(y, jax.nn.relu(x), rtol=1e-6, atol=1e-6)
  plain_variables, plain_y = run(block.clone(zero_init_last_bn=False))
  assert _count(plain_variables) == _count(variables)
  assert not np.allclose(plain_y, jax.nn.relu(x))


def test_zero_init_residual_blocks_start_as_the_identity():
  x = jax.random.normal(jax.random.key(1), (2, 4, 6, 6, 16))
  parts = layer_factories(models.get("r3d_tiny"), train=True)
  conv3 = functools.partial(parts.conv, kernel_size=(3, 3, 3), padding=((1, 1),) * 3)
  _identity_check(
    BasicBlock(16, conv=conv3, norm=parts.norm, shortcut=parts.shortcut, zero_init_last_bn=True), x
  )
  _identity_check(
    BottleneckBlock(
      4,
      conv=conv3,
      pointwise=parts.pointwise,
      norm=parts.norm,
      shortcut=parts.shortcut,
      zero_init_last_bn=True,
    ),
    x,
  )
  _identity_check(
    PVBottleneck(
      16,
      4,
      kernel_a=(3, 1, 1),
      kernel_b=(1, 3, 3),
      stride_a=(1, 1, 1),
      stride_b=(1, 1, 1),
      conv=parts.conv,
      norm=parts.norm,
    ),
    x,
  )
  _identity_check(
    X3DBlock(
      16,
      24,
      pointwise=parts.pointwise,
      depthwise=DepthwiseConv,
      norm=parts.norm,
      se_features=8,
      zero_init_last_bn=True,
    ),
    x,
  )


@pytest.mark.parametrize(
  "name,last",
  [
    ("r3d_tiny", "bn2"),
    ("resnet50", "bn3"),
    ("r2plus1d_18", "bn2"),
    ("x3d_s", "bn3"),
    ("slow_r50", "norm_c"),
    ("slowfast_r50", "norm_c"),
  ],
)
def test_zero_init_residual_zeroes_every_last_scale_and_keeps_the_parameters(name, last):
  spec = models.spec(name)
  shape = (1, 4, 32, 32, 3) if spec.input_rank == 5 else (1, 32, 32, 3)
  if name == "slowfast_r50":
    shape = (1, 8, 32, 32, 3)

  def params(**kwargs):
    model = models.get(name, **kwargs)
    return jax.eval_shape(lambda k: model.init(k, jnp.zeros(shape), train=False), jax.random.key(0))

  on, off = params(zero_init_residual=True), params(zero_init_residual=False)
  assert jax.tree.structure(on) == jax.tree.structure(off) and _count(on) == _count(off)
  if name != "r3d_tiny":
    return  # shapes only: initialising the big networks for real is slow on CPU
  model = models.get(name, zero_init_residual=True)
  variables = jax.jit(lambda k: model.init(k, jnp.zeros(shape), train=False))(jax.random.key(0))
  blocks = [k for k in variables["params"] if k.startswith("layer")]
  assert len(blocks) == 4
  for block in blocks:
    assert not np.any(variables["params"][block][last]["scale"])
    assert np.all(variables["params"][block]["bn1"]["scale"] == 1)
