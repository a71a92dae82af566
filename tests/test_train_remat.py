"""Rematerialisation (`config.model.remat`): the same parameters, outputs and gradients, and far
fewer activations kept for the backward pass.

Memory is measured as the residuals of `jax.vjp` (what the forward pass keeps for the backward
one), read with `jax.eval_shape`: that is what remat changes, whatever the backend's scheduler
does with it. XLA's CPU scheduler places the recomputations early, so the compiled CPU step's
`memory_analysis().temp_size_in_bytes` does not fall (r3d_18, 2x16x112x112, native convolutions:
475 MB without remat, 515 MB per block); TPU and GPU schedule them where they are used.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxres.models.blocks import BasicBlock, BottleneckBlock, ZeroPadShortcut, remat_block
from jaxres.models.resnet import CifarStem, ResNet
from jaxres.train import build_model, load_config


def _config(name, remat, *more):
  return load_config(
    "demo", [f"--config.model.name={name}", f"--config.model.remat={remat}", *more]
  )


def _loss(model):
  def loss(params, batch_stats, x):
    out, updates = model.apply(
      {"params": params, "batch_stats": batch_stats}, x, train=True, mutable=["batch_stats"]
    )
    return jnp.sum(out**2), updates["batch_stats"]

  return loss


# The primitive of `jax.checkpoint`, which `nn.remat` lowers to ("remat2" or "checkpoint" by jax's
# version): what makes XLA recompute a block's activations in the backward pass.
_REMAT = jax.make_jaxpr(jax.checkpoint(jnp.sin))(1.0).eqns[0].primitive


def _remat_calls(model, shape):
  """The rematerialised calls in the jaxpr of the gradient of `_loss(model)` at a batch of `shape`
  (traced, not compiled): one per rematerialised block, recomputed in the backward pass."""
  variables = jax.eval_shape(
    lambda: model.init(jax.random.key(0), jnp.zeros((1,) + shape[1:]), train=False)
  )
  grad = jax.grad(lambda p, bs, x: _loss(model)(p, bs, x)[0])
  jaxpr = jax.make_jaxpr(grad)(
    variables["params"], variables["batch_stats"], jax.ShapeDtypeStruct(shape, jnp.float32)
  )
  return [eqn for eqn in jaxpr.eqns if eqn.primitive is _REMAT]


def _tiny_2d(block_cls):
  return ResNet(
    stage_sizes=(1, 1),
    widths=(4, 8),
    stem_cls=functools.partial(CifarStem, features=4),
    shortcut_cls=ZeroPadShortcut,
    block_cls=block_cls,
    num_classes=5,
    conv_lowering="native",
  )


@pytest.mark.parametrize(
  "name,shape,policies",
  [
    ("r3d_tiny", (2, 4, 16, 16, 3), ("block",)),
    pytest.param("r3d_tiny", (2, 4, 16, 16, 3), ("dots_saveable",), marks=pytest.mark.slow),
    pytest.param("2d", (2, 8, 8, 3), ("block",), marks=pytest.mark.slow),
  ],
)
def test_remat_gives_the_same_gradients(name, shape, policies):
  x = jax.random.normal(jax.random.key(1), shape)
  results = {}
  for remat in ("none",) + policies:
    if name == "2d":  # a one-block-per-stage CIFAR ResNet: compiles faster than resnet20
      model = _tiny_2d(remat_block(BasicBlock, remat))
    else:
      model = build_model(
        _config(name, remat, "--config.model.num_classes=5", "--config.model.conv_lowering=native")
      )  # compiles fastest
    # Every residual block, and nothing without remat, is a checkpointed call of the backward
    # pass, with the policy named.
    calls = _remat_calls(model, shape)
    assert len(calls) == (0 if remat == "none" else sum(model.stage_sizes)), (remat, len(calls))
    policy = None if remat in ("none", "block") else getattr(jax.checkpoint_policies, remat)
    assert all(eqn.params["policy"] == policy for eqn in calls), remat
    variables = model.init(jax.random.key(0), x, train=False)
    grad = jax.jit(jax.value_and_grad(_loss(model), has_aux=True))
    results[remat] = (variables, grad(variables["params"], variables["batch_stats"], x))
  ref_vars, ((ref_loss, ref_stats), ref_grads) = results.pop("none")
  for remat, (variables, ((loss, stats), grads)) in results.items():
    assert jax.tree.structure(variables) == jax.tree.structure(ref_vars)  # same parameter names
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-6)
    for a, b in zip(
      jax.tree.leaves((grads, stats)), jax.tree.leaves((ref_grads, ref_stats)), strict=True
    ):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * np.abs(b).max(), err_msg=remat)


def _residual_bytes(name, remat, shape):
  model = build_model(_config(name, remat, "--config.model.conv_lowering=native"))
  params = jax.eval_shape(
    lambda: model.init(jax.random.key(0), jnp.zeros((1,) + shape[1:]), train=False)
  )
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  loss = lambda p, bs, x: _loss(model)(p, bs, x)[0]
  vjp = jax.eval_shape(
    lambda p, bs, x: jax.vjp(lambda p: loss(p, bs, x), p)[1],
    params["params"],
    params["batch_stats"],
    x,
  )
  return sum(math.prod(leaf.shape) * leaf.dtype.itemsize for leaf in jax.tree.leaves(vjp))


def test_remat_keeps_fewer_activations_for_the_backward_pass():
  # r3d_18 on 2 clips of 16x112x112: measured 804 MB kept without remat, 300 MB per block
  # ("block", which keeps only each block's input), 438 MB with "dots_saveable".
  shape = (2, 16, 112, 112, 3)
  kept = {
    remat: _residual_bytes("r3d_18", remat, shape) for remat in ("none", "block", "dots_saveable")
  }
  assert kept["block"] < 0.45 * kept["none"], kept
  assert kept["block"] < kept["dots_saveable"] < 0.6 * kept["none"], kept


def test_remat_wraps_bottleneck_blocks_too():
  block = remat_block(BottleneckBlock, "block")
  assert issubclass(block, BottleneckBlock) and block is not BottleneckBlock
  assert remat_block(BottleneckBlock, "none") is BottleneckBlock
  shape = lambda remat: jax.tree.map(
    lambda a: a.shape,
    jax.eval_shape(
      lambda: build_model(_config("resnet50", remat)).init(
        jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False
      )
    ),
  )
  assert shape("dots_saveable") == shape("none")
  # ResNet-50's 3 + 4 + 6 + 3 bottleneck blocks are each recomputed in the backward pass.
  assert len(_remat_calls(build_model(_config("resnet50", "block")), (1, 32, 32, 3))) == 16


def test_bad_remat_settings_are_refused_by_name():
  with pytest.raises(
    ValueError,
    match=r"config\.model\.remat: Unknown remat policy 'dots'.*"
    r"dots_saveable",
  ):
    build_model(_config("r3d_tiny", "dots"))
  config = load_config("sr_edsr_demo")
  config.unlock()
  config.model.remat = "block"
  with pytest.raises(
    ValueError,
    match=r"config\.model\.remat='block': model 'edsr_bicubic_baseline' takes "
    r"no residual block class",
  ):
    build_model(config)
  # What EDSR lacks, the ResNets have: with the setting accepted, each block is rematerialised.
  assert len(_remat_calls(build_model(_config("r3d_tiny", "block")), (1, 4, 16, 16, 3))) == 4
