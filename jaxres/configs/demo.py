"""The demo: r3d_tiny learns motion direction on the built-in generated videos, on a laptop CPU.

`jaxres train` with no arguments runs this config (a few minutes on 2 CPU cores). The data
(`jaxres.data.demo`, written to a cache folder on first use) are 4 classes x 128 videos of a shape
moving right/left/down/up; single frames carry no class information, so only a model that sees
motion can beat chance (25%). The `demo_2d` config trains a per-frame 2D ResNet on the same data.
"""

from jaxres.train.config import default_config


def get_config():
  c = default_config()
  c.model.name = "r3d_tiny"
  c.model.num_classes = 4
  c.data.num_frames = 8
  # 128 videos per class: with the default 32 the tiny training set is memorised (backgrounds,
  # colours) and eval stays at chance; random 32x32 crops of frames resized to 40 (the 64x64 videos
  # at about half size: motion survives, steps are 4x cheaper than at full size).
  c.data.demo.videos_per_class = 128
  c.data.resize = 40
  c.data.crop_size = 32
  c.data.flip = False  # a horizontal flip would turn "left" into "right"
  c.data.shuffle_buffer = 96
  c.global_batch_size = 16
  c.num_train_steps = 300
  c.optimizer.learning_rate = 0.1
  c.optimizer.weight_decay = 5e-4
  c.schedule.warmup_steps = 20
  c.log_every_steps = 10
  c.eval_every_steps = 100
  c.checkpoint.every_steps = 50
  return c
