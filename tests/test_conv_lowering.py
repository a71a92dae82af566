"""Every convolution lowering equals XLA's native convolution, forward and gradients."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from model_init import init_variables

from jaxres import models
from jaxres.models import conv as convs

P1, P0 = (1, 1), (0, 0)
# (input shape, kernel spatial, strides, padding): every kind the video and 2D ResNets use, at odd
# small sizes so that Winograd tiles need padding and strided outputs round.
CASES = {
  "3x3x3": ((2, 5, 7, 6, 4), (3, 3, 3), (1, 1, 1), (P1, P1, P1)),
  "3x3x3_s2": ((2, 5, 7, 6, 4), (3, 3, 3), (2, 2, 2), (P1, P1, P1)),
  # Winograd's written-out gradients at other paddings than (1, 1).
  "3x3x3_valid": ((2, 6, 7, 9, 4), (3, 3, 3), (1, 1, 1), (P0, P0, P0)),
  "3x3x3_uneven": ((2, 6, 7, 9, 4), (3, 3, 3), (1, 1, 1), ((0, 2), (2, 0), (1, 0))),
  "1x3x3_s2x1x1": ((2, 5, 7, 6, 4), (1, 3, 3), (2, 1, 1), (P0, P1, P1)),
  "1x3x3": ((2, 3, 9, 7, 4), (1, 3, 3), (1, 1, 1), (P0, P1, P1)),
  "1x3x3_s2": ((2, 3, 9, 7, 4), (1, 3, 3), (1, 2, 2), (P0, P1, P1)),
  "3x1x1": ((2, 9, 3, 4, 4), (3, 1, 1), (1, 1, 1), (P1, P0, P0)),
  "3x1x1_s2": ((2, 9, 3, 4, 4), (3, 1, 1), (2, 1, 1), (P1, P0, P0)),
  "3x1x1_uneven": ((2, 8, 3, 4, 4), (3, 1, 1), (1, 1, 1), ((2, 0), P0, P0)),
  "1x1x1": ((2, 3, 5, 4, 4), (1, 1, 1), (1, 1, 1), (P0, P0, P0)),
  "1x1x1_s2": ((2, 5, 5, 4, 4), (1, 1, 1), (2, 2, 2), (P0, P0, P0)),
  "1x1x1_s122": ((2, 5, 5, 4, 4), (1, 1, 1), (1, 2, 2), (P0, P0, P0)),
  # 16+ channels: im2col gathers all taps in one concatenate. Stride 1 in time: time-major dots
  # for few frames, all time taps in one dot's output for 8 or more.
  "3x3x3_s2_wide": ((1, 5, 7, 6, 16), (3, 3, 3), (2, 2, 2), (P1, P1, P1)),
  "3x3x3_s122_wide": ((1, 5, 7, 6, 16), (3, 3, 3), (1, 2, 2), (P1, P1, P1)),
  "3x3x3_s122_wide_long": ((1, 8, 7, 6, 16), (3, 3, 3), (1, 2, 2), (P1, P1, P1)),
  "stem_3x7x7": ((1, 4, 13, 11, 3), (3, 7, 7), (1, 2, 2), (P1, (3, 3), (3, 3))),
  "stem_3x7x7_long": ((2, 9, 13, 11, 3), (3, 7, 7), (1, 2, 2), (P1, (3, 3), (3, 3))),
  "stem_1x7x7": ((1, 4, 13, 11, 3), (1, 7, 7), (1, 2, 2), (P0, (3, 3), (3, 3))),
  "2d_3x3": ((2, 9, 10, 4), (3, 3), (1, 1), (P1, P1)),
  "2d_3x3_s2": ((2, 9, 10, 4), (3, 3), (2, 2), (P1, P1)),
  "2d_7x7_s2": ((1, 13, 12, 3), (7, 7), (2, 2), ((3, 3), (3, 3))),
  "2d_1x1_s2": ((2, 7, 6, 4), (1, 1), (2, 2), (P0, P0)),
}


def _lowerings(kernel, strides, padding):
  """(name, function) of every lowering that applies, Winograd with each tile choice."""
  out = [("auto", functools.partial(convs.conv, lowering="auto")), ("im2col", convs.im2col_conv)]
  if all(k == 1 for k in kernel):
    out.append(("pointwise", convs.pointwise_conv))
  axes = convs.winograd_axes(kernel, strides, padding)
  if axes is not None:
    for tile in (2, 4, tuple((2, 4)[i % 2] for i in range(len(axes)))):
      out.append((f"winograd{tile}", functools.partial(convs.winograd_conv, tile=tile)))
  if axes == (0,) and len(kernel) > 1:
    out.append(("temporal", convs.temporal_conv))
  return out


def _rel_err(a, b):
  return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


# The fast tier checks one case of each lowering (Winograd in 3D and 2D, im2col with few and many
# channels, pointwise, the stem); the slow tier checks them all.
FAST_CASES = {
  "3x3x3",
  "3x3x3_s2",
  "3x3x3_s122_wide",
  "1x1x1_s2",
  "stem_3x7x7",
  "2d_3x3",
  "3x1x1",
}


@pytest.mark.parametrize(
  "case", [c if c in FAST_CASES else pytest.param(c, marks=pytest.mark.slow) for c in sorted(CASES)]
)
def test_lowerings_match_native_forward_and_gradients(case):
  shape, kernel, strides, padding = CASES[case]
  kx, kw, kc = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, shape)
  w = jax.random.normal(kw, (*kernel, shape[-1], 5))
  ref = convs.native_conv(x, w, strides, padding)
  dy = jax.random.normal(kc, ref.shape)
  ref_dx, ref_dw = jax.vjp(lambda x, w: convs.native_conv(x, w, strides, padding), x, w)[1](dy)
  for name, fn in _lowerings(kernel, strides, padding):
    f = jax.jit(lambda x, w, fn=fn: fn(x, w, strides, padding))
    y, vjp = jax.vjp(f, x, w)
    dx, dw = vjp(dy)
    assert y.shape == ref.shape, name
    # F(4, 3) multiplies rounding by up to ~10 per axis: still far below 1e-4 of the output scale.
    assert _rel_err(y, ref) < 1e-4, name
    assert _rel_err(dx, ref_dx) < 1e-4, name
    assert _rel_err(dw, ref_dw) < 1e-4, name


@pytest.mark.parametrize(
  "frames, expected", [(4, "_time_taps_as_dots"), (8, "_time_taps_in_output")]
)
def test_im2col_time_taps_by_frame_count(monkeypatch, frames, expected):
  calls = []
  for name in ("_time_taps_as_dots", "_time_taps_in_output"):
    real = getattr(convs, name)
    monkeypatch.setattr(
      convs, name, lambda *a, name=name, real=real: calls.append(name) or real(*a)
    )
  x = jnp.zeros((1, frames, 13, 11, 3))
  convs.im2col_conv(x, jnp.zeros((3, 7, 7, 3, 4)), (1, 2, 2), (P1, (3, 3), (3, 3)))
  assert calls == [expected]


@pytest.mark.parametrize(
  "channels", [8, pytest.param(72, marks=pytest.mark.slow)]
)  # <= 64: transposed halves via YNNPACK; else one dot
def test_winograd_gradients_match_native(channels):
  padding = (P1, P1, P1)
  x = jax.random.normal(jax.random.key(0), (2, 4, 6, 6, channels))
  w = jax.random.normal(jax.random.key(1), (3, 3, 3, channels, channels + 3))
  dy = jax.random.normal(jax.random.key(2), (2, 4, 6, 6, channels + 3))
  ref_dx, ref_dw = jax.vjp(lambda x, w: convs.native_conv(x, w, (1, 1, 1), padding), x, w)[1](dy)
  for tiles in ((2, 2, 2), (2, 4, 4)):
    dx, dw = jax.jit(convs._winograd_grads, static_argnums=(2, 3))(x, w, padding, tiles, dy)
    assert _rel_err(dx, ref_dx) < 1e-4, tiles
    assert _rel_err(dw, ref_dw) < 1e-4, tiles


def test_output_transform_kronecker_pass_equals_separate_passes():
  y = np.random.default_rng(0).normal(size=(6 * 6 * 4, 5))  # (alpha_w, alpha_h, alpha_t), rest
  for kron_first in (True, False):
    out = y
    for done, at in convs._output_passes((2, 4, 4), kron_first):
      out = np.einsum("ma,dar->dmr", at, out.reshape(done, at.shape[1], -1))
    if kron_first:
      fused = out
  np.testing.assert_allclose(fused, out, rtol=1e-12)
  assert [at.shape for _, at in convs._output_passes((2, 4, 4))] == [(16, 36), (2, 4)]


def test_auto_picks_by_backend_and_kernel():
  choose = convs.choose_lowering
  assert choose((3, 3, 3), (1, 1, 1), (P1,) * 3, backend="gpu") == "native"
  assert choose((3, 3, 3), (1, 1, 1), (P1,) * 3, backend="tpu") == "native"
  assert choose((3, 3, 3), (1, 1, 1), (P1,) * 3, backend="cpu") == "winograd"
  assert choose((1, 3, 3), (1, 1, 1), (P0, P1, P1), backend="cpu") == "winograd"
  assert choose((3, 1, 1), (1, 1, 1), (P1, P0, P0), backend="cpu") == "winograd"
  assert choose((3, 3, 3), (2, 2, 2), (P1,) * 3, backend="cpu") == "im2col"
  assert choose((1, 1, 1), (2, 2, 2), (P0,) * 3, backend="cpu") == "pointwise"
  # Few tiles for many output channels (r3d_18 layer4 at batch 4: 64 tiles, 512 channels): im2col.
  cpu = functools.partial(choose, backend="cpu", features=512)
  assert cpu((3, 3, 3), (1, 1, 1), (P1,) * 3, x_shape=(4, 2, 7, 7, 512)) == "im2col"
  assert (
    cpu((3, 3, 3), (1, 1, 1), (P1,) * 3, x_shape=(4, 4, 14, 14, 256), features=256) == "winograd"
  )
  assert cpu((1, 3, 3), (1, 1, 1), (P0, P1, P1), x_shape=(4, 16, 7, 7, 512)) == "winograd"
  assert convs.default_tiles((1, 16, 56, 56, 64), (0, 1, 2)) == (4, 4, 4)
  assert convs.default_tiles((1, 4, 14, 14, 256), (0, 1, 2)) == (2, 4, 4)
  assert convs.default_tiles((1, 2, 7, 7, 64), (1, 2)) == (4, 4)


def test_module_has_nn_conv_parameters_and_outputs():
  x = jax.random.normal(jax.random.key(0), (2, 4, 9, 9, 3))
  kwargs = dict(features=6, kernel_size=(3, 3, 3), strides=(1, 2, 2), padding=((1, 1),) * 3)
  for use_bias in (False, True):
    ours, theirs = convs.Conv(use_bias=use_bias, **kwargs), nn.Conv(use_bias=use_bias, **kwargs)
    variables = theirs.init(jax.random.key(1), x)
    shapes = jax.tree.map(jnp.shape, jax.eval_shape(ours.init, jax.random.key(1), x))
    assert shapes == jax.tree.map(jnp.shape, variables)
    np.testing.assert_allclose(
      jax.jit(ours.apply)(variables, x), theirs.apply(variables, x), rtol=1e-5, atol=1e-5
    )
  for padding in ("SAME", "VALID", 1):
    layer = convs.Conv(4, (3, 3), padding=padding, use_bias=False)
    native = nn.Conv(4, (3, 3), padding=padding, use_bias=False)
    variables = native.init(jax.random.key(1), x[:, 0])
    np.testing.assert_allclose(
      jax.jit(layer.apply)(variables, x[:, 0]),
      native.apply(variables, x[:, 0]),
      rtol=1e-5,
      atol=1e-5,
    )


def test_module_takes_kernel_dilation_as_nn_conv():
  x = jax.random.normal(jax.random.key(0), (2, 11, 13, 5))
  for dilation, padding in ((2, "SAME"), ((4, 1), 1), (2, "VALID")):
    kwargs = dict(features=3, kernel_size=(3, 3), padding=padding, kernel_dilation=dilation)
    ours, theirs = convs.Conv(**kwargs), nn.Conv(**kwargs)
    variables = theirs.init(jax.random.key(1), x)
    y = jax.jit(ours.apply)(variables, x)
    assert y.shape == theirs.apply(variables, x).shape
    np.testing.assert_allclose(y, theirs.apply(variables, x), rtol=1e-5, atol=1e-5)


def test_temporal_lowering_is_xla_forward_and_winograd_under_differentiation():
  x = jax.random.normal(jax.random.key(0), (2, 6, 4, 5, 8))
  w = jax.random.normal(jax.random.key(1), (3, 1, 1, 8, 6))
  padding = (P1, P0, P0)
  f = lambda x, w: convs.temporal_conv(x, w, (1, 1, 1), padding)
  forward = str(jax.make_jaxpr(f)(x, w))
  differentiated = str(
    jax.make_jaxpr(lambda x, w: jax.vjp(f, x, w)[1](jnp.ones((2, 6, 4, 5, 6))))(x, w)
  )
  assert "conv_general_dilated" in forward and "dot_general" not in forward
  assert "conv_general_dilated" not in differentiated and "dot_general" in differentiated
  with pytest.raises(ValueError, match="temporal_conv takes kernels"):
    convs.temporal_conv(x, jnp.ones((3, 3, 1, 8, 6)), (1, 1, 1), (P1, P1, P0))
  with pytest.raises(ValueError, match="temporal_conv takes kernels"):
    convs.temporal_conv(x, w, (2, 1, 1), padding)


def test_auto_picks_temporal_for_large_frames_with_many_channels():
  cpu = functools.partial(convs.choose_lowering, (3, 1, 1), (1, 1, 1), (P1, P0, P0), "cpu")
  # r2plus1d_18's layer1 and layer2 temporal convolutions (batch 4).
  assert cpu((4, 16, 56, 56, 144), 64) == "temporal"
  assert cpu((4, 8, 28, 28, 288), 128) == "temporal"
  # Its stem's (45 channels), layer3's (14x14 frames), and without a shape: Winograd.
  assert cpu((4, 16, 56, 56, 45), 64) == "winograd"
  assert cpu((4, 4, 14, 14, 576), 256) == "winograd"
  assert cpu() == "winograd"
  assert (
    convs.choose_lowering((3, 1, 1), (1, 1, 1), (P1, P0, P0), "gpu", (4, 16, 56, 56, 144), 64)
    == "native"
  )


def test_auto_leaves_2d_convolutions_of_large_images_to_xla():
  cpu = functools.partial(convs.choose_lowering, (3, 3), (1, 1), (P1, P1), backend="cpu")
  edge = convs.WINOGRAD_2D_MAX_PIXELS
  assert cpu(x_shape=(64, 56, 56, 64), features=64) == "winograd"
  assert cpu(x_shape=(5, 180, 320, 64), features=256) == "winograd"
  assert cpu(x_shape=(1, 1, edge, 64), features=64) == "winograd"
  assert cpu(x_shape=(1, 1, edge + 1, 64), features=64) == "native"
  assert cpu(x_shape=(1, 720, 1280, 64), features=64) == "native"
  # Video models' 1x3x3 convolutions are 3D kernels: Winograd at any size.
  spatial = convs.choose_lowering((1, 3, 3), (1, 1, 1), (P0, P1, P1), backend="cpu")
  assert spatial == "winograd"
  big_3d = (1, 2, 720, 1280, 64)
  assert convs.choose_lowering((1, 3, 3), (1, 1, 1), (P0, P1, P1), "cpu", big_3d, 64) == "winograd"


def test_module_computes_in_bfloat16():
  layer = convs.Conv(4, (3, 3, 3), padding=((1, 1),) * 3, use_bias=False, dtype=jnp.bfloat16)
  for shape in ((1, 4, 6, 6, 3), (1, 2, 8, 8, 3)):  # F(4, 3) and F(2, 3) on different axes
    x = jnp.ones(shape)
    y = jax.jit(lambda x: layer.apply(layer.init(jax.random.key(0), x), x))(x)
    assert y.dtype == jnp.bfloat16 and y.shape == shape[:-1] + (4,)


def test_model_refuses_unknown_lowering():
  model = models.get("r3d_tiny", num_classes=3, conv_lowering="natve")
  with pytest.raises(ValueError, match="Unknown lowering 'natve'; choose one of"):
    jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 4, 16, 16, 3)))


@pytest.mark.slow  # compiles gradients of whole models twice
@pytest.mark.parametrize("name", ["r3d_tiny", "resnet20"])
def test_models_agree_across_lowerings(name):
  shape = (2, 4, 16, 16, 3) if models.spec(name).input_rank == 5 else (2, 16, 16, 3)
  x = jax.random.normal(jax.random.key(0), shape)
  fast = models.get(name, num_classes=7)
  native = models.get(name, num_classes=7, conv_lowering="native")
  ops = lambda model: str(jax.make_jaxpr(lambda: model.init(jax.random.key(1), x))())
  assert "conv_general_dilated" in ops(native)
  if jax.default_backend() == "cpu":
    assert "conv_general_dilated" not in ops(fast)
  variables = init_variables(fast, x, seed=1, train=False)
  assert jax.tree.map(
    jnp.shape, jax.eval_shape(lambda: native.init(jax.random.key(1), x, train=False))
  ) == jax.tree.map(jnp.shape, variables)

  def loss(params, model):
    logits, _ = model.apply({**variables, "params": params}, x, train=True, mutable=["batch_stats"])
    return jnp.sum(jax.nn.log_softmax(logits)[:, 0])

  grads = lambda model: jax.jit(jax.value_and_grad(lambda p: loss(p, model)))(variables["params"])
  (l1, g1), (l2, g2) = grads(fast), grads(native)
  np.testing.assert_allclose(l1, l2, rtol=1e-4)
  # Train-mode BatchNorm over a tiny batch amplifies Winograd's rounding: seen up to 3.2e-3.
  for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
    assert _rel_err(a, b) < 1e-2
  forward = lambda model: jax.jit(lambda v: model.apply(v, x))(variables)
  np.testing.assert_allclose(forward(fast), forward(native), rtol=1e-4, atol=1e-4)


# Grouped convolutions: (input shape, kernel spatial, strides, padding, groups). CSN's depthwise
# 3x3x3 (strided in every axis too), and a grouped one with 2 channels per group.
GROUPED = {
  "depthwise_3x3x3": ((2, 5, 7, 6, 8), (3, 3, 3), (1, 1, 1), (P1, P1, P1), 8),
  "depthwise_3x3x3_s2": ((2, 5, 7, 6, 8), (3, 3, 3), (2, 2, 2), (P1, P1, P1), 8),
  "depthwise_2d_3x3_s2": ((2, 9, 10, 6), (3, 3), (2, 2), (P1, P1), 6),
  # X3D's strides, uneven padding (the written-out VJP spreads and crops dy per axis).
  "depthwise_3x3x3_s122_uneven": ((2, 4, 8, 7, 8), (3, 3, 3), (1, 2, 2), (P1, (0, 1), (1, 0)), 8),
  "groups_of_2": ((2, 5, 7, 6, 8), (3, 3, 3), (1, 2, 2), (P1, P1, P1), 4),
}


@pytest.mark.parametrize(
  "case",
  [
    c if c == "depthwise_3x3x3_s2" else pytest.param(c, marks=pytest.mark.slow)
    for c in sorted(GROUPED)
  ],
)
def test_grouped_lowerings_match_xla_forward_and_gradients(case):
  shape, kernel, strides, padding, groups = GROUPED[case]
  channels = shape[-1]
  x = jax.random.normal(jax.random.key(0), shape)
  w = jax.random.normal(jax.random.key(1), (*kernel, channels // groups, channels))
  lowerings = ["auto", "im2col"] + (["depthwise"] if groups == channels else [])

  @jax.jit
  def everything(x, w):
    native = lambda x, w: convs.native_conv(x, w, strides, padding, feature_group_count=groups)
    ref, ref_vjp = jax.vjp(native, x, w)
    # The reference of the reference: each group convolved on its own.
    size = channels // groups
    per_group = jnp.concatenate(
      [
        convs.native_conv(
          x[..., g * size : (g + 1) * size], w[..., g * size : (g + 1) * size], strides, padding
        )
        for g in range(groups)
      ],
      axis=-1,
    )
    dy = jax.random.normal(jax.random.key(2), ref.shape)
    out = {"native": (ref, *ref_vjp(dy))}
    for lowering in lowerings:  # im2col asked of a grouped conv falls back to the grouped choice
      y, vjp = jax.vjp(
        lambda x, w, lowering=lowering: convs.conv(
          x, w, strides, padding, lowering=lowering, feature_group_count=groups
        ),
        x,
        w,
      )
      out[lowering] = (y, *vjp(dy))
    return per_group, out

  per_group, out = everything(x, w)
  assert _rel_err(out["native"][0], per_group) < 1e-5
  for lowering in lowerings:
    for got, want, what in zip(out[lowering], out["native"], ("y", "dx", "dw")):
      assert _rel_err(got, want) < 1e-5, (lowering, what)


def test_grouped_conv_module_matches_nn_conv_and_picks_its_lowering():
  x = jax.random.normal(jax.random.key(0), (2, 4, 6, 6, 6))
  for groups, features in ((6, 6), (2, 4)):
    ours = convs.Conv(features, (3, 3, 3), padding=((1, 1),) * 3, feature_group_count=groups)
    theirs = nn.Conv(features, (3, 3, 3), padding=((1, 1),) * 3, feature_group_count=groups)
    variables = jax.jit(theirs.init)(jax.random.key(1), x)
    assert jax.tree.map(jnp.shape, jax.eval_shape(ours.init, jax.random.key(1), x)) == jax.tree.map(
      jnp.shape, variables
    )
    got, want = jax.jit(lambda v, x: (ours.apply(v, x), theirs.apply(v, x)))(variables, x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match="feature_group_count=4 must divide"):
    jax.eval_shape(
      convs.Conv(6, (3, 3), feature_group_count=4).init, jax.random.key(0), jnp.zeros((1, 5, 5, 6))
    )
  with pytest.raises(ValueError, match="depthwise lowering needs one group per input channel"):
    convs.conv(
      x, jnp.zeros((3, 3, 3, 2, 6)), padding="SAME", lowering="depthwise", feature_group_count=3
    )
  choose = convs.choose_grouped_lowering
  assert choose(64, 64, 64, backend="gpu") == "native"
  assert choose(64, 32, 64, backend="cpu") == "native"  # not depthwise
  assert choose(64, 64, 128, backend="cpu") == "native"  # a channel multiplier
