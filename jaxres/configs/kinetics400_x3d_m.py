"""x3d_m on kinetics400 from scratch: the X3D-M recipe of the authors' release.

Values from PySlowFast's `configs/Kinetics/X3D_M.yaml` and its defaults (Feichtenhofer, "X3D:
Expanding Architectures for Efficient Video Recognition", CVPR 2020; 75.94% top-1 in PyTorchVideo's
model zoo, 30 views):
  - 16 frames, sampling rate 5 on a 30 fps grid (`data.target_fps` 6); short side jittered in
    [256, 320] (`resize` 256, `scale_jitter` (1, 1.25)); random 224 crops, flips; mean 0.45,
    std 0.225 per channel.
  - SGD, momentum 0.9, Nesterov, weight decay 5e-5 (none on BatchNorm), learning rate 0.1 per
    batch of 128 (8 GPUs x 16; scaled linearly with `global_batch_size`), half-cosine over 300
    epochs after 35 epochs of linear warm-up; dropout 0.5 before the classifier (the model's
    default).
  - The last BatchNorm of every block starts at zero (RESNET.ZERO_INIT_FINAL_BN;
    `model.zero_init_residual`); precise BatchNorm statistics from 200 training batches before
    each evaluation (BN.USE_PRECISE_STATS, NUM_BATCHES_PRECISE 200; `precise_bn_batches`).
  - Evaluation: 10 clips x 3 crops per video, short side 256 and crops of 256 (its
    TEST_CROP_SIZE for 3 crops; jaxres' global pool takes any size), top-1 and top-5.

Differences: the warm-up starts at 0 (PySlowFast: 0.01); weight decay also skips the SE and
classifier biases (jaxres decays kernels only); BatchNorm statistics (and their precise
re-estimate) are over the global batch, not each GPU's 16 clips; bf16 compute.

  jaxres train --config kinetics400_x3d_m --workdir runs/kinetics400_x3d_m --config.data.path=/data/...
"""

from jaxres.configs.common import VIDEO_DATASETS, default_config


def get_config():
  d = VIDEO_DATASETS["kinetics400"]
  c = default_config()
  c.model.name = "x3d_m"
  c.model.num_classes = d["num_classes"]
  c.model.dtype = "bfloat16"
  c.model.zero_init_residual = True
  c.data.source = "folder"
  c.data.path = d["path"]
  c.data.train_split = d["train_split"]
  c.data.eval_split = d["eval_split"]
  c.data.num_frames = 16
  c.data.target_fps = 6.0  # every 5th frame at 30 fps
  c.data.resize = 256
  c.data.scale_jitter = (1.0, 1.25)
  c.data.crop_size = 224
  c.data.flip = True
  c.data.mean = (0.45, 0.45, 0.45)
  c.data.std = (0.225, 0.225, 0.225)
  c.data.eval_resize = 256  # TEST_CROP_SIZE: the short side and the 3 crops
  c.data.eval_crop_size = 256
  c.data.eval_clips = 10
  c.data.eval_crops = 3
  c.global_batch_size = 128
  steps_per_epoch = d["train_videos"] // c.global_batch_size  # one clip per video per epoch
  c.num_train_steps = 300 * steps_per_epoch
  c.optimizer.learning_rate = 0.1
  c.optimizer.reference_batch_size = 128
  c.optimizer.momentum = 0.9
  c.optimizer.nesterov = True
  c.optimizer.weight_decay = 5e-5
  c.schedule.name = "cosine"
  c.schedule.warmup_steps = 35 * steps_per_epoch
  c.checkpoint.every_steps = steps_per_epoch
  c.checkpoint.best_metric = "video_accuracy"
  c.eval_every_steps = 10 * steps_per_epoch
  c.precise_bn_batches = 200
  c.log_every_steps = 50
  return c
