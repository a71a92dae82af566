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
    "num_frames": 16, "frame_stride": 1, "resize": 128, "crop_size": 112,
    "mean": (0.43216, 0.394666, 0.37645), "std": (0.22803, 0.22145, 0.216989),
    "eval_clips": 5, "eval_crops": 1}
_TORCHVISION_VIDEO_SOURCE = ("https://github.com/pytorch/vision/tree/main/references/"
                             "video_classification")
# torchvision's ImageNet models: resize to 256 (232 for the V2 recipe), centre crop 224.
_IMAGENET = {"crop_size": 224, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
_IMAGENET_V1_SOURCE = "https://github.com/pytorch/vision/tree/main/references/classification#resnet"
_IMAGENET_V2_SOURCE = "https://github.com/pytorch/vision/issues/3995#new-recipe"


def _torchvision() -> None:
  for arch, file, top1, top5 in (("r3d_18", "r3d_18-b3b3357e.pth", 63.2, 83.479),
                                 ("mc3_18", "mc3_18-a90a0ba3.pth", 63.96, 84.13),
                                 ("r2plus1d_18", "r2plus1d_18-91a641e6.pth", 67.463, 86.175)):
    registry.register(
        f"{arch}.kinetics400", url=f"https://download.pytorch.org/models/{file}", arch=arch,
        converter="torchvision", sha256=file.rsplit("-", 1)[1][:-4],
        model_kwargs={"num_classes": 400}, classes="kinetics400",
        preprocessing=_TORCHVISION_VIDEO,
        metrics={"kinetics400_top1": top1, "kinetics400_top5": top5},
        source=_TORCHVISION_VIDEO_SOURCE, overwrite=True)
  for arch, tag, file, resize, top1, top5, source in (
      ("resnet18", "imagenet1k_v1", "resnet18-f37072fd.pth", 256, 69.758, 89.078,
       _IMAGENET_V1_SOURCE),
      ("resnet34", "imagenet1k_v1", "resnet34-b627a593.pth", 256, 73.314, 91.42,
       _IMAGENET_V1_SOURCE),
      ("resnet50", "imagenet1k_v1", "resnet50-0676ba61.pth", 256, 76.13, 92.862,
       _IMAGENET_V1_SOURCE),
      ("resnet50", "imagenet1k_v2", "resnet50-11ad3fa6.pth", 232, 80.858, 95.434,
       _IMAGENET_V2_SOURCE),
      ("resnet101", "imagenet1k_v1", "resnet101-63fe2227.pth", 256, 77.374, 93.546,
       _IMAGENET_V1_SOURCE),
      ("resnet101", "imagenet1k_v2", "resnet101-cd907fc2.pth", 232, 81.886, 95.78,
       _IMAGENET_V2_SOURCE),
      ("resnet152", "imagenet1k_v1", "resnet152-394f9c45.pth", 256, 78.312, 94.046,
       _IMAGENET_V1_SOURCE),
      ("resnet152", "imagenet1k_v2", "resnet152-f82ba261.pth", 232, 82.284, 96.002,
       _IMAGENET_V2_SOURCE)):
    registry.register(
        f"{arch}.{tag}", url=f"https://download.pytorch.org/models/{file}", arch=arch,
        converter="torchvision", sha256=file.rsplit("-", 1)[1][:-4],
        model_kwargs={"num_classes": 1000}, classes="imagenet1k",
        preprocessing={**_IMAGENET, "resize": resize},
        metrics={"imagenet1k_top1": top1, "imagenet1k_top5": top5}, source=source,
        overwrite=True)


_REGISTERED = False


def register_all() -> None:
  """Registers the shipped entries (once; `jaxres.weights.get` and `names` call it)."""
  global _REGISTERED
  if _REGISTERED:
    return
  _REGISTERED = True
  _torchvision()
