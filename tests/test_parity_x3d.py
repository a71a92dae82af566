"""X3D against PyTorchVideo 0.1.5: converted weights give its logits (eval and train mode), same
parameter counts, multiply-adds equal to fvcore's, clear conversion errors."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
from torch_reference import (  # noqa: E402
  alias_renamed_torchvision_modules,
  channels_last,
  randomise_batchnorm,
  rel_err,
)

alias_renamed_torchvision_modules()  # PyTorchVideo imports torchvision's old module name
x3d_reference = pytest.importorskip("pytorchvideo.models.x3d")
hub = pytest.importorskip("pytorchvideo.models.hub")

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from jaxres import models  # noqa: E402
from jaxres.convert import ConversionError, from_pytorchvideo_x3d  # noqa: E402
from jaxres.models.x3d import DepthwiseConv  # noqa: E402

slow = pytest.mark.slow


def _reference(frames, crop, num_classes, depth_factor=2.2, **kwargs):
  """PyTorchVideo's X3D built for a `frames x crop` clip (its head's pooling window then covers
  the whole final feature map, as at the hub models' default clips), returning logits, with
  dropout off so that train mode is deterministic."""
  torch.manual_seed(1)
  kwargs = {"head_activation": None, "dropout_rate": 0.0, **kwargs}
  model = x3d_reference.create_x3d(
    input_clip_length=frames,
    input_crop_size=crop,
    model_num_class=num_classes,
    depth_factor=depth_factor,
    **kwargs,
  )
  return randomise_batchnorm(model, seed=0)


def _compare(arch, torch_model, x, num_classes, depth_factor=None):
  """(eval relative error, train relative error, worst running-statistics error, eval logits)."""
  fields = {} if depth_factor is None else {"depth_factor": depth_factor}
  variables = from_pytorchvideo_x3d(torch_model.state_dict(), arch, **fields)
  model = models.get(arch, num_classes=num_classes, **fields)
  xj = channels_last(x)
  with torch.no_grad():
    expected_eval = torch_model.eval()(x).numpy()
    expected_train = torch_model.train()(x).numpy()  # updates the running statistics

  @jax.jit
  def both_modes(variables, x):  # one compilation for both
    return (
      model.apply(variables, x, train=False),
      model.apply(variables, x, train=True, mutable=["batch_stats"]),
    )

  got_eval, (got_train, updates) = both_modes(variables, xj)
  new_stats = from_pytorchvideo_x3d(torch_model.state_dict(), arch, **fields)["batch_stats"]
  want = dict(jax.tree_util.tree_leaves_with_path(new_stats))
  stats_err = max(
    rel_err(v, want[p]) for p, v in jax.tree_util.tree_leaves_with_path(updates["batch_stats"])
  )
  return (rel_err(got_eval, expected_eval), rel_err(got_train, expected_train), stats_err, got_eval)


def test_shallow_x3d_matches_pytorchvideo_in_eval_and_train_mode():
  """Every kind of piece (stem, blocks with and without SE, the conv-only and conv+BN shortcuts,
  the head) at depth_factor 0.4 (1, 1, 2, 2 blocks), on an odd 5x40x40 clip (feature maps 20, 10,
  5, 3, 2), and the softmax head PyTorchVideo ends with by default."""
  torch_model = _reference(5, 40, num_classes=7, depth_factor=0.4)
  # PyTorchVideo's default head (hub models included) ends with a softmax; jaxres returns the
  # logits before it. Same weights (the softmax has none).
  softmax_model = _reference(
    5, 40, num_classes=7, depth_factor=0.4, head_activation=torch.nn.Softmax
  ).eval()
  softmax_model.load_state_dict(torch_model.state_dict())
  x = torch.randn(2, 3, 5, 40, 40, generator=torch.Generator().manual_seed(2))
  err_eval, err_train, err_stats, logits = _compare("x3d_m", torch_model, x, 7, depth_factor=0.4)
  assert err_eval < 1e-4 and err_train < 1e-4 and err_stats < 1e-4
  with torch.no_grad():
    probabilities = softmax_model(x).numpy()
  np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
  assert rel_err(jax.nn.softmax(logits), probabilities) < 1e-4


@slow
def test_x3d_m_matches_pytorchvideo_in_eval_and_train_mode():
  torch_model = _reference(5, 72, num_classes=11)
  x = torch.randn(2, 3, 5, 72, 72, generator=torch.Generator().manual_seed(3))
  err_eval, err_train, err_stats, _ = _compare("x3d_m", torch_model, x, 11)
  assert err_eval < 1e-4 and err_train < 1e-4 and err_stats < 1e-4


@slow
def test_x3d_l_weights_convert():
  """x3d_l is x3d_m's blocks, deeper (5, 10, 25, 15): every key of the hub model maps."""
  variables = from_pytorchvideo_x3d(hub.x3d_l(model_num_class=6).state_dict(), "x3d_l")
  assert len([k for k in variables["params"] if k.startswith("layer")]) == 5 + 10 + 25 + 15


@pytest.mark.parametrize(
  "arch", ["x3d_m"] + [pytest.param(a, marks=slow) for a in ("x3d_xs", "x3d_s", "x3d_l")]
)
def test_parameter_counts_and_default_clips_match_pytorchvideo(arch):
  torch_model = getattr(hub, arch)()
  spec = models.spec(arch)
  shape = (1, spec.num_frames, spec.crop_size, spec.crop_size, 3)
  model = models.get(arch, num_classes=400)
  variables = jax.eval_shape(
    lambda x: model.init(jax.random.key(0), x, train=False),
    jax.ShapeDtypeStruct(shape, jnp.float32),
  )
  assert models.count_params(variables["params"]) == sum(
    p.numel() for p in torch_model.parameters()
  )
  # The head's pooling window of the hub model is the final feature map of its default clip.
  pool = torch_model.blocks[5].pool.pool.kernel_size
  assert tuple(pool) == (
    spec.num_frames,
    spec.crop_size // 32 + (spec.crop_size % 32 > 0),
    spec.crop_size // 32 + (spec.crop_size % 32 > 0),
  )
  if arch == "x3d_m":
    assert models.count_params(variables["params"]) == 3_794_274


# fvcore's FlopCountAnalysis counts one multiply-add as one flop. Like count_macs it counts
# convolutions (depthwise ones as k x 1 per output) and linear layers; besides them it counts
# batch_norm (2 per element in eval mode), which count_macs leaves out as torchvision does, and it
# skips the rest (swish, SE's sigmoid and product, additions, means and average pools).
def _fvcore_conv_and_linear(torch_model, x):
  from fvcore.nn import FlopCountAnalysis

  counts = FlopCountAnalysis(torch_model.eval(), x).unsupported_ops_warnings(False)
  counts = counts.uncalled_modules_warnings(False).by_operator()
  return counts["conv"] + counts["linear"]


def test_multiply_adds_equal_fvcores_count_at_a_small_clip():
  torch_model = _reference(4, 64, num_classes=400, depth_factor=0.4)
  fvcore_count = _fvcore_conv_and_linear(torch_model, torch.zeros(1, 3, 4, 64, 64))
  assert models.count_macs(models.get("x3d_m", depth_factor=0.4), (1, 4, 64, 64, 3)) == fvcore_count


# fvcore's count of conv + linear at each hub model's default clip (measured with fvcore; the slow
# test below recounts x3d_m's).
MACS = {"x3d_xs": 605_256_512, "x3d_m": 4_732_468_736}


@pytest.mark.parametrize("arch", ["x3d_m", pytest.param("x3d_xs", marks=slow)])
def test_multiply_adds_at_the_default_clip(arch):
  spec = models.spec(arch)
  shape = (1, spec.num_frames, spec.crop_size, spec.crop_size, 3)
  assert models.count_macs(models.get(arch), shape) == MACS[arch]


@slow
def test_fvcore_counts_the_default_clip_as_recorded():
  arch = "x3d_m"
  spec = models.spec(arch)
  x = torch.zeros(1, 3, spec.num_frames, spec.crop_size, spec.crop_size)
  assert _fvcore_conv_and_linear(getattr(hub, arch)(), x) == MACS[arch]


class _Depthwise(nn.Module):
  @nn.compact
  def __call__(self, x, train=False):
    return DepthwiseConv(6, (3, 3, 3), strides=(1, 2, 2), padding=((1, 1),) * 3)(x)


def test_depthwise_conv_multiply_adds_are_kernel_taps_per_output():
  # 4 x 5 x 5 outputs per channel, 27 taps each.
  assert models.count_macs(_Depthwise(), (1, 4, 10, 10, 6)) == 4 * 5 * 5 * 6 * 27


def test_x3d_depthwise_conv_equals_xlas_grouped_conv_with_gradients():
  # Strided, on odd sizes (the stem's 5x1x1 is in the parity tests).
  shape, kernel, strides = (2, 5, 9, 8, 6), (3, 3, 3), (1, 2, 2)
  padding = tuple((k // 2, k // 2) for k in kernel)
  native = DepthwiseConv(shape[-1], kernel, strides, padding, lowering="native")
  taps = DepthwiseConv(shape[-1], kernel, strides, padding)  # the CPU default
  x = jax.random.normal(jax.random.key(0), shape)
  variables = native.init(jax.random.key(1), x)

  def value_and_grads(module):
    loss = lambda v, x: jnp.sum(jnp.sin(module.apply(v, x)))  # noqa: E731
    return jax.jit(lambda v, x: (module.apply(v, x), jax.grad(loss, (0, 1))(v, x)))

  (y_taps, grads_taps), (y_native, grads_native) = (
    value_and_grads(m)(variables, x) for m in (taps, native)
  )
  np.testing.assert_allclose(y_taps, y_native, rtol=1e-5, atol=1e-5)
  for got, want in zip(grads_taps, grads_native):
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), got, want)


def test_conversion_errors_name_every_offending_key():
  state_dict = _reference(4, 32, num_classes=4, depth_factor=0.4).state_dict()
  del state_dict["blocks.2.res_blocks.0.branch1_norm.running_var"]
  state_dict["blocks.9.res_blocks.0.branch2.conv_a.weight"] = torch.zeros(1)
  state_dict["blocks.5.proj.bias"] = torch.zeros(5)
  with pytest.raises(ConversionError) as error:
    from_pytorchvideo_x3d(state_dict, "x3d_m")  # depth 2.2: blocks of x3d_m are missing too
  message = str(error.value)
  assert "batch_stats/layer2_0/downsample_bn/var" in message  # missing
  assert "params/layer3_10/conv1/kernel" in message  # missing: the shallow model has 2 blocks
  assert "blocks.9.res_blocks.0.branch2.conv_a.weight" in message  # unknown
  assert "blocks.5.proj.bias (5,) -> params/head/fc/bias (4,)" in message  # shape mismatch
  with pytest.raises(ConversionError, match="convertible: x3d_xs"):
    from_pytorchvideo_x3d(state_dict, "r3d_18")
  with pytest.raises(ConversionError, match="blocks.5.proj.weight"):
    from_pytorchvideo_x3d({"fc.weight": np.zeros((4, 2))}, "x3d_m")
