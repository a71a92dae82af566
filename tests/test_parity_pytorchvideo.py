"""Converted PyTorchVideo 0.1.5 models give PyTorchVideo's numbers (skipped without torch/pytorchvideo).

Whole deep networks compile for seconds each, so one small case runs in the fast tier and the rest
in the slow tier; parameter counts (the issue's table) are traced with `jax.eval_shape`, instantly.
"""

import copy

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
pytorchvideo_hub = pytest.importorskip("pytorchvideo.models.hub")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from pytorchvideo.models.csn import create_csn  # noqa: E402

from jaxres import models  # noqa: E402
from jaxres.convert import ConversionError, from_pytorchvideo  # noqa: E402
from jaxres.models.pytorchvideo_resnet import PYTORCHVIDEO_HEAD_POOL  # noqa: E402
from jaxres.models.slowfast import slow_frame_indices  # noqa: E402

ARCHS = ("slow_r50", "c2d_r50", "i3d_r50", "csn_r101", "ir_csn_152", "r2plus1d_r50", "slowfast_r50")
# PyTorchVideo 0.1.5 with 400 classes (the table).
PARAMS = {
  "slow_r50": 32_454_096,
  "c2d_r50": 24_327_632,
  "i3d_r50": 28_043_472,
  "csn_r101": 22_213_776,
  "ir_csn_152": 29_703_568,
  "r2plus1d_r50": 28_107_600,
  "slowfast_r50": 34_566_488,
}


def _build_torch(arch, num_classes, **kwargs):
  if arch == "ir_csn_152":  # not in PyTorchVideo's hub: csn_r101's builder at depth 152
    return create_csn(
      model_depth=152,
      stem_pool=torch.nn.MaxPool3d,
      head_pool_kernel_size=(4, 7, 7),
      model_num_class=num_classes,
      **kwargs,
    )
  return getattr(pytorchvideo_hub, arch)(model_num_class=num_classes, **kwargs)


def _random_torch_model(arch, num_classes, seed=0, global_pool=True, **kwargs):
  """A PyTorchVideo model with random weights, BatchNorm statistics and affine terms.

  With `global_pool`, the head's fixed-kernel average pool is dropped: the head then averages the
  per-position logits, i.e. a global average pool (linear layers commute with averaging), which is
  what jaxres does by default and what fits small inputs. R(2+1)D's softmax is dropped (jaxres
  returns logits) and so is the head's dropout (random in train mode).
  """
  torch.manual_seed(seed)
  model = _build_torch(arch, num_classes, **kwargs)
  head = model.blocks[-1]
  if global_pool:
    head.pool = None
    if arch == "slowfast_r50":  # the pathways' pools come before the concatenation
      model.blocks[-2].pool = torch.nn.ModuleList([torch.nn.AdaptiveAvgPool3d(1)] * 2)
  head.activation = None
  head.dropout = None
  randomise_batchnorm(model)
  with torch.no_grad():
    head.proj.weight.normal_(0, 0.5)  # logits of order 1, not 0.01
  return model


def _torch_input(arch, x):
  """The clip as the PyTorchVideo model takes it: SlowFast's [slow, fast] as `PackPathway` makes."""
  if arch != "slowfast_r50":
    return x
  index = torch.linspace(0, x.shape[2] - 1, x.shape[2] // 4).long()
  return [torch.index_select(x, 2, index), x]


@pytest.mark.parametrize("arch", ARCHS)
def test_parameter_counts_match_pytorchvideo(arch):
  model = models.get(arch, num_classes=400, conv_lowering="native")  # the fastest to trace
  variables = jax.eval_shape(
    lambda x: model.init(jax.random.key(0), x, train=False),
    jax.ShapeDtypeStruct((1, 4, 32, 32, 3), jnp.float32),
  )
  assert models.count_params(variables["params"]) == PARAMS[arch]


# fvcore 0.1.5 FlopCountAnalysis of the PyTorchVideo models at their default clip (batch 1): its
# "conv" + "linear" counts, one multiply-add each. fvcore also counts BatchNorm (2 per element in
# eval mode: slow_r50 177,823,744, csn_r101 571,805,696) and skips max/average pooling and the
# residual additions; count_macs counts convolutions and linear layers only, as torchvision does.
FVCORE_CONV_LINEAR = {
  "slow_r50": 41_740_828_672,
  "c2d_r50": 19_493_191_680,
  "i3d_r50": 28_407_660_544,
  "csn_r101": 56_468_187_136,
  "ir_csn_152": 74_046_244_864,
  "r2plus1d_r50": 57_533_825_024,
  "slowfast_r50": 50_308_583_424,
}


@pytest.mark.parametrize(
  "arch",
  [a if a in ("slow_r50", "csn_r101") else pytest.param(a, marks=pytest.mark.slow) for a in ARCHS],
)
def test_multiply_adds_at_the_default_clip_match_fvcore(arch):
  shape = models.spec(arch).default_input_shape()
  assert (
    models.count_macs(models.get(arch, conv_lowering="native"), shape) == FVCORE_CONV_LINEAR[arch]
  )


@pytest.mark.slow  # traces PyTorchVideo's slow_r50 at 8x224x224 (seconds)
def test_fvcore_counts_are_the_recorded_ones():
  fvcore = pytest.importorskip("fvcore.nn")
  analysis = fvcore.FlopCountAnalysis(
    _build_torch("slow_r50", 400).eval(), torch.zeros(1, 3, 8, 224, 224)
  )
  analysis.unsupported_ops_warnings(False)
  analysis.uncalled_modules_warnings(False)
  ops = analysis.by_operator()
  assert ops["conv"] + ops["linear"] == FVCORE_CONV_LINEAR["slow_r50"]
  assert set(ops) == {"conv", "linear", "batch_norm"}


def test_registry_has_the_default_clips():
  clips = {
    a: (models.spec(a).num_frames, models.spec(a).frame_stride, models.spec(a).crop_size)
    for a in ARCHS
  }
  assert clips == {
    "slow_r50": (8, 8, 224),
    "c2d_r50": (8, 8, 224),
    "i3d_r50": (8, 8, 224),
    "csn_r101": (32, 2, 224),
    "ir_csn_152": (32, 2, 224),
    "r2plus1d_r50": (16, 4, 224),
    "slowfast_r50": (32, 2, 224),
  }
  assert models.spec("csn_r101").default_input_shape(2) == (2, 32, 224, 224, 3)


def _both_modes(arch, num_classes, lowering):
  model = models.get(arch, num_classes=num_classes, conv_lowering=lowering, dropout_rate=0.0)

  def run(variables, x):
    logits_eval = model.apply(variables, x, train=False)
    logits_train, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
    return logits_eval, logits_train, updates["batch_stats"]

  return jax.jit(run)


def _check_both_modes(arch, lowering, shape):
  """Eval mode against PyTorchVideo in float32: < 1e-4. Train mode against PyTorchVideo in float64
  (the exact function): < 1e-4, or PyTorchVideo's own float32 error times 2 (native convolutions)
  or 3 (the default lowering, whose Winograd F(4, 3) rounds a little more) where that is larger.

  Normalising 50-152 layers by batch statistics of a small clip amplifies float32 rounding: at
  4x8x64x64 PyTorchVideo's float32 train-mode logits are 0.9e-4 (csn_r101) and 4.7e-4 (ir_csn_152)
  from its float64 ones; jaxres' are 1.3e-4 and 4.0e-4 (measured, native lowering); r2plus1d_r50
  0.83e-4 and 1.68e-4 (default lowering).
  """
  torch_model = _random_torch_model(arch, num_classes=5)
  variables = from_pytorchvideo(torch_model.state_dict(), arch)
  exact = copy.deepcopy(torch_model).double()
  x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
  with torch.no_grad():
    want_eval = torch_model.eval()(_torch_input(arch, x)).numpy()
    torch32_train = torch_model.train()(_torch_input(arch, x)).numpy()  # updates running stats
    want_train = exact.train()(_torch_input(arch, x.double())).numpy()
  got_eval, got_train, stats = _both_modes(arch, 5, lowering)(variables, channels_last(x))
  assert rel_err(got_eval, want_eval) < 1e-4
  tolerance = max(1e-4, (2 if lowering == "native" else 3) * rel_err(torch32_train, want_train))
  assert rel_err(got_train, want_train) < tolerance
  want_stats = dict(
    jax.tree_util.tree_leaves_with_path(from_pytorchvideo(exact.state_dict(), arch)["batch_stats"])
  )
  for path, value in jax.tree_util.tree_leaves_with_path(stats):
    assert rel_err(value, want_stats[path]) < tolerance, jax.tree_util.keystr(path)


# Batch 4 of 8x64x64: every BatchNorm of the last stage still sees 16 or more values per channel.
SHAPE = (4, 3, 8, 64, 64)


# Every model with XLA's native convolutions but ir_csn_152 (csn_r101's blocks, 152 layers deep:
# its conversion is checked by parameter count and key mapping, its blocks by csn_r101), and CSN,
# the network with the most kinds of convolution (depthwise, Winograd, im2col), under the default
# lowering too; each lowering equals native per convolution (tests/test_conv_lowering.py). Whole
# deep networks compile for 10-60 s each, most of it under the default lowering's custom VJPs.
@pytest.mark.slow
@pytest.mark.parametrize(
  "arch,lowering", [(a, "native") for a in ARCHS if a != "ir_csn_152"] + [("csn_r101", None)]
)
def test_eval_and_train_outputs_match_pytorchvideo(arch, lowering):
  # SlowFast: 16 frames for the fast pathway, 4 for the slow one.
  _check_both_modes(arch, lowering, (2, 3, 16, 64, 64) if arch == "slowfast_r50" else SHAPE)


def test_fixed_head_pool_matches_pytorchvideo_where_it_is_not_global():
  """`head_pool` reproduces PyTorchVideo's fixed-kernel head where it differs from a global pool:
  a (2, 2, 2) kernel over c2d_r50's 4x2x2 last feature map averages 3 overlapping windows."""
  arch = "c2d_r50"
  torch_model = _random_torch_model(
    arch, num_classes=5, global_pool=False, head_pool_kernel_size=(2, 2, 2)
  ).eval()
  x = torch.randn(1, 3, 8, 64, 64, generator=torch.Generator().manual_seed(3))
  with torch.no_grad():
    want = torch_model(x).numpy()
  variables = from_pytorchvideo(torch_model.state_dict(), arch)
  model = models.get(arch, num_classes=5, conv_lowering="native", head_pool=(2, 2, 2))
  got_fixed, got_global = jax.jit(
    lambda v, x: (
      model.apply(v, x, train=False),
      model.clone(head_pool=None).apply(v, x, train=False),
    )
  )(variables, channels_last(x))
  assert rel_err(got_fixed, want) < 1e-4
  assert rel_err(got_global, want) > 1e-3  # the global pool differs here


def test_head_pools_are_pytorchvideos():
  assert PYTORCHVIDEO_HEAD_POOL == {
    arch: tuple(_build_torch(arch, 3).blocks[-1].pool.kernel_size)
    for arch in ARCHS
    if arch != "slowfast_r50"
  }


def test_slow_pathway_frames_are_packpathways():
  for frames in range(4, 80):
    for alpha in (2, 4, 8):
      if frames >= alpha:
        want = torch.linspace(0, frames - 1, frames // alpha).long().numpy()
        np.testing.assert_array_equal(slow_frame_indices(frames, alpha), want, f"{frames} {alpha}")
  with pytest.raises(ValueError, match="at least 4 frames"):
    slow_frame_indices(3, 4)


def test_conversion_errors_name_every_offending_key():
  state_dict = _random_torch_model("slow_r50", num_classes=4).state_dict()
  del state_dict["blocks.2.res_blocks.1.branch2.norm_b.running_var"]
  state_dict["blocks.9.res_blocks.0.branch2.conv_a.weight"] = torch.zeros(1)
  state_dict["blocks.5.proj.bias"] = torch.zeros(5)
  state_dict["blocks.1.res_blocks.0.branch2.conv_b.weight"] = torch.zeros(64, 64, 1, 3, 1)
  with pytest.raises(ConversionError) as error:
    from_pytorchvideo(state_dict, "slow_r50")
  message = str(error.value)
  assert "batch_stats/layer2_1/norm_b/var" in message  # missing
  assert "blocks.9.res_blocks.0.branch2.conv_a.weight" in message  # unknown
  assert "blocks.5.proj.bias (5,) -> params/fc/bias (4,)" in message  # shape mismatch
  assert "blocks.1.res_blocks.0.branch2.conv_b.weight (64, 64, 1, 3, 1)" in message


def test_weights_of_another_architecture_or_an_unknown_one_are_refused():
  state_dict = _random_torch_model("c2d_r50", num_classes=4).state_dict()
  with pytest.raises(ConversionError, match="no 'blocks.5.proj.weight'.*PyTorchVideo slow_r50"):
    from_pytorchvideo(state_dict, "slow_r50")  # c2d's head is block 6, its stage 2 block 3
  with pytest.raises(ConversionError, match=r"shape mismatches.*layer3_0/conv_a/kernel \(3, 1, 1"):
    from_pytorchvideo(state_dict, "i3d_r50")  # same layout, I3D's conv_a are 3x1x1
  with pytest.raises(ConversionError, match="convertible: c2d_r50"):
    from_pytorchvideo(state_dict, "x3d_q")
