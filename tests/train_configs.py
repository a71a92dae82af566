"""Config files for the tests that run the `jaxres train` command in subprocesses."""

# A small run on synthetic data: r3d_tiny, 4 classes, 4x16x16 clips, batch 8 on 2 devices,
# 16 steps, a checkpoint every 2 steps (the newest 2 kept), metrics every step, no evaluation and
# no plots or TensorBoard. The checkpoint tests interrupt and resume it; the two-process test runs
# it on a two-process mesh and on one process.
SYNTHETIC_TRAIN_CONFIG = """
from jaxres.train.config import default_config

def get_config():
  c = default_config()
  c.model.num_classes = 4
  c.data.num_frames, c.data.resize, c.data.crop_size = 4, 16, 16
  c.synthetic_data = True
  c.global_batch_size = 8
  c.num_train_steps = 16
  c.optimizer.learning_rate = 0.05
  c.parallel.num_devices = 2
  c.checkpoint.every_steps = 2
  c.checkpoint.keep = 2
  c.checkpoint.keep_best = 0
  c.eval_every_steps = 0
  c.eval_steps = 1
  c.log_every_steps = 1
  c.progress_bar = False
  c.tensorboard = False
  c.plot = False
  return c
"""
