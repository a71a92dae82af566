"""csn_r101 on Kinetics-400: PyTorchVideo's CSN_32x2_R101 recipe (PySlowFast
`configs/Kinetics/pytorchvideo/CSN_32x2_R101.yaml`, the model zoo's 77.00 top-1 at 3 x 10 views).

The recipe's values: clips of 32 frames at sampling rate 2; short side jittered in [256, 320], random
224 crops and flips; mean 0.45 and std 0.225 on every channel; SGD momentum 0.9, weight decay 1e-4,
learning rate 0.1 for a batch of 64 (8 GPUs x 8; scaled linearly with `global_batch_size` here, as
its BASE_LR_SCALE_NUM_SHARDS does per node), half-period cosine over 196 epochs after 34 epochs of
linear warm-up; dropout 0.5 before the classifier; the last BatchNorm of every block starts at
zero (ZERO_INIT_FINAL_BN; `model.zero_init_residual`, PyTorchVideo's default); precise BatchNorm
statistics from 200 training batches before each evaluation (BN.USE_PRECISE_STATS,
NUM_BATCHES_PRECISE 200; `precise_bn_batches`). Evaluation: 10 clips x 3 crops per
video, short side 256 and crops of 256 (its TEST_CROP_SIZE), top-1 and top-5.

Where jaxres differs: warm-up starts from 0 (the recipe: from 0.01); BatchNorm statistics (and
their precise re-estimate) are over the global batch, not each GPU's 8 clips; bfloat16 compute, as
jaxres' other Kinetics recipes.

Set data.path (and the split files) to where the dataset is, e.g.
  jaxres train --config kinetics400_csn_r101 --workdir runs/csn --config.data.path=/data/...
"""

from jaxres.configs.common import VIDEO_DATASETS, default_config


def get_config():
  d = VIDEO_DATASETS["kinetics400"]
  c = default_config()
  c.model.name = "csn_r101"
  c.model.num_classes = d["num_classes"]
  c.model.dtype = "bfloat16"
  c.model.dropout_rate = 0.5
  c.model.zero_init_residual = True
  c.data.source = "folder"
  c.data.path = d["path"]
  c.data.train_split = d["train_split"]
  c.data.eval_split = d["eval_split"]
  c.data.num_frames = 32
  c.data.frame_stride = 2
  c.data.resize = 256
  c.data.scale_jitter = (1.0, 1.25)  # short side 256-320
  c.data.crop_size = 224
  c.data.flip = True
  c.data.mean = (0.45, 0.45, 0.45)
  c.data.std = (0.225, 0.225, 0.225)
  c.data.eval_resize = 256  # TEST_CROP_SIZE: the short side and the 3 crops
  c.data.eval_crop_size = 256
  c.data.eval_clips = 10
  c.data.eval_crops = 3
  c.global_batch_size = 64
  steps_per_epoch = d["train_videos"] // c.global_batch_size  # one clip per video per epoch
  c.num_train_steps = 196 * steps_per_epoch
  c.optimizer.name = "sgd"
  c.optimizer.learning_rate = 0.1
  c.optimizer.reference_batch_size = 64
  c.optimizer.momentum = 0.9
  c.optimizer.weight_decay = 1e-4
  c.schedule.name = "cosine"
  c.schedule.warmup_steps = 34 * steps_per_epoch
  c.checkpoint.every_steps = steps_per_epoch
  c.checkpoint.best_metric = "video_accuracy"
  c.eval_every_steps = 10 * steps_per_epoch
  c.precise_bn_batches = 200
  c.log_every_steps = 50
  return c
