"""The SR networks exact to BasicSR 1.4.2 give BasicSR's numbers (skipped without torch/BasicSR).

Random weights, eval mode, small clips; widths and depths reduced where the full network would be
slow on CPU (the layer structure is the same at every size; full-size parameter counts are checked
in tests/test_sr_models.py). The sampling operations are compared with PyTorch's separately.
"""

import functools
import re
from unittest import mock

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
from torch_reference import alias_renamed_torchvision_modules, rel_err  # noqa: E402

alias_renamed_torchvision_modules()  # BasicSR 1.4.2 imports torchvision's old module name
basicsr = pytest.importorskip("basicsr")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from basicsr.archs.basicvsr_arch import BasicVSR as TorchBasicVSR  # noqa: E402
from basicsr.archs.basicvsr_arch import IconVSR as TorchIconVSR  # noqa: E402
from basicsr.archs.basicvsrpp_arch import BasicVSRPlusPlus as TorchBasicVSRPlusPlus  # noqa: E402
from basicsr.archs.edsr_arch import EDSR as TorchEDSR  # noqa: E402
from basicsr.archs.spynet_arch import SpyNet as TorchSpyNet  # noqa: E402

from jaxres import cli, models  # noqa: E402
from jaxres.convert import ConversionError, from_basicsr, load_variables, model_fields  # noqa: E402
from jaxres.models import sampling  # noqa: E402
from jaxres.models.spynet import SpyNet  # noqa: E402

slow = pytest.mark.slow


def _nhwc(x):
  return np.moveaxis(np.asarray(x), -3, -1)  # [..., C, H, W] -> [..., H, W, C]


def _nchw(x):
  return np.moveaxis(np.asarray(x), -1, -3)


def _run(arch, checkpoint, x):
  """The converted network applied to the channels-last twin of torch input `x`."""
  variables = from_basicsr(checkpoint, arch)
  model = models.get(arch, **model_fields(checkpoint, arch))
  return _nchw(jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, _nhwc(x.numpy())))


@pytest.mark.parametrize("padding", ["zeros", "border"])
def test_flow_warp_matches_grid_sample(padding):
  rng = np.random.default_rng(0)
  x = rng.standard_normal((2, 4, 7, 9)).astype(np.float32)
  flow = (rng.standard_normal((2, 7, 9, 2)) * 4).astype(np.float32)  # many samples leave the frame
  gy, gx = torch.meshgrid(torch.arange(7.0), torch.arange(9.0), indexing="ij")
  grid = torch.stack((gx, gy), 2) + torch.from_numpy(flow)
  grid = torch.stack((2 * grid[..., 0] / 8 - 1, 2 * grid[..., 1] / 6 - 1), 3)
  expected = torch.nn.functional.grid_sample(
    torch.from_numpy(x), grid, mode="bilinear", padding_mode=padding, align_corners=True
  ).numpy()
  got = jax.jit(sampling.flow_warp, static_argnums=2)(_nhwc(x), flow, padding)
  np.testing.assert_allclose(_nchw(got), expected, atol=1e-5)


def test_resize_bilinear_matches_interpolate():
  x = np.random.default_rng(1).standard_normal((2, 3, 7, 9)).astype(np.float32)
  for size in [(14, 36), (3, 4), (7, 9)]:  # up, down, same
    for align_corners in (True, False):
      expected = torch.nn.functional.interpolate(
        torch.from_numpy(x), size=size, mode="bilinear", align_corners=align_corners
      ).numpy()
      got = jax.jit(lambda x: sampling.resize_bilinear(x, size, align_corners=align_corners))(
        _nhwc(x)
      )
      np.testing.assert_allclose(_nchw(got), expected, atol=1e-5)


def test_modulated_deform_conv_matches_torchvision():
  rng = np.random.default_rng(2)
  b, c, h, w, out, groups = 2, 8, 6, 7, 5, 4
  x = rng.standard_normal((b, c, h, w)).astype(np.float32)
  offset = (rng.standard_normal((b, 2 * groups * 9, h, w)) * 3).astype(np.float32)
  mask = rng.uniform(size=(b, groups * 9, h, w)).astype(np.float32)
  weight = rng.standard_normal((out, c, 3, 3)).astype(np.float32)
  bias = rng.standard_normal(out).astype(np.float32)
  expected = torchvision.ops.deform_conv2d(
    *map(torch.from_numpy, (x, offset, weight, bias)), padding=1, mask=torch.from_numpy(mask)
  ).numpy()
  deform_conv = jax.jit(
    functools.partial(sampling.modulated_deform_conv, padding=1, deformable_groups=groups)
  )
  got = deform_conv(_nhwc(x), _nhwc(offset), _nhwc(mask), weight.transpose(2, 3, 1, 0), bias)
  np.testing.assert_allclose(_nchw(got), expected, atol=1e-4)
  # Gradients (what training BasicVSR++ takes) against torchvision's, for a random output gradient.
  dy = rng.standard_normal(expected.shape).astype(np.float32)
  leaves = [torch.from_numpy(a).requires_grad_() for a in (x, offset, mask, weight, bias)]
  torch_out = torchvision.ops.deform_conv2d(
    *leaves[:2], leaves[3], leaves[4], padding=1, mask=leaves[2]
  )
  torch_out.backward(torch.from_numpy(dy))
  _, vjp = jax.vjp(
    deform_conv, _nhwc(x), _nhwc(offset), _nhwc(mask), weight.transpose(2, 3, 1, 0), bias
  )
  grads = vjp(jnp.asarray(_nhwc(dy)))
  for name, ours, leaf in zip(("x", "offset", "mask"), grads[:3], leaves[:3]):
    assert rel_err(_nchw(ours), leaf.grad.numpy()) < 1e-4, name
  assert rel_err(np.asarray(grads[3]).transpose(3, 2, 0, 1), leaves[3].grad.numpy()) < 1e-4
  assert rel_err(grads[4], leaves[4].grad.numpy()) < 1e-4
  with pytest.raises(ValueError, match="offset"):
    sampling.modulated_deform_conv(
      jnp.asarray(_nhwc(x)),
      jnp.zeros((b, h, w, 9)),
      jnp.zeros((b, h, w, 9)),
      jnp.zeros((3, 3, c, out)),
      deformable_groups=groups,
    )


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_edsr_matches_basicsr(scale):
  torch.manual_seed(scale)
  reference = TorchEDSR(3, 3, num_feat=16, num_block=2, upscale=scale, res_scale=0.5).eval()
  x = torch.rand(2, 3, 12, 10)
  with torch.no_grad():
    expected = reference(x).numpy()
  checkpoint = {"params": reference.state_dict()}  # as BasicSR saves it
  assert model_fields(checkpoint, "edsr") == {"scale": scale, "features": 16, "num_blocks": 2}
  variables = from_basicsr(checkpoint, "edsr")
  model = models.get("edsr", **model_fields(checkpoint, "edsr"), res_scale=0.5)
  got = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, _nhwc(x.numpy()))
  assert rel_err(_nchw(got), expected) < 1e-4


def _spynet_with_large_flows(seed):
  """A random SpyNet whose flows reach several pixels (random init alone gives about one)."""
  torch.manual_seed(seed)
  net = TorchSpyNet(load_path=None).eval()
  with torch.no_grad():
    for module in net.basic_module:
      module.basic_module[8].weight.mul_(10.0)
      module.basic_module[8].bias.normal_(0, 1.0)
  return net


def test_spynet_matches_basicsr():
  net = _spynet_with_large_flows(0)
  ref, supp = torch.rand(2, 3, 36, 45), torch.rand(2, 3, 36, 45)  # resized to 64x64 inside
  with torch.no_grad():
    expected = net(ref, supp).numpy()
  assert np.abs(expected).max() > 3 and expected.std(axis=(2, 3)).min() > 0.05  # varies in space
  variables = from_basicsr({"params": net.state_dict()}, "spynet")  # as BasicSR ships SPyNet
  got = jax.jit(SpyNet().apply)(variables, _nhwc(ref.numpy()), _nhwc(supp.numpy()))
  assert rel_err(_nchw(got), expected) < 1e-4


@slow
def test_basicvsr_matches_basicsr():
  torch.manual_seed(3)
  reference = TorchBasicVSR(num_feat=16, num_block=2).eval()
  reference.spynet = _spynet_with_large_flows(4)
  x = torch.rand(1, 3, 3, 40, 48)
  with torch.no_grad():
    expected = reference(x).numpy()
  assert rel_err(_run("basicvsr", reference.state_dict(), x), expected) < 1e-4


def _torch_basicvsrpp(**kwargs):
  """BasicSR's BasicVSR++ as built on CUDA machines (on CPU it leaves the deformable alignment out)."""
  with mock.patch.object(torch.cuda, "is_available", return_value=True):
    return TorchBasicVSRPlusPlus(**kwargs)


def test_basicvsrpp_reference_is_the_cuda_network():
  assert sum(p.numel() for p in _torch_basicvsrpp().parameters()) == 7_322_927
  with mock.patch.object(torch.cuda, "is_available", return_value=False):
    cpu_network = TorchBasicVSRPlusPlus(mid_channels=8, num_blocks=1)
  with pytest.raises(ConversionError, match="without CUDA"):
    from_basicsr(cpu_network.state_dict(), "basicvsrpp")


@slow
def test_basicvsrpp_matches_basicsr():
  torch.manual_seed(5)
  reference = _torch_basicvsrpp(mid_channels=8, num_blocks=1).eval()
  reference.spynet = _spynet_with_large_flows(6)
  with torch.no_grad():  # offset residues and masks away from their zero initialisation
    for branch in reference.deform_align.values():
      torch.nn.init.normal_(branch.conv_offset[6].weight, 0, 0.05)
      torch.nn.init.normal_(branch.conv_offset[6].bias, 0, 0.5)
  x = torch.rand(1, 3, 3, 64, 64)  # 3 frames: the second-order terms take part from the third
  with torch.no_grad():
    expected = reference(x).numpy()
  assert rel_err(_run("basicvsrpp", reference.state_dict(), x), expected) < 1e-4


@slow
def test_iconvsr_matches_basicsr():
  torch.manual_seed(7)
  reference = TorchIconVSR(num_feat=8, num_block=1, keyframe_stride=5, temporal_padding=2).eval()
  reference.spynet = _spynet_with_large_flows(8)
  with torch.no_grad():  # PCD offsets and masks away from their zero initialisation
    for module in reference.edvr.pcd_align.modules():
      if hasattr(module, "conv_offset"):
        torch.nn.init.normal_(module.conv_offset.weight, 0, 0.05)
        torch.nn.init.normal_(module.conv_offset.bias, 0, 0.5)
  # 5 frames (EDVR's window; keyframes 0 and 4); 34x38 is reflect-padded to 36x40 and cropped back.
  x = torch.rand(1, 5, 3, 34, 38)
  with torch.no_grad():
    expected = reference(x).numpy()
  checkpoint = reference.state_dict()
  assert model_fields(checkpoint, "iconvsr") == {
    "features": 8,
    "num_blocks": 1,
    "temporal_padding": 2,
  }
  assert rel_err(_run("iconvsr", checkpoint, x), expected) < 1e-4


def test_conversion_reads_mmagic_checkpoints_and_names_bad_keys():
  reference = TorchEDSR(3, 3, num_feat=8, num_block=1, upscale=2)
  state = reference.state_dict()
  mmagic = {"meta": {}, "state_dict": {f"generator.{k}": v for k, v in state.items()}}
  a = from_basicsr(mmagic, "edsr_baseline")
  b = from_basicsr({"params": state}, "edsr_baseline")
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
    np.testing.assert_array_equal(x, y)
  bad = dict(state)
  bad["extra.weight"] = bad.pop("conv_after_body.weight")
  with pytest.raises(
    ConversionError,
    match=r"unknown keys \(1\): extra\.weight(.|\n)*missing "
    r"parameters \(1\): params/conv_after_body/kernel",
  ):
    from_basicsr(bad, "edsr_baseline")
  # mmagic's BasicVSRNet names (from its source): SPyNet in ConvModules, *_resblocks, PixelShufflePack.
  basicvsr = TorchBasicVSR(num_feat=4, num_block=1).state_dict()
  renames = [
    (r"(basic_module\.\d\.basic_module\.)(\d)\.", lambda m: f"{m[1]}{int(m[2]) // 2}.conv."),
    (r"_trunk\.", "_resblocks."),
    (r"^upconv(\d)\.", r"upsample\1.upsample_conv."),
  ]
  renamed = {}
  for key, value in basicvsr.items():
    for pattern, replacement in renames:
      key = re.sub(pattern, replacement, key)
    renamed[f"generator.{key}"] = value
  assert "generator.spynet.basic_module.0.basic_module.4.conv.weight" in renamed
  a = from_basicsr({"state_dict": renamed}, "basicvsr")
  b = from_basicsr(basicvsr, "basicvsr")
  assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
    np.testing.assert_array_equal(x, y)
  with pytest.raises(ConversionError, match="convertible: .*basicvsr"):
    from_basicsr(state, "r3d_18")
  with pytest.raises(ConversionError, match="fusion.weight"):
    from_basicsr(state, "basicvsr")


def test_convert_command_from_basicsr(tmp_path, capsys):
  reference = TorchEDSR(3, 3, num_feat=8, num_block=1, upscale=3)
  torch.save({"params": reference.state_dict()}, tmp_path / "edsr.pth")
  out = tmp_path / "edsr.msgpack"
  assert (
    cli.main(
      [
        "convert",
        str(tmp_path / "edsr.pth"),
        str(out),
        "--arch",
        "edsr_baseline",
        "--from",
        "basicsr",
      ]
    )
    == 0
  )
  assert "--config.model.scale=3 --config.model.features=8" in capsys.readouterr().out
  loaded = load_variables(str(out))
  expected = from_basicsr({"params": reference.state_dict()}, "edsr_baseline")
  for x, y in zip(jax.tree_util.tree_leaves(loaded), jax.tree_util.tree_leaves(expected)):
    np.testing.assert_array_equal(x, y)
  assert (
    cli.main(
      ["convert", str(tmp_path / "edsr.pth"), str(out), "--arch", "r3d_18", "--from", "basicsr"]
    )
    == 1
  )
  assert "--from basicsr converts" in capsys.readouterr().err
