"""CIFAR-10 ResNet-56 (He et al. 2015): SGD 0.1, momentum 0.9, weight decay 1e-4, batch 128,
64k steps with x0.1 at 32k and 48k; images are 1-frame clips from TFDS "cifar10"."""

from jaxres.train.config import default_config


def get_config():
  c = default_config()
  c.model.name = "resnet56"
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
