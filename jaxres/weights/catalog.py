"""The published checkpoints jaxres knows by name (`jaxres weights list`).

Each entry is data: the publisher's URL and hash, the jaxres model and converter, and the
preprocessing and figures the publisher gives. Figures are top-1 / top-5 accuracy (%) on the
validation set for classifiers and PSNR (dB) for super-resolution, as published at `source`.
"""

from __future__ import annotations

from jaxres.weights import registry

# torchvision's video models: Kinetics-400, 16-frame clips resized to 128x171 and centre-cropped
# to 112 (`R3D_18_Weights.KINETICS400_V1.transforms()`); figures are video-level (5 clips).
_TORCHVISION_VIDEO = {
  "num_frames": 16,
  "frame_stride": 1,
  "resize": 128,
  "crop_size": 112,
  "mean": (0.43216, 0.394666, 0.37645),
  "std": (0.22803, 0.22145, 0.216989),
  "eval_clips": 5,
  "eval_crops": 1,
}
_TORCHVISION_VIDEO_SOURCE = (
  "https://github.com/pytorch/vision/tree/main/references/video_classification"
)
# torchvision's ImageNet models: resize to 256 (232 for the V2 recipe), centre crop 224.
_IMAGENET = {"crop_size": 224, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
_IMAGENET_V1_SOURCE = "https://github.com/pytorch/vision/tree/main/references/classification#resnet"
_IMAGENET_V2_SOURCE = "https://github.com/pytorch/vision/issues/3995#new-recipe"


def _torchvision() -> None:
  for arch, file, top1, top5 in (
    ("r3d_18", "r3d_18-b3b3357e.pth", 63.2, 83.479),
    ("mc3_18", "mc3_18-a90a0ba3.pth", 63.96, 84.13),
    ("r2plus1d_18", "r2plus1d_18-91a641e6.pth", 67.463, 86.175),
  ):
    registry.register(
      f"{arch}.kinetics400",
      url=f"https://download.pytorch.org/models/{file}",
      arch=arch,
      converter="torchvision",
      sha256=file.rsplit("-", 1)[1][:-4],
      model_kwargs={"num_classes": 400},
      classes="kinetics400",
      preprocessing=_TORCHVISION_VIDEO,
      metrics={"kinetics400_top1": top1, "kinetics400_top5": top5},
      source=_TORCHVISION_VIDEO_SOURCE,
      overwrite=True,
    )
  for arch, tag, file, resize, top1, top5, source in (
    (
      "resnet18",
      "imagenet1k_v1",
      "resnet18-f37072fd.pth",
      256,
      69.758,
      89.078,
      _IMAGENET_V1_SOURCE,
    ),
    ("resnet34", "imagenet1k_v1", "resnet34-b627a593.pth", 256, 73.314, 91.42, _IMAGENET_V1_SOURCE),
    ("resnet50", "imagenet1k_v1", "resnet50-0676ba61.pth", 256, 76.13, 92.862, _IMAGENET_V1_SOURCE),
    (
      "resnet50",
      "imagenet1k_v2",
      "resnet50-11ad3fa6.pth",
      232,
      80.858,
      95.434,
      _IMAGENET_V2_SOURCE,
    ),
    (
      "resnet101",
      "imagenet1k_v1",
      "resnet101-63fe2227.pth",
      256,
      77.374,
      93.546,
      _IMAGENET_V1_SOURCE,
    ),
    (
      "resnet101",
      "imagenet1k_v2",
      "resnet101-cd907fc2.pth",
      232,
      81.886,
      95.78,
      _IMAGENET_V2_SOURCE,
    ),
    (
      "resnet152",
      "imagenet1k_v1",
      "resnet152-394f9c45.pth",
      256,
      78.312,
      94.046,
      _IMAGENET_V1_SOURCE,
    ),
    (
      "resnet152",
      "imagenet1k_v2",
      "resnet152-f82ba261.pth",
      232,
      82.284,
      96.002,
      _IMAGENET_V2_SOURCE,
    ),
  ):
    registry.register(
      f"{arch}.{tag}",
      url=f"https://download.pytorch.org/models/{file}",
      arch=arch,
      converter="torchvision",
      sha256=file.rsplit("-", 1)[1][:-4],
      model_kwargs={"num_classes": 1000},
      classes="imagenet1k",
      preprocessing={**_IMAGENET, "resize": resize},
      metrics={"imagenet1k_top1": top1, "imagenet1k_top5": top5},
      source=source,
      overwrite=True,
    )


# PyTorchVideo's model zoo (Kinetics-400), figures at 3 crops x 10 clips. The files are the ones
# `pytorchvideo.models.hub` loads (`checkpoint_paths`); no hash is published. Clips as evaluated:
# the zoo's benchmarks ran in PySlowFast with its `configs/Kinetics/pytorchvideo/*.yaml`
# (`DATA.NUM_FRAMES` x `SAMPLING_RATE`; the test short side is `TRAIN_JITTER_SCALES[0]` and the
# 3 crops `TEST_CROP_SIZE`); PyTorchVideo's torch hub tutorial uses the same sizes
# (256/256; 182/182 for X3D-XS and S) with mean 0.45 and std 0.225.
_PYTORCHVIDEO_ROOT = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics"
_PYTORCHVIDEO_SOURCE = (
  "https://github.com/facebookresearch/pytorchvideo/blob/main/docs/source/model_zoo.md"
)
_PYTORCHVIDEO_VIDEO = {
  "mean": (0.45, 0.45, 0.45),
  "std": (0.225, 0.225, 0.225),
  "eval_clips": 10,
  "eval_crops": 3,
}


def _pytorchvideo() -> None:
  for arch, file, frames, stride, side, crop, top1, top5 in (
    ("c2d_r50", "C2D_8x8_R50.pyth", 8, 8, 256, 256, 71.46, 89.68),
    ("i3d_r50", "I3D_8x8_R50.pyth", 8, 8, 256, 256, 73.27, 90.70),
    ("slow_r50", "SLOW_8x8_R50.pyth", 8, 8, 256, 256, 74.58, 91.63),
    # The fast pathway's 32 frames at stride 2 (the slow pathway takes every 4th of them).
    ("slowfast_r50", "SLOWFAST_8x8_R50.pyth", 32, 2, 256, 256, 76.94, 92.69),
    ("csn_r101", "CSN_32x2_R101.pyth", 32, 2, 256, 256, 77.00, 92.90),
    ("r2plus1d_r50", "R2PLUS1D_16x4_R50.pyth", 16, 4, 256, 256, 76.01, 92.23),
    ("x3d_xs", "X3D_XS.pyth", 4, 12, 182, 182, 69.12, 88.63),
    ("x3d_s", "X3D_S.pyth", 13, 6, 182, 182, 73.33, 91.27),
    ("x3d_m", "X3D_M.pyth", 16, 5, 256, 256, 75.94, 92.72),
    # X3D-L is not in the hub tutorial; its PySlowFast config (X3D_L.yaml) tests at 356/356.
    ("x3d_l", "X3D_L.pyth", 16, 5, 356, 356, 77.44, 93.31),
  ):
    registry.register(
      f"{arch}.kinetics400",
      url=f"{_PYTORCHVIDEO_ROOT}/{file}",
      arch=arch,
      converter="pytorchvideo",
      sha256=None,
      model_kwargs={"num_classes": 400},
      classes="kinetics400",
      preprocessing={
        **_PYTORCHVIDEO_VIDEO,
        "num_frames": frames,
        "frame_stride": stride,
        "resize": side,
        "crop_size": crop,
      },
      metrics={"kinetics400_top1": top1, "kinetics400_top5": top5},
      source=_PYTORCHVIDEO_SOURCE,
      overwrite=True,
    )


def _mmaction2() -> None:
  # MMAction2 1.x, tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb: 8 segments (one
  # frame each, spread evenly over the video, so no fixed frame stride), short side 256, ImageNet
  # mean/std (MMAction2 gives them in [0, 255] units: 123.675/58.395, ...). Its figures use
  # TenCrop(224) ("8 clips x 10 crop"); jaxres evaluates 1 or 3 crops, 3 is the nearest.
  file = "tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb_20220831-64d69186.pth"
  registry.register(
    "tsm_r50.kinetics400",
    url=(
      "https://download.openmmlab.com/mmaction/v1.0/recognition/tsm/"
      f"tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb/{file}"
    ),
    arch="tsm_r50",
    converter="mmaction2",
    sha256=_hash_prefix(file),
    model_kwargs={"num_classes": 400},
    classes="kinetics400",
    preprocessing={
      "num_frames": 8,
      "resize": 256,
      "crop_size": 224,
      "mean": (0.485, 0.456, 0.406),
      "std": (0.229, 0.224, 0.225),
      "eval_clips": 1,
      "eval_crops": 3,
    },
    metrics={"kinetics400_top1": 73.18, "kinetics400_top5": 90.56},
    source="https://github.com/open-mmlab/mmaction2/blob/main/configs/recognition/tsm/README.md",
    overwrite=True,
  )


# mmagic's SR checkpoints (x4, frames in [0, 1] RGB), from its metafiles: for the video models
# REDS4 PSNR on RGB and Vid4 (bicubic-downsampled) PSNR on Y. The layout is mmagic's (`generator.`
# prefix, its own SPyNet, EDVR and upsampler names), read by the "basicsr" converter.
_MMAGIC_ROOT = "https://download.openmmlab.com/mmediting/restorers"
_SR_PREPROCESSING = {"input_range": (0, 1)}


def _super_resolution() -> None:
  for name, arch, folder, file, kwargs, reds4, vid4, readme in (
    (
      "basicvsr.reds4",
      "basicvsr",
      "basicvsr",
      "basicvsr_reds4_20120409-0e599677.pth",
      {"features": 64, "num_blocks": 30},
      31.417,
      27.2694,
      "basicvsr",
    ),
    (
      "basicvsr.vimeo90k_bi",
      "basicvsr",
      "basicvsr",
      "basicvsr_vimeo90k_bi_20210409-d2d8f760.pth",
      {"features": 64, "num_blocks": 30},
      30.3128,
      27.2755,
      "basicvsr",
    ),
    (
      "iconvsr.reds4",
      "iconvsr",
      "iconvsr",
      "iconvsr_reds4_20210413-9e09d621.pth",
      {"features": 64, "num_blocks": 30, "temporal_padding": 2},
      31.6926,
      27.4809,
      "iconvsr",
    ),
    (
      "basicvsrpp.reds4",
      "basicvsrpp",
      "basicvsr_plusplus",
      "basicvsr_plusplus_c64n7_8x1_600k_reds4_20210217-db622b2f.pth",
      {"features": 64, "num_blocks": 7},
      32.3855,
      27.7674,
      "basicvsr_pp",
    ),
    (
      "basicvsrpp.vimeo90k_bi",
      "basicvsrpp",
      "basicvsr_plusplus",
      "basicvsr_plusplus_c64n7_8x1_300k_vimeo90k_bi_20210305-4ef437e2.pth",
      {"features": 64, "num_blocks": 7},
      31.0126,
      27.7882,
      "basicvsr_pp",
    ),
  ):
    registry.register(
      name,
      url=f"{_MMAGIC_ROOT}/{folder}/{file}",
      arch=arch,
      converter="basicsr",
      sha256=_hash_prefix(file),
      model_kwargs={"scale": 4, **kwargs},
      classes=None,
      preprocessing=_SR_PREPROCESSING,
      metrics={"reds4_bix4_psnr_rgb": reds4, "vid4_bix4_psnr_y": vid4},
      source=f"https://github.com/open-mmlab/mmagic/blob/main/configs/{readme}/README.md",
      overwrite=True,
    )
  # mmagic's EDSR (16 blocks of 64, x4, DIV2K; configs/edsr/edsr_x4c64b16_1xb16-300k_div2k.py):
  # its EDSRNet shifts [0, 1] input by the DIV2K mean (std 1) and never scales to 255, which is
  # BasicSR's EDSR with img_range=1, hence the field. PSNR on RGB, `scale` border pixels cropped.
  file = "edsr_x4c64b16_1x16_300k_div2k_20200608-3c2af8a3.pth"
  registry.register(
    "edsr_baseline.div2k_x4",
    url=f"{_MMAGIC_ROOT}/edsr/{file}",
    arch="edsr_baseline",
    converter="basicsr",
    sha256=_hash_prefix(file),
    model_kwargs={"scale": 4, "features": 64, "num_blocks": 16, "img_range": 1.0},
    classes=None,
    preprocessing=_SR_PREPROCESSING,
    metrics={
      "set5_bix4_psnr_rgb": 30.2223,
      "set14_bix4_psnr_rgb": 26.787,
      "div2k_bix4_psnr_rgb": 28.9675,
    },
    source="https://github.com/open-mmlab/mmagic/blob/main/configs/edsr/README.md",
    overwrite=True,
  )


def _hash_prefix(file: str) -> str:
  """The hash in a file name `NAME-HASH.pth` (torchvision's, mmagic's and MMAction2's convention)."""
  return file.rsplit("-", 1)[1].split(".", 1)[0]


_REGISTERED = False


def register_all() -> None:
  """Registers the shipped entries (once; `jaxres.weights.get` and `names` call it)."""
  global _REGISTERED
  if _REGISTERED:
    return
  _REGISTERED = True
  _torchvision()
  _pytorchvideo()
  _mmaction2()
  _super_resolution()
