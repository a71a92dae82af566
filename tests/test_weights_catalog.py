"""The shipped weights catalog: every entry is well formed, and its converter reads a checkpoint of
its architecture saved the way the publisher saves it (offline: the reference library's network with
random weights, written in the publisher's file layout, read back without torch).

The fast tier converts one architecture per converter family (the smallest); the slow tier every
entry.
"""

import functools
import re
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxres import models, weights
from jaxres.weights import CONVERTERS

slow = pytest.mark.slow

_NEW_ENTRIES = (
  "c2d_r50.kinetics400",
  "i3d_r50.kinetics400",
  "slow_r50.kinetics400",
  "slowfast_r50.kinetics400",
  "csn_r101.kinetics400",
  "r2plus1d_r50.kinetics400",
  "x3d_xs.kinetics400",
  "x3d_s.kinetics400",
  "x3d_m.kinetics400",
  "x3d_l.kinetics400",
  "tsm_r50.kinetics400",
  "basicvsr.reds4",
  "basicvsr.vimeo90k_bi",
  "basicvsrpp.reds4",
  "basicvsrpp.vimeo90k_bi",
  "edsr_baseline.div2k_x4",
  "iconvsr.reds4",
)
# One entry per converter family, on its smallest architecture (the fast tier).
_FAST = ("resnet18.imagenet1k_v1", "x3d_xs.kinetics400", "tsm_r50.kinetics400", "basicvsr.reds4")


def test_the_catalog_has_the_published_checkpoints():
  assert set(_NEW_ENTRIES) <= set(weights.names())


@pytest.mark.parametrize("name", weights.names())
def test_entry_is_well_formed(name):
  entry = weights.get(name)
  assert entry.name == name and name.split(".")[0] == entry.arch
  assert entry.url.startswith("https://")
  assert re.search(r"\.(pth|pyth)$", entry.file_name), entry.file_name
  assert entry.arch in models.names()
  assert entry.converter in CONVERTERS
  if entry.sha256 is not None:  # the publisher's hash prefix: `NAME-HASH.pth`
    match = re.search(r"-([0-9a-f]{8,64})\.pth$", entry.file_name)
    assert match and match[1] == entry.sha256, (entry.file_name, entry.sha256)
  if "num_classes" in entry.model_kwargs:
    assert len(entry.class_names()) == entry.model_kwargs["num_classes"]
  else:
    assert entry.classes is None and models.spec(entry.arch).task == "super_resolution"
  assert entry.metrics and all(isinstance(v, float) for v in entry.metrics.values())
  assert entry.source.startswith("https://")
  for key in ("num_frames", "frame_stride", "resize", "crop_size", "eval_clips", "eval_crops"):
    assert isinstance(entry.preprocessing.get(key, 1), int)
  if entry.preprocessing.get("eval_crops") is not None:
    assert entry.preprocessing["eval_crops"] in (1, 3)  # what jaxres.data evaluates


def test_preprocessing_and_figures_as_published():
  x3d_l = weights.get("x3d_l.kinetics400")
  assert (x3d_l.preprocessing["num_frames"], x3d_l.preprocessing["frame_stride"]) == (16, 5)
  assert x3d_l.metrics == {"kinetics400_top1": 77.44, "kinetics400_top5": 93.31}
  slowfast = weights.get("slowfast_r50.kinetics400")
  spec = models.spec("slowfast_r50")
  assert (slowfast.preprocessing["num_frames"], slowfast.preprocessing["frame_stride"]) == (
    spec.num_frames,
    spec.frame_stride,
  )
  assert weights.get("tsm_r50.kinetics400").preprocessing["num_frames"] == 8
  assert weights.get("basicvsrpp.reds4").metrics["reds4_bix4_psnr_rgb"] == 32.3855


# --- Reference networks in the publishers' layouts ------------------------------------------------

try:
  import torch
  import torchvision
except ImportError:  # the torch extra is optional: the entries are still checked above
  torch = torchvision = None
else:
  from torch_reference import alias_renamed_torchvision_modules

  alias_renamed_torchvision_modules()  # PyTorchVideo and BasicSR import torchvision's old name
requires_torch = pytest.mark.skipif(torch is None, reason="needs torch and torchvision")


def _mmagic(state_dict):
  """BasicSR's BasicVSR / BasicVSR++ keys under mmagic's names: SPyNet convs in ConvModules,
  `*_trunk` -> `*_resblocks`, `upconv{1,2}` -> `upsample{1,2}.upsample_conv`."""
  renames = [
    (
      r"(spynet\.basic_module\.\d\.basic_module\.)(\d)\.",
      lambda m: f"{m[1]}{int(m[2]) // 2}.conv.",
    ),
    (r"^(backward|forward)_trunk\.", r"\1_resblocks."),
    (r"^upconv(\d)\.", r"upsample\1.upsample_conv."),
  ]
  out = {}
  for key, value in state_dict.items():
    for pattern, replacement in renames:
      key = re.sub(pattern, replacement, key)
    out[f"generator.{key}"] = value
  return {"meta": {}, "state_dict": out}


def _mmaction2_tsm(resnet):
  """A torchvision ResNet-50's weights under MMAction2's ResNetTSM + TSMHead keys (the layout
  `jaxres.convert.mmaction2` documents: ConvModules, the shift wrapping conv1's conv)."""
  out = {}
  for key, value in resnet.state_dict().items():
    new = key
    for old, mm in (
      (r"^conv1\.", "conv1.conv."),
      (r"^bn1\.", "conv1.bn."),
      (r"\.conv1\.", ".conv1.conv.net."),
      (r"\.conv([23])\.", r".conv\1.conv."),
      (r"\.bn(\d)\.", r".conv\1.bn."),
      (r"\.downsample\.0\.", ".downsample.conv."),
      (r"\.downsample\.1\.", ".downsample.bn."),
    ):
      new = re.sub(old, mm, new)
    out["cls_head.fc_cls." + key[3:] if key.startswith("fc.") else "backbone." + new] = value
  return {"meta": {}, "state_dict": out}


def _publisher_checkpoint(entry):
  """The entry's architecture from the reference library (random weights), in the object the
  publisher saves."""
  arch, classes = entry.arch, entry.model_kwargs.get("num_classes")
  if entry.converter == "torchvision":
    video = arch in ("r3d_18", "mc3_18", "r2plus1d_18")
    build = getattr(torchvision.models.video if video else torchvision.models, arch)
    return build(num_classes=classes).state_dict()
  if entry.converter == "pytorchvideo":
    from pytorchvideo.models import hub  # pylint: disable=import-outside-toplevel

    return {"model_state": getattr(hub, arch)(pretrained=False).state_dict()}
  if entry.converter == "mmaction2":
    return _mmaction2_tsm(torchvision.models.resnet50(num_classes=classes))
  assert entry.converter == "basicsr", entry.converter
  kwargs = entry.model_kwargs
  if arch in ("edsr_baseline", "iconvsr"):  # mmagic's EDSRNet / IconVSRNet names
    import test_weights_mmagic as mm  # pylint: disable=import-outside-toplevel
    from basicsr.archs.basicvsr_arch import IconVSR  # pylint: disable=import-outside-toplevel
    from basicsr.archs.edsr_arch import EDSR  # pylint: disable=import-outside-toplevel

    if arch == "edsr_baseline":
      network = EDSR(3, 3, kwargs["features"], kwargs["num_blocks"], upscale=kwargs["scale"])
      return mm.mmagic_checkpoint(mm.mmagic_edsr_state_dict(network.state_dict()))
    network = IconVSR(
      kwargs["features"], kwargs["num_blocks"], temporal_padding=kwargs["temporal_padding"]
    )
    state = mm.mmagic_iconvsr_state_dict(network.state_dict())
    return mm.mmagic_checkpoint(state, restorer_buffers=True)
  if arch == "basicvsr":
    from basicsr.archs.basicvsr_arch import BasicVSR  # pylint: disable=import-outside-toplevel

    network = BasicVSR(num_feat=kwargs["features"], num_block=kwargs["num_blocks"])
  else:
    from basicsr.archs.basicvsrpp_arch import BasicVSRPlusPlus  # pylint: disable=import-outside-toplevel

    # Built as on CUDA machines: on CPU BasicSR leaves the deformable alignment out.
    with mock.patch.object(torch.cuda, "is_available", return_value=True):
      network = BasicVSRPlusPlus(mid_channels=kwargs["features"], num_blocks=kwargs["num_blocks"])
  return _mmagic(network.state_dict())


def _convert(entry, path):
  """What jaxres reads from the file at `path` with the entry's converter."""
  from jaxres import convert  # pylint: disable=import-outside-toplevel

  if entry.converter == "torchvision":
    return convert.from_torchvision(convert.load_torch_state_dict(path), entry.arch)
  if entry.converter == "pytorchvideo":
    return convert.from_pytorchvideo(convert.load_torch_state_dict(path), entry.arch)
  if entry.converter == "mmaction2":
    return convert.from_mmaction2_tsm(convert.read_torch_checkpoint(path))
  return convert.from_basicsr(convert.read_torch_checkpoint(path), entry.arch)


def _expected_shapes(entry):
  """`{path: shape}` of the variables of `models.get(entry.arch, **entry.model_kwargs)`."""
  return _model_shapes(entry.arch, tuple(sorted(entry.model_kwargs.items())))


@functools.lru_cache(maxsize=None)  # entries of one architecture share it
def _model_shapes(arch, model_kwargs):
  spec = models.spec(arch)
  model = models.get(arch, **dict(model_kwargs))
  try:
    shape = spec.default_input_shape()
  except ValueError:  # no default clip (SR, torchvision): a small input of the model's rank
    frames = 5 if arch == "iconvsr" else 2  # IconVSR needs EDVR's window of 5
    shape = (1, frames, 16, 16, 3) if spec.input_rank == 5 else (1, 32, 32, 3)
  variables = jax.eval_shape(
    lambda x: model.init(jax.random.key(0), x, train=False),
    jax.ShapeDtypeStruct(shape, jnp.float32),
  )
  return _shapes(variables)


def _shapes(tree):
  return {
    jax.tree_util.keystr(path): tuple(leaf.shape)
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
  }


def _check_converts(name, tmp_path):
  entry = weights.get(name)
  path = str(tmp_path / entry.file_name)
  torch.manual_seed(0)
  torch.save(_publisher_checkpoint(entry), path)
  converted = _convert(entry, path)
  assert all(isinstance(leaf, np.ndarray) for leaf in jax.tree_util.tree_leaves(converted))
  assert _shapes(converted) == _expected_shapes(entry)


@requires_torch
@pytest.mark.parametrize("name", _FAST)
def test_converter_reads_the_publishers_layout(name, tmp_path):
  converter = weights.get(name).converter
  if converter in ("pytorchvideo", "basicsr"):
    pytest.importorskip(converter)
  _check_converts(name, tmp_path)


@slow
@requires_torch
@pytest.mark.parametrize("name", [n for n in weights.names() if n not in _FAST])
def test_every_entry_converts_from_the_publishers_layout(name, tmp_path):
  converter = weights.get(name).converter
  if converter in ("pytorchvideo", "basicsr"):
    pytest.importorskip(converter)
  _check_converts(name, tmp_path)
