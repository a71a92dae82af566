"""BasicSR / mmagic `state_dict` -> jaxres variables for the SR networks exact to BasicSR.

BasicSR saves `{"params": state_dict}` (sometimes `params_ema`), mmagic/mmedit
`{"state_dict": ...}` with a `generator.` prefix on every key; both are accepted, as is a bare state
dict. mmagic's own layer names for EDSR, BasicVSR, BasicVSR++ and IconVSR (SPyNet convs and EDVR's
convs inside mmcv ConvModules, `*_resblocks`, `upsample*.upsample_conv`, `pcd_alignment`,
`feat_l{2,3}_conv{1,2}`) map to the same parameters: the networks are the same (checked against
mmagic's source), with one difference that is a model field, not a name: mmagic's `EDSRNet`
subtracts the RGB mean from [0, 1] input and works in that range, BasicSR's `EDSR` scales by
`img_range=255`, so an mmagic EDSR gets `img_range=1.0` from `model_fields`. The rules run through
`jaxres.convert.state_dict.convert_arrays`; torch tensors are read through `.numpy()`, so this
module does not import torch.

Example:
  >>> checkpoint = torch.load("BasicVSR_REDS4.pth", map_location="cpu", weights_only=True)
  >>> variables = from_basicsr(checkpoint, "basicvsr")
  >>> jaxres.models.get("basicvsr").apply(variables, clip, train=False)
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxres import models
from jaxres.convert.state_dict import ConversionError, convert_arrays, to_numpy
from jaxres.models.spynet import SpyNet


def _sequential(m: re.Match, group: int, step: int = 2) -> str:
  return str(int(m[group]) // step)


# torch module path -> jaxres module path. Sub-patterns shared by the networks below.
_SPYNET = [
  (
    r"^spynet\.basic_module\.(\d)\.basic_module\.(\d)$",
    lambda m: f"spynet/basic_module_{m[1]}/conv_{_sequential(m, 2)}",
  )
]
_TRUNK = [
  (r"^([a-z_]+(?:\.[a-z_0-9]+)?)\.main\.0$", lambda m: f"{m[1].replace('.', '_')}/conv_in"),
  (
    r"^([a-z_]+(?:\.[a-z_0-9]+)?)\.main\.2\.(\d+)\.(conv[12])$",
    lambda m: f"{m[1].replace('.', '_')}/block{m[2]}/{m[3]}",
  ),
]
_HEAD = [(r"^(upconv1|upconv2|conv_hr|conv_last)$", r"upsample/\1")]
# mmagic's names for the same layers (BasicVSRNet, BasicVSRPlusPlusNet): SPyNet convs in mmcv
# ConvModules (no separate ReLU entries), trunks called *_resblocks, upconvs in PixelShufflePacks.
_MMAGIC = [
  (r"^spynet\.basic_module\.(\d)\.basic_module\.(\d)\.conv$", r"spynet/basic_module_\1/conv_\2"),
  (r"^(backward|forward)_resblocks\.main\.0$", r"\1_trunk/conv_in"),
  (r"^(backward|forward)_resblocks\.main\.2\.(\d+)\.(conv[12])$", r"\1_trunk/block\2/\3"),
  (r"^upsample([12])\.upsample_conv$", r"upsample/upconv\1"),
]
_RULES = {
  "edsr": [
    (r"^conv_first$", "conv_first"),
    (r"^body\.(\d+)\.(conv[12])$", r"body\1/\2"),
    (r"^conv_after_body$", "conv_after_body"),
    (r"^upsample\.(\d)$", lambda m: f"upsample/conv{_sequential(m, 1)}"),
    # mmagic's EDSRNet: one PixelShufflePack per x2 (or x3) stage, the conv inside it.
    (r"^upsample\.(\d)\.upsample_conv$", r"upsample/conv\1"),
    (r"^conv_last$", "conv_last"),
  ],
  "basicvsr": _MMAGIC + _SPYNET + _TRUNK + _HEAD + [(r"^fusion$", "fusion")],
  "basicvsrpp": _MMAGIC
  + _SPYNET
  + _TRUNK
  + _HEAD
  + [
    (r"^deform_align\.(\w+)$", r"deform_align_\1"),
    (
      r"^deform_align\.(\w+)\.conv_offset\.(\d)$",
      lambda m: f"deform_align_{m[1]}/conv_offset_{_sequential(m, 2)}",
    ),
  ],
}
# mmagic's IconVSRNet: its EDVRFeatureExtractor keeps EDVRNet's names (pyramid convs
# `feat_l{2,3}_conv{1,2}`, `pcd_alignment`) and wraps most convs in mmcv ConvModules (`.conv`);
# TSA's temporal_attn{1,2}, spatial_attn5 and spatial_attn_add2 are plain convs, as in BasicSR.
_MMAGIC_EDVR = [
  (r"^edvr\.feat_l([23])_conv([12])\.conv$", r"edvr/conv_l\1_\2"),
  (
    r"^edvr\.pcd_alignment\.(offset_conv[123]|feat_conv)\.(l[123])\.conv$",
    r"edvr/pcd_align/\1_\2",
  ),
  (r"^edvr\.pcd_alignment\.dcn_pack\.(l[123])$", r"edvr/pcd_align/dcn_pack_\1"),
  (
    r"^edvr\.pcd_alignment\.dcn_pack\.(l[123])\.conv_offset$",
    r"edvr/pcd_align/dcn_pack_\1/conv_offset",
  ),
  (r"^edvr\.pcd_alignment\.(cas_offset_conv[12])\.conv$", r"edvr/pcd_align/\1"),
  (r"^edvr\.pcd_alignment\.cas_dcnpack$", "edvr/pcd_align/cas_dcnpack"),
  (r"^edvr\.pcd_alignment\.cas_dcnpack\.conv_offset$", "edvr/pcd_align/cas_dcnpack/conv_offset"),
  (r"^edvr\.fusion\.(\w+)\.conv$", r"edvr/fusion/\1"),
]
_RULES["iconvsr"] = (
  _MMAGIC
  + _MMAGIC_EDVR
  + [
    (r"^edvr\.(conv_first|conv_l[23]_[12])$", r"edvr/\1"),
    (r"^edvr\.feature_extraction\.(\d+)\.(conv[12])$", r"edvr/feature_extraction\1/\2"),
    (
      r"^edvr\.pcd_align\.(offset_conv[123]|dcn_pack|feat_conv)\.(l[123])$",
      r"edvr/pcd_align/\1_\2",
    ),
    (
      r"^edvr\.pcd_align\.dcn_pack\.(l[123])\.conv_offset$",
      r"edvr/pcd_align/dcn_pack_\1/conv_offset",
    ),
    (r"^edvr\.pcd_align\.(cas_offset_conv[12]|cas_dcnpack)$", r"edvr/pcd_align/\1"),
    (r"^edvr\.pcd_align\.cas_dcnpack\.conv_offset$", "edvr/pcd_align/cas_dcnpack/conv_offset"),
    (r"^edvr\.fusion\.(\w+)$", r"edvr/fusion/\1"),
    (r"^(backward_fusion|forward_fusion)$", r"\1"),
  ]
  + _SPYNET
  + _TRUNK
  + _HEAD
)
# SPyNet alone: BasicSR's pretrained flow weights (spynet_sintel_final-3d2a1287.pth), with which
# BasicSR initialises the video models before training; from_basicsr(..., "spynet") gives the
# subtree for `variables["params"]["spynet"]`.
_RULES["spynet"] = [
  (
    r"^basic_module\.(\d)\.basic_module\.(\d)$",
    lambda m: f"basic_module_{m[1]}/conv_{_sequential(m, 2)}",
  ),
  (r"^basic_module\.(\d)\.basic_module\.(\d)\.conv$", r"basic_module_\1/conv_\2"),
]
_ARCH = {
  "edsr_baseline": "edsr",
  "edsr": "edsr",
  "basicvsr": "basicvsr",
  "basicvsrpp": "basicvsrpp",
  "iconvsr": "iconvsr",
  "spynet": "spynet",
}
ARCHS = tuple(sorted(_ARCH))


def _state_dict(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
  """The state dict inside a BasicSR / mmagic checkpoint, prefixes stripped."""
  for key in ("params", "params_ema", "state_dict"):
    if key in checkpoint and isinstance(checkpoint[key], Mapping):
      checkpoint = checkpoint[key]
      break
  if any(k.startswith("generator.") for k in checkpoint):  # mmagic / mmedit
    # The generator alone: mmedit's BasicVSR restorer (which also trains IconVSR) saves its
    # `step_counter` buffer beside it, GAN restorers a discriminator.
    checkpoint = {
      k[len("generator.") :]: v for k, v in checkpoint.items() if k.startswith("generator.")
    }
  return {k[len("module.") :] if k.startswith("module.") else k: v for k, v in checkpoint.items()}


def _edsr_scale(arrays: Mapping[str, np.ndarray]) -> int:
  ups = sorted(k for k in arrays if re.match(r"^upsample\.\d+(\.upsample_conv)?\.weight$", k))
  if not ups:
    raise ConversionError(
      "The state dict has no 'upsample.0.weight' (BasicSR) or 'upsample.0.upsample_conv.weight' "
      "(mmagic); is it an EDSR?"
    )
  if len(ups) == 2:
    return 4
  ratio = arrays[ups[0]].shape[0] // arrays[ups[0]].shape[1]
  if ratio not in (4, 9):
    raise ConversionError(
      f"EDSR upsampler {ups[0]} has shape {tuple(arrays[ups[0]].shape)}: "
      "not a x2, x3 or x4 pixel-shuffle stage."
    )
  return {4: 2, 9: 3}[ratio]


def _expected(arch: str, arrays: Mapping[str, np.ndarray]) -> Any:
  """The parameter tree (shapes only) of the jaxres model the state dict should fill."""
  family = _ARCH[arch]
  if family == "spynet":
    frames = jax.ShapeDtypeStruct((1, 8, 8, 3), jnp.float32)
    return jax.eval_shape(lambda a: SpyNet().init(jax.random.key(0), a, a), frames)["params"]
  fields = model_fields(arrays, arch)
  model = models.get(arch, **fields)
  frames = 2 * fields.get("temporal_padding", 0) + 1 if family == "iconvsr" else 2
  shape = (1, frames, 8, 8, 3) if family != "edsr" else (1, 8, 8, 3)
  return jax.eval_shape(
    lambda x: model.init(jax.random.key(0), x, train=False),
    jax.ShapeDtypeStruct(shape, jnp.float32),
  )["params"]


def from_basicsr(
  checkpoint: Mapping[str, Any], arch: str, *, dtype: Any = np.float32
) -> dict[str, Any]:
  """Converts a BasicSR (or mmagic) checkpoint of `arch` into jaxres variables.

  Every key must map to a jaxres parameter of the right shape and every jaxres parameter must be
  filled; otherwise a `ConversionError` lists the unknown keys, the missing parameters and the shape
  mismatches by name. Buffers that BasicSR recomputes (SpyNet's `mean`/`std`) are skipped. EDSR's
  width, depth and scale are read from the weights (and mmagic's `img_range` of 1 from its names);
  BasicVSR's, BasicVSR++'s and IconVSR's width and depth too.

  Args:
    checkpoint: `torch.load(path)` of a BasicSR checkpoint (`{"params": ...}`), an mmagic one
      (`{"state_dict": {"generator.…": ...}}`) or a bare state dict; torch tensors or numpy arrays.
    arch: the jaxres model name, one of `ARCHS`; "spynet" for BasicSR's pretrained SPyNet alone.
    dtype: dtype of the returned arrays.

  Returns:
    `{"params": ...}` of numpy arrays, ready for `jaxres.models.get(arch, **fields).apply`, where
    `fields = model_fields(checkpoint, arch)`; for "spynet", the tree to put under
    `variables["params"]["spynet"]` of a video model (as BasicSR starts training from it).

  Example:
    >>> variables = from_basicsr(torch.load("EDSR_Mx4.pth", weights_only=True), "edsr_baseline")
  """
  if arch not in _ARCH:
    raise ConversionError(f"No BasicSR layout known for {arch!r}; convertible: {', '.join(ARCHS)}.")
  family = _ARCH[arch]
  arrays = {
    k: to_numpy(v)
    for k, v in _state_dict(checkpoint).items()
    if not re.search(r"(^|spynet\.)(mean|std)$", k)
  }
  return convert_arrays(
    arrays, {"params": _expected(arch, arrays)}, _RULES[family], arch=arch, dtype=dtype
  )


def model_fields(checkpoint: Mapping[str, Any], arch: str) -> dict[str, Any]:
  """The model fields (scale, width, depth) a BasicSR or mmagic checkpoint of `arch` was built with.

  Args:
    checkpoint: as for `from_basicsr`.
    arch: one of `ARCHS`.

  Returns:
    Keyword arguments for `jaxres.models.get(arch, ...)`, e.g. `{"scale": 4, "features": 64,
    "num_blocks": 16}`; an EDSR in mmagic's names also gets `"img_range": 1.0` (mmagic's EDSRNet
    shifts by the mean in [0, 1] and never scales to 255), without which its output is wrong.

  Example:
    >>> model = jaxres.models.get("edsr", **model_fields(checkpoint, "edsr"))
  """
  if arch not in _ARCH:
    raise ConversionError(f"No BasicSR layout known for {arch!r}; convertible: {', '.join(ARCHS)}.")
  arrays = _state_dict(checkpoint)
  family = _ARCH[arch]

  def count(pattern):
    return len({m[1] for k in arrays for m in [re.match(pattern, k)] if m})

  def width(key):
    if key not in arrays:
      raise ConversionError(f"The state dict has no {key!r}; is it a BasicSR {arch}?")
    return int(arrays[key].shape[0])

  if family == "spynet":
    return {}
  if family == "edsr":
    fields = {
      "scale": _edsr_scale(arrays),
      "features": width("conv_first.weight"),
      "num_blocks": count(r"^body\.(\d+)\.conv1\.weight$"),
    }
    if "upsample.0.upsample_conv.weight" in arrays:  # mmagic's EDSRNet: mean shift in [0, 1]
      fields["img_range"] = 1.0
    return fields
  if family == "basicvsrpp":
    if "deform_align.backward_1.weight" not in arrays:
      raise ConversionError(
        "The state dict has no 'deform_align.*' weights: it is BasicSR's BasicVSRPlusPlus built "
        "without CUDA, which leaves the deformable alignment out (another network); build it "
        "where torch.cuda.is_available() is True (or patch that) and save again."
      )
    return {
      "features": width("feat_extract.main.0.weight"),
      "num_blocks": count(r"^backbone\.backward_1\.main\.2\.(\d+)\.conv1\.weight$"),
    }
  if family == "iconvsr":
    features = width("backward_fusion.weight")
    fusion = next(  # BasicSR's name, then mmagic's (a ConvModule)
      (
        arrays[k]
        for k in ("edvr.fusion.feat_fusion.weight", "edvr.fusion.feat_fusion.conv.weight")
        if k in arrays
      ),
      np.zeros((0, 5 * features)),
    )
    frames = int(fusion.shape[1])
    return {
      "features": features,
      "num_blocks": count(r"^backward_(?:trunk|resblocks)\.main\.2\.(\d+)\.conv1\.weight$"),
      "temporal_padding": (frames // features - 1) // 2,
    }
  return {
    "features": width("fusion.weight"),
    "num_blocks": count(r"^backward_(?:trunk|resblocks)\.main\.2\.(\d+)\.conv1\.weight$"),
  }
