"""mmagic's EDSR and IconVSR checkpoints (the catalog's `edsr_baseline.div2k_x4`, `iconvsr.reds4`)
convert to jaxres models that give the reference's numbers.

Offline: BasicSR's network with random weights, its state dict renamed to the names mmagic's own
source gives the same layers (`mmagic/models/editors/edsr/edsr_net.py`,
`.../iconvsr/iconvsr_net.py`, `.../edvr/edvr_net.py`, `.../basicvsr/basicvsr_net.py`), saved as
mmagic saves it (`{"state_dict": {"generator." + key: ...}}`) and read back without torch. The
renaming below is written from mmagic's module structure, not from the converter's rules.
"""

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
from torch_reference import alias_renamed_torchvision_modules, rel_err  # noqa: E402

alias_renamed_torchvision_modules()  # BasicSR 1.4.2 imports torchvision's old module name
pytest.importorskip("basicsr")

import jax  # noqa: E402
from basicsr.archs.basicvsr_arch import IconVSR as TorchIconVSR  # noqa: E402
from basicsr.archs.edsr_arch import EDSR as TorchEDSR  # noqa: E402

from jaxres import convert, models, weights  # noqa: E402

slow = pytest.mark.slow

# mmagic's EDSRNet defaults (and the published config's): DIV2K's RGB mean, std 1.
_RGB_MEAN = (0.4488, 0.4371, 0.4040)


def mmagic_edsr_state_dict(basicsr_state):
  """BasicSR `EDSR` keys -> mmagic `EDSRNet` keys.

  BasicSR's upsampler is one `nn.Sequential` of [conv, PixelShuffle] per x2 stage (conv keys
  `upsample.0`, `upsample.2`); mmagic's `UpsampleModule` is a Sequential of `PixelShufflePack`s,
  each holding its conv as `upsample_conv`. `conv_first`, `body.N.conv{1,2}` (`ResidualBlockNoBN`),
  `conv_after_body` and `conv_last` have the same names in both.
  """
  out = {}
  for key, value in basicsr_state.items():
    m = re.fullmatch(r"upsample\.(\d+)\.(weight|bias)", key)
    if m:
      key = f"upsample.{int(m[1]) // 2}.upsample_conv.{m[2]}"
    out[key] = value
  return out


# BasicSR IconVSR module path -> mmagic IconVSRNet module path (whole-path renames).
_ICONVSR_RENAMES = [
  # SPyNet: BasicSR's basic module is Sequential(conv, ReLU, ..., conv) (convs at 0, 2, ..., 8);
  # mmagic's SPyNetBasicModule is Sequential of 5 ConvModules, each holding `.conv`.
  (
    r"^spynet\.basic_module\.(\d)\.basic_module\.(\d)$",
    lambda m: f"spynet.basic_module.{m[1]}.basic_module.{int(m[2]) // 2}.conv",
  ),
  # EDVRFeatureExtractor: pyramid convs are ConvModules named feat_l{2,3}_conv{1,2}.
  (r"^edvr\.conv_l([23])_([12])$", r"edvr.feat_l\1_conv\2.conv"),
  # PCDAlignment (`pcd_alignment` in mmagic): ConvModules, except the ModulatedDCNPacks.
  (
    r"^edvr\.pcd_align\.(offset_conv[123]|feat_conv)\.(l[123])$",
    r"edvr.pcd_alignment.\1.\2.conv",
  ),
  (r"^edvr\.pcd_align\.(cas_offset_conv[12])$", r"edvr.pcd_alignment.\1.conv"),
  (
    r"^edvr\.pcd_align\.(.+)$",
    r"edvr.pcd_alignment.\1",
  ),  # dcn_pack.lN, cas_dcnpack (+.conv_offset)
  # TSAFusion: ConvModules except temporal_attn{1,2}, spatial_attn5, spatial_attn_add2.
  (
    r"^edvr\.fusion\.(feat_fusion|spatial_attn[1-4]|spatial_attn_l[1-3]|spatial_attn_add1)$",
    r"edvr.fusion.\1.conv",
  ),
  # Propagation branches: ResidualBlocksWithInputConv named *_resblocks.
  (r"^(backward|forward)_trunk\.(.+)$", r"\1_resblocks.\2"),
  # Upsampling: PixelShufflePacks.
  (r"^upconv([12])$", r"upsample\1.upsample_conv"),
]


def mmagic_iconvsr_state_dict(basicsr_state):
  """BasicSR `IconVSR` keys -> mmagic `IconVSRNet` keys (see `_ICONVSR_RENAMES`)."""
  out = {}
  for key, value in basicsr_state.items():
    module, _, leaf = key.rpartition(".")
    for pattern, replacement in _ICONVSR_RENAMES:
      if re.match(pattern, module):
        module = re.sub(pattern, replacement, module)
        break
    out[f"{module}.{leaf}"] = value
  return out


def mmagic_checkpoint(state, *, restorer_buffers=False):
  """A state dict as mmagic saves it: under `state_dict`, every key `generator.`-prefixed; with
  `restorer_buffers`, also mmedit's BasicVSR restorer's `step_counter` (it trains IconVSR too)."""
  out = {f"generator.{k}": v for k, v in state.items()}
  if restorer_buffers:
    out["step_counter"] = torch.zeros(1)
  return {"meta": {"mmedit_version": "0.8.0"}, "state_dict": out}


def _run(arch, checkpoint, x):
  variables = convert.from_basicsr(checkpoint, arch)
  model = models.get(arch, **convert.model_fields(checkpoint, arch))
  nhwc = np.moveaxis(x.numpy(), -3, -1)
  out = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, nhwc)
  return np.moveaxis(np.asarray(out), -1, -3)


def _mmagic_edsr_forward(net, x):
  """mmagic's `EDSRNet.forward` (rgb_std 1) on BasicSR's modules, which are the same layers:
  the mean shift in [0, 1], no scaling to 255."""
  mean = torch.tensor(_RGB_MEAN).view(1, 3, 1, 1)
  x = x - mean
  x = net.conv_first(x)
  res = net.conv_after_body(net.body(x))
  res += x
  return net.conv_last(net.upsample(res)) + mean


@pytest.mark.parametrize("scale", [3, 4])
def test_mmagic_edsr_converts_to_its_network(scale, tmp_path):
  torch.manual_seed(scale)
  reference = TorchEDSR(3, 3, num_feat=16, num_block=2, upscale=scale, img_range=1.0).eval()
  x = torch.rand(1, 3, 12, 10)
  with torch.no_grad():
    expected = _mmagic_edsr_forward(reference, x).numpy()
    np.testing.assert_allclose(reference(x).numpy(), expected, rtol=1e-5, atol=1e-6)
    with_range_255 = TorchEDSR(3, 3, num_feat=16, num_block=2, upscale=scale)
    with_range_255.load_state_dict(reference.state_dict())
    assert rel_err(with_range_255(x).numpy(), expected) > 1e-2  # the field matters
  state = mmagic_edsr_state_dict(reference.state_dict())
  assert "upsample.0.upsample_conv.weight" in state
  torch.save(mmagic_checkpoint(state), tmp_path / "edsr.pth")
  checkpoint = convert.read_torch_checkpoint(tmp_path / "edsr.pth")
  assert convert.model_fields(checkpoint, "edsr_baseline") == {
    "scale": scale,
    "features": 16,
    "num_blocks": 2,
    "img_range": 1.0,
  }
  got = _run("edsr_baseline", checkpoint, x)
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_catalog_entries_build_the_published_networks():
  edsr = weights.get("edsr_baseline.div2k_x4")
  assert edsr.model_kwargs == {"scale": 4, "features": 64, "num_blocks": 16, "img_range": 1.0}
  assert edsr.url.endswith("/edsr/edsr_x4c64b16_1x16_300k_div2k_20200608-3c2af8a3.pth")
  iconvsr = weights.get("iconvsr.reds4")
  assert iconvsr.model_kwargs == {
    "scale": 4,
    "features": 64,
    "num_blocks": 30,
    "temporal_padding": 2,
  }
  assert iconvsr.url.endswith("/iconvsr/iconvsr_reds4_20210413-9e09d621.pth")
  assert iconvsr.metrics == {"reds4_bix4_psnr_rgb": 31.6926, "vid4_bix4_psnr_y": 27.4809}


@slow
def test_mmagic_iconvsr_converts_to_basicsr_iconvsr(tmp_path):
  # mmagic's IconVSRNet fixes EDVR's width at 64 (so its files are all 64 wide); the names do not
  # depend on the width, so 8 keeps this quick.
  torch.manual_seed(11)
  reference = TorchIconVSR(num_feat=8, num_block=1, keyframe_stride=5, temporal_padding=2).eval()
  with torch.no_grad():
    for module in reference.spynet.basic_module:  # flows of a few pixels, not about one
      module.basic_module[8].weight.mul_(10.0)
      module.basic_module[8].bias.normal_(0, 1.0)
    for module in reference.edvr.pcd_align.modules():  # offsets and masks away from zero
      if hasattr(module, "conv_offset"):
        torch.nn.init.normal_(module.conv_offset.weight, 0, 0.05)
        torch.nn.init.normal_(module.conv_offset.bias, 0, 0.5)
  x = torch.rand(1, 5, 3, 34, 38)  # reflect-padded to 36x40 (EDVR's pyramid) and cropped back
  with torch.no_grad():
    expected = reference(x).numpy()
  state = mmagic_iconvsr_state_dict(reference.state_dict())
  for key in (
    "spynet.basic_module.5.basic_module.4.conv.weight",
    "edvr.feat_l3_conv2.conv.bias",
    "edvr.pcd_alignment.offset_conv3.l2.conv.weight",
    "edvr.pcd_alignment.dcn_pack.l1.conv_offset.weight",
    "edvr.pcd_alignment.cas_dcnpack.weight",
    "edvr.fusion.spatial_attn_add1.conv.weight",
    "edvr.fusion.spatial_attn_add2.weight",
    "forward_resblocks.main.2.0.conv2.weight",
    "upsample2.upsample_conv.weight",
  ):
    assert key in state, key
  torch.save(mmagic_checkpoint(state, restorer_buffers=True), tmp_path / "iconvsr.pth")
  checkpoint = convert.read_torch_checkpoint(tmp_path / "iconvsr.pth")
  assert convert.model_fields(checkpoint, "iconvsr") == {
    "features": 8,
    "num_blocks": 1,
    "temporal_padding": 2,
  }
  got = _run("iconvsr", checkpoint, x)
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
