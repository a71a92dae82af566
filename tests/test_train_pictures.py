"""TensorBoard pictures and hparams: confusion matrices, SR crops side by side, the run's
hyperparameters; read back from the event files."""

import glob
import os

import numpy as np
import pytest

from jaxres.train import default_config, load_config, train_and_evaluate
from jaxres.train.pictures import confusion_image, confusion_matrix, eval_confusion, sr_crops
from jaxres.train.writers import MetricWriter, flat_hparams


def _events(folder):
  """{tag: (plugin, [tensor values])} of the event files in `folder` (not recursive)."""
  import tensorflow as tf

  out = {}
  for path in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        tensor = tf.make_ndarray(value.tensor) if value.HasField("tensor") else None
        out.setdefault(value.tag, (value.metadata.plugin_data.plugin_name, []))[1].append(tensor)
  return out


def _png_shape(encoded):
  import tensorflow as tf

  return tuple(tf.io.decode_png(encoded).shape)


def test_confusion_counts_videos_once_and_drops_padding():
  assert confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), 2).tolist() == [[1, 0], [1, 1]]
  # Video 0 (label 1): views vote 0 then strongly 1 -> mean predicts 1. Video 1 (label 0): one
  # view predicting 1. The padding row (weight 0) would add a wrong count.
  values = [
    {
      "logits": np.array([[1.0, 0.0], [0.0, 3.0]]),
      "label": np.array([1, 1]),
      "video_id": np.array([0, 0]),
      "weight": np.array([1.0, 1.0]),
    },
    {
      "logits": np.array([[0.0, 1.0], [5.0, 0.0]]),
      "label": np.array([0, 0]),
      "video_id": np.array([1, -1]),
      "weight": np.array([1.0, 0.0]),
    },
  ]
  assert eval_confusion(values).tolist() == [[0, 1], [0, 1]]
  image = confusion_image(np.array([[3, 1], [0, 4]]), ["a", "b"])
  assert image.dtype == np.uint8 and image.shape == (480, 480, 3)


def test_sr_crops_lay_out_lr_bicubic_model_hr():
  rng = np.random.default_rng(0)
  lr = rng.uniform(size=(2, 4, 5, 3))
  hr = rng.uniform(size=(2, 8, 10, 3))
  image = sr_crops(lr, hr * 0.5, hr * 0.25, hr)
  assert image.shape == (2 * 8 + 2, 4 * 10 + 6, 3)
  np.testing.assert_array_equal(image[:8, :10], np.round(lr[0].repeat(2, 0).repeat(2, 1) * 255))
  np.testing.assert_array_equal(image[10:, 36:], np.round(hr[1] * 255))
  assert (image[8:10] == 255).all() and (image[:, 10:12] == 255).all()


def test_writer_records_images_hparams_and_config_text(tmp_path):
  writer = MetricWriter(str(tmp_path))
  images = np.zeros((2, 6, 9, 3), np.uint8)
  writer.write_images(5, {"pictures": images, "one": images[0]}, split="eval")
  hparams = flat_hparams(default_config())
  assert hparams["optimizer.learning_rate"] == default_config().optimizer.learning_rate
  writer.write_hparams(hparams, text="the config")
  writer.close()
  events = _events(str(tmp_path / "tensorboard" / "eval"))
  plugin, (tensor,) = events["pictures"]
  assert plugin == "images" and tensor[:2].tolist() == [b"9", b"6"] and len(tensor) == 4
  assert _png_shape(tensor[2]) == (6, 9, 3) and len(events["one"][1][0]) == 3
  root = _events(str(tmp_path / "tensorboard"))
  assert root["config"][0] == "text" and root["config"][1][0] == b"the config"
  pytest.importorskip("tensorboard")
  assert root["_hparams_/session_start_info"][0] == "hparams"


@pytest.mark.slow  # two tiny trainings
def test_training_writes_confusion_matrix_lr_hparams_and_sr_crops(tmp_path):
  c = default_config()
  c.model.num_classes = 4
  c.data.num_frames, c.data.resize, c.data.crop_size = 2, 16, 16
  c.synthetic_data, c.global_batch_size, c.num_train_steps = True, 4, 2
  c.eval_steps, c.eval_every_steps, c.log_every_steps = 1, 0, 1
  c.parallel.num_devices, c.progress_bar, c.plot = 1, False, False
  c.checkpoint.async_save = False
  train_and_evaluate(c, str(tmp_path / "cls"))
  board = tmp_path / "cls" / "tensorboard"
  plugin, (tensor,) = _events(str(board / "eval"))["confusion_matrix"]
  assert plugin == "images" and _png_shape(tensor[2]) == (480, 480, 3)
  assert len(_events(str(board / "train"))["learning_rate"][1]) == 2
  assert "config" in _events(str(board))

  sr = load_config(
    "sr_edsr_demo",
    [
      "--config.model.num_blocks=1",
      "--config.model.features=8",
      "--config.num_train_steps=1",
      "--config.global_batch_size=4",
      "--config.data.num_frames=2",
      "--config.data.crop_size=32",
      "--config.parallel.num_devices=1",
      "--config.checkpoint.async_save=False",
      "--config.progress_bar=False",
      "--config.plot=False",
    ],
  )
  hr = np.random.default_rng(0).uniform(size=(4, 2, 32, 32, 3)).astype(np.float32)
  train_and_evaluate(
    sr,
    str(tmp_path / "sr"),
    train_data=lambda start: iter([{"video": hr}] * 3),
    eval_data=lambda: [{"video": hr}],
  )
  plugin, (tensor,) = _events(str(tmp_path / "sr" / "tensorboard" / "eval"))["lr_bicubic_model_hr"]
  assert plugin == "images" and _png_shape(tensor[2]) == (3 * 32 + 4, 4 * 32 + 6, 3)
