"""The published evaluation protocol: top-5 beside top-1 accuracy, per clip and per video, and eval
views at their own short side and crop (`data.eval_resize`, `data.eval_crop_size`)."""

import os

import numpy as np
import pytest

from jaxres import predict
from jaxres.configs.defaults import default_data_config
from jaxres.data import config as config_lib
from jaxres.data import pipeline, views
from jaxres.data.tfhost import tf
from jaxres.data.video import write_video
from jaxres.tasks import make_task
from jaxres.tasks.classification import in_top_k


def test_top5_per_clip_and_per_video_against_a_hand_count():
  task = make_task("classification")
  # 7 classes, no ties. Clip ranks of the label (1 = best): 1, 5, 6, 3, 7, 2 (the last is padding).
  logits = np.array(
    [
      [9, 1, 2, 3, 4, 5, 6],  # label 0: rank 1 (top-1 and top-5)
      [1, 2, 9, 8, 3, 4, 5],  # label 4: 9, 8, 4, 5 higher: rank 5 (top-5 only)
      [6, 5, 4, 3, 2, 1, 0],  # label 5: 6, 5, 4, 3, 2 higher: rank 6 (neither)
      [0, 7, 6, 5, 4, 3, 1],  # label 3: 7, 6 higher: rank 3 (top-5 only)
      [0, 1, 2, 3, 4, 5, 6],  # label 0: rank 7 (neither)
      [5, 6, 0, 0.5, 1, 2, 3],  # label 0: rank 2, but padding: must not count
    ],
    np.float32,
  )
  labels = np.array([0, 4, 5, 3, 0, 0])
  video_id = np.array([0, 0, 1, 1, 2, -1])
  mask = np.array([1, 1, 1, 1, 1, 0], np.float32)
  np.testing.assert_array_equal(in_top_k(logits, labels, 5), [1, 1, 0, 1, 0, 1])
  batch = {"video": np.zeros((6, 1, 2, 2, 3)), "label": labels, "video_id": video_id, "mask": mask}
  values = {k: np.asarray(v) for k, v in task.eval_metrics(logits, batch).items()}
  np.testing.assert_array_equal(values["correct_top5"], [1, 1, 0, 1, 0, 1])
  out = task.aggregate([dict(values, weight=mask)])
  assert out["accuracy"] == pytest.approx(1 / 5) and out["top5_accuracy"] == pytest.approx(3 / 5)
  # Video means: video 0 = rows 0, 1 (label 0): [5, 1.5, 5.5, 5.5, 3.5, 4.5, 5.5], label 0 is
  # beaten by 5.5 three times: rank 4 -> top-5, not top-1. Video 1 = rows 2, 3 (label 5):
  # [3, 6, 5, 4, 3, 2, 0.5]; 6, 5, 4, 3, 3 beat 2: rank 6 -> neither. Video 2 = row 4: neither.
  assert out["video_accuracy"] == 0.0
  assert out["video_top5_accuracy"] == pytest.approx(1 / 3) and out["num_videos"] == 3
  # Fewer than 5 classes: every label is in the top 5.
  assert in_top_k(np.array([[0.0, 1.0, 2.0]]), np.array([0]), 5).all()


def _data_config(**overrides):
  config = default_data_config()
  config.num_frames, config.frame_stride = 4, 1
  config.resize, config.crop_size = 32, 28
  config.eval_resize, config.eval_crop_size = 48, 40
  config.eval_clips, config.eval_crops = 2, 3
  for key, value in overrides.items():
    setattr(config, key, value)
  return config


def test_eval_views_take_the_eval_short_side_and_crop():
  config = _data_config()
  config_lib.validate(config)
  rng = np.random.default_rng(0)
  clips = rng.integers(0, 255, (2, 4, 60, 80, 3), np.uint8)  # 2 clips of a 60 x 80 video
  out = views.eval_views(config, {"clips": tf.constant(clips), "label": 1, "video_id": 7})
  assert tuple(out["video"].shape) == (6, 4, 40, 40, 3)
  assert views.padding(config)["video"].shape == (4, 40, 40, 3)
  # The centre crop of the first clip: its frames resized to short side 48 (48 x 64), 40 cropped.
  resized = tf.image.resize(tf.cast(clips[0], tf.float32), [48, 64], "bilinear", antialias=True)
  centre = np.clip(np.round(resized.numpy()[:, 4:44, 12:52]), 0, 255)
  np.testing.assert_allclose(out["video"][1].numpy(), centre, atol=1)
  # 0 means training's sizes.
  same = views.eval_views(
    _data_config(eval_resize=0, eval_crop_size=0),
    {"clips": tf.constant(clips), "label": 1, "video_id": 7},
  )
  assert tuple(same["video"].shape) == (6, 4, 28, 28, 3)
  with pytest.raises(ValueError, match="eval crop 64"):
    config_lib.validate(_data_config(eval_crop_size=64))


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
  root = tmp_path_factory.mktemp("videos")
  rng = np.random.default_rng(0)
  for name in ("a", "b"):
    os.makedirs(root / name)
    for i in range(2):
      write_video(
        str(root / name / f"{name}{i}.mp4"), rng.integers(0, 255, (8, 48, 64, 3), np.uint8), fps=25
      )
  return str(root)


def test_pipeline_and_predict_views_at_the_eval_crop(videos):
  config = _data_config(source="folder", path=videos)
  train = next(
    iter(pipeline.create_iterator(config, "train", global_batch_size=2, sharding=None, seed=0))
  )
  assert train["video"].shape == (2, 4, 28, 28, 3)
  batches = list(
    pipeline.create_iterator(
      config, "eval", global_batch_size=4, sharding=None, seed=0, num_epochs=1
    )
  )
  assert all(b["video"].shape == (4, 4, 40, 40, 3) for b in batches)
  path = os.path.join(videos, "a", "a0.mp4")
  assert predict.video_views(path, config).shape == (6, 4, 40, 40, 3)
