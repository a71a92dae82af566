"""What the shipped configs are made of: the default config and the recipes several of them share.

Every shipped config (`jaxres/configs/<name>.py`) imports from here and from ml_collections only:
`default_config()` (every key with its default, `jaxres.configs.defaults`), the torchvision video
recipe, He et al.'s CIFAR-10 recipe and the super-resolution base whose one `scale` the model, the
task and the paired LR frames share. Your own config files can start from them the same way.

Example:
  >>> from jaxres.configs.common import torchvision_video_recipe
  >>> def get_config():
  ...   c = torchvision_video_recipe("r2plus1d_18", "ucf101")
  ...   c.data.path = "/data/UCF-101"
  ...   return c
"""

from __future__ import annotations

from typing import Any, Mapping

import ml_collections

from jaxres.configs.defaults import default_config, default_data_config

__all__ = [
  "VIDEO_DATASETS",
  "cifar10_recipe",
  "default_config",
  "default_data_config",
  "set_sr_model",
  "super_resolution_recipe",
  "torchvision_video_recipe",
]


# The datasets of the video recipes: classes, training videos (the recipes count epochs in steps),
# and placeholder paths and split files to set to where the data are.
VIDEO_DATASETS = {
  "ucf101": {
    "num_classes": 101,
    "train_videos": 9537,
    "path": "/data/UCF-101",
    "train_split": "ucfTrainTestlist/trainlist01.txt",
    "eval_split": "ucfTrainTestlist/testlist01.txt",
  },
  "kinetics400": {
    "num_classes": 400,
    "train_videos": 240436,
    "path": "/data/kinetics400",
    "train_split": "train.csv",
    "eval_split": "val.csv",
  },
}


def torchvision_video_recipe(model: str, dataset: str) -> ml_collections.ConfigDict:
  """The torchvision `references/video_classification` recipe for a video ResNet on a dataset.

  16 frames at 15 fps, short side resized to 128, random 112 crops and flips; SGD momentum 0.9,
  weight decay 1e-4, learning rate 0.08 for a global batch of 192 (8 GPUs x 24; scaled linearly
  with `global_batch_size`), 45 epochs of 5 clips per video, 10 epochs of linear warm-up, x0.1 at
  epochs 20, 30, 40; bf16 compute; video accuracy from 5 clips per video at eval, each resized to
  short side 128 and centre-cropped to 112 (the reference's `Resize((128, 171))`,
  `CenterCrop(112)`). No precise BatchNorm statistics and no zero-initialised residual BatchNorm:
  the reference uses neither.

  Args:
    model: "r3d_18", "mc3_18" or "r2plus1d_18".
    dataset: "ucf101" or "kinetics400" (`data.path` and the split files are placeholders to set).

  Returns:
    The config.

  Example:
    >>> config = torchvision_video_recipe("r2plus1d_18", "kinetics400")
  """
  d = VIDEO_DATASETS[dataset]
  c = default_config()
  c.model.name = model
  c.model.num_classes = d["num_classes"]
  c.model.dtype = "bfloat16"
  c.data.source = "folder"
  c.data.path = d["path"]
  c.data.train_split = d["train_split"]
  c.data.eval_split = d["eval_split"]
  c.data.num_frames = 16
  c.data.target_fps = 15.0
  c.data.resize = 128
  c.data.crop_size = 112
  c.data.eval_resize = 128
  c.data.eval_crop_size = 112
  c.data.eval_clips = 5
  c.global_batch_size = 192
  steps_per_epoch = d["train_videos"] * 5 // c.global_batch_size
  c.num_train_steps = 45 * steps_per_epoch
  c.optimizer.learning_rate = 0.08
  c.optimizer.reference_batch_size = 192
  c.optimizer.weight_decay = 1e-4
  c.schedule.name = "step"
  c.schedule.warmup_steps = 10 * steps_per_epoch
  c.schedule.boundaries = tuple(e * steps_per_epoch for e in (20, 30, 40))
  c.checkpoint.every_steps = steps_per_epoch
  c.checkpoint.best_metric = "video_accuracy"
  c.eval_every_steps = 5 * steps_per_epoch
  c.log_every_steps = 50
  return c


def cifar10_recipe(model: str) -> ml_collections.ConfigDict:
  """He et al. (2015)'s CIFAR-10 recipe for a CIFAR ResNet (`resnet20` ... `resnet110`).

  SGD 0.1, momentum 0.9, weight decay 1e-4, batch 128, 64k steps with x0.1 at 32k and 48k;
  images are 1-frame clips from TFDS "cifar10".

  Args:
    model: the registry name of the network.

  Returns:
    The config.

  Example:
    >>> config = cifar10_recipe("resnet56")
  """
  c = default_config()
  c.model.name = model
  c.model.num_classes = 10
  c.data.source = "tfds"
  c.data.tfds_name = "cifar10"
  c.data.tfds_video_key = "image"
  c.data.eval_split = "test"
  c.data.train_split = "train"
  c.data.num_frames = 1
  c.data.resize = 32
  c.data.crop_size = 32
  c.data.mean = (0.4914, 0.4822, 0.4465)
  c.data.std = (0.2470, 0.2435, 0.2616)
  c.global_batch_size = 128
  c.num_train_steps = 64_000
  c.optimizer.learning_rate = 0.1
  c.optimizer.weight_decay = 1e-4
  c.schedule.name = "step"
  c.schedule.boundaries = (32_000, 48_000)
  c.checkpoint.every_steps = 2_000
  c.eval_every_steps = 2_000
  c.log_every_steps = 100
  return c


def super_resolution_recipe(
  model: Mapping[str, Any], task: Mapping[str, Any], scale: int
) -> ml_collections.ConfigDict:
  """The default config set up for super-resolution at `scale`, with `model` and `task` arguments.

  The scale is held once: `model.scale` is the source, and `task.scale` and `data.lr_scale` (the
  factor of paired LR frames) are the same `FieldReference`, so `--config.model.scale=4` moves all
  three. Frames stay in [0, 1] (`data.mean` 0, `data.std` 1), as super-resolution needs.

  Args:
    model: the model's `name` and constructor arguments, without `scale`.
    task: the super-resolution task's arguments (`loss`, `blur_sigma`, ...), without `scale`.
    scale: the SR factor.

  Returns:
    The config (unlocked).

  Example:
    >>> c = super_resolution_recipe({"name": "basicvsr", "dtype": "float32"},
    ...                             {"loss": "charbonnier"}, scale=4)
    >>> c.model.scale = 2; (c.task.scale, c.data.lr_scale)
    (2, 2)
  """
  if "scale" in task:
    raise ValueError(
      "The SR scale is the config's own (config.model.scale); leave it out of `task`."
    )
  c = default_config()
  shared = ml_collections.FieldReference(scale)
  c.task = ml_collections.ConfigDict(dict(task, scale=shared))
  c.data.lr_scale = shared
  c.data.mean, c.data.std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)  # frames in [0, 1]
  set_sr_model(c, model)  # model.scale: the same reference
  return c


def set_sr_model(config: ml_collections.ConfigDict, model: Mapping[str, Any]) -> None:
  """Replaces `config.model` of a `super_resolution_recipe` config, keeping its one scale.

  Args:
    config: a config from `super_resolution_recipe` (changed in place).
    model: the new model's `name` and constructor arguments, without `scale`.

  Example:
    >>> set_sr_model(c, {"name": "recurrent_vsr", "num_blocks": 2, "features": 24})
  """
  if "scale" in model:
    raise ValueError(
      "The SR scale is the config's own (config.model.scale); leave it out of `model`."
    )
  config.model = ml_collections.ConfigDict(dict(model, scale=config.task.get_ref("scale")))
