"""Blocks and BatchNorm, against hand-computed values."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxres.models import BasicBlock, BatchNorm, ProjectionShortcut, ZeroPadShortcut


def test_batchnorm_normalises_with_biased_and_tracks_unbiased_variance_like_torch():
  x = jnp.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [6.0, 60.0]])
  bn = BatchNorm(momentum=0.9)
  variables = bn.init(jax.random.key(0), x, use_running_average=False)
  y, updates = bn.apply(variables, x, use_running_average=False, mutable=["batch_stats"])
  mean, biased = x.mean(0), x.var(0)
  np.testing.assert_allclose(y, (x - mean) / np.sqrt(biased + 1e-5), rtol=1e-5)
  np.testing.assert_allclose(updates["batch_stats"]["mean"], 0.1 * mean, rtol=1e-6)
  np.testing.assert_allclose(updates["batch_stats"]["var"], 0.9 + 0.1 * biased * 4 / 3, rtol=1e-6)
  # Eval mode uses the running statistics.
  y_eval = bn.apply(updates | {"params": variables["params"]}, x, use_running_average=True)
  stats = updates["batch_stats"]
  np.testing.assert_allclose(y_eval, (x - stats["mean"]) / np.sqrt(stats["var"] + 1e-5), rtol=1e-5)


def test_batchnorm_train_mode_gradients_match_the_closed_form():
  # dx = scale / std * (g - mean(g) - xhat * mean(g * xhat)), d scale = sum(g * xhat),
  # d bias = sum(g); a mean far from 0 so that a wrong derivative in the mean would show.
  rng = np.random.default_rng(0)
  x = rng.normal(50.0, 3.0, (4, 6, 5, 3))
  g = rng.normal(size=x.shape)
  scale, bias = np.array([0.5, 2.0, -1.0]), np.array([0.1, 0.2, 0.3])
  bn = BatchNorm(use_running_average=False)
  variables = bn.init(jax.random.key(0), jnp.asarray(x, jnp.float32))

  def loss(params, x):
    y, _ = bn.apply({**variables, "params": params}, x, mutable=["batch_stats"])
    return jnp.sum(y * g)

  params = {"scale": jnp.asarray(scale, jnp.float32), "bias": jnp.asarray(bias, jnp.float32)}
  dparams, dx = jax.grad(loss, argnums=(0, 1))(params, jnp.asarray(x, jnp.float32))
  axes = (0, 1, 2)
  std = np.sqrt(x.var(axes) + 1e-5)
  xhat = (x - x.mean(axes)) / std
  expected_dx = scale / std * (g - g.mean(axes) - xhat * (g * xhat).mean(axes))
  np.testing.assert_allclose(dx, expected_dx, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(dparams["scale"], (g * xhat).sum(axes), rtol=1e-4)
  np.testing.assert_allclose(dparams["bias"], g.sum(axes), rtol=1e-5)


def test_batchnorm_statistics_are_float32_for_half_precision_and_float64_for_float64():
  x = jnp.array([[1.0, 10.0], [2.0, 20.0], [3.0, 31.0]])
  half = BatchNorm(dtype=jnp.bfloat16)
  variables = half.init(jax.random.key(0), x.astype(jnp.bfloat16), use_running_average=False)
  assert variables["batch_stats"]["mean"].dtype == jnp.float32
  with jax.enable_x64(True):
    x64 = x.astype(jnp.float64)
    bn = BatchNorm(param_dtype=jnp.float64)
    variables = bn.init(jax.random.key(0), x64, use_running_average=False)
    y, updates = bn.apply(variables, x64, use_running_average=False, mutable=["batch_stats"])
    assert y.dtype == updates["batch_stats"]["var"].dtype == jnp.float64
    expected = (np.asarray(x64) - np.asarray(x64).mean(0)) / np.sqrt(np.asarray(x64).var(0) + 1e-5)
    np.testing.assert_allclose(y, expected, rtol=1e-13)  # float32 statistics: ~1e-7 off


def test_zero_pad_shortcut_subsamples_and_pads_channels_symmetrically():
  x = jnp.arange(2 * 4 * 4 * 3, dtype=jnp.float32).reshape(2, 4, 4, 3)
  y = ZeroPadShortcut(features=7, strides=2).apply({}, x)
  assert y.shape == (2, 2, 2, 7)
  np.testing.assert_array_equal(y[..., 2:5], x[:, ::2, ::2, :])
  assert not y[..., :2].any() and not y[..., 5:].any()


def test_basic_block_adds_a_projection_only_when_width_or_stride_changes():
  conv = functools.partial(nn.Conv, kernel_size=(3, 3), padding=((1, 1), (1, 1)), use_bias=False)
  norm = functools.partial(BatchNorm, use_running_average=True)
  shortcut = functools.partial(
    ProjectionShortcut,
    conv=functools.partial(nn.Conv, kernel_size=(1, 1), use_bias=False),
    norm=norm,
  )
  block = functools.partial(BasicBlock, conv=conv, norm=norm, shortcut=shortcut)
  x = jnp.ones((1, 8, 8, 4))
  same = block(4).init(jax.random.key(0), x)["params"]
  assert "downsample" not in same
  strided = block(4, strides=(2, 2)).init(jax.random.key(0), x)["params"]
  assert strided["downsample"]["conv"]["kernel"].shape == (1, 1, 4, 4)
  # Identity shortcut: with zero second conv the block is relu(x).
  variables = {
    "params": jax.tree_util.tree_map(jnp.zeros_like, same),
    "batch_stats": block(4).init(jax.random.key(0), x)["batch_stats"],
  }
  np.testing.assert_allclose(block(4).apply(variables, x - 0.5), nn.relu(x - 0.5))
