"""The config is checked against the data and the devices before anything compiles."""

import os

import pytest

from jaxres.data.catalog import DatasetInfo
from jaxres.tasks import ClassificationTask, SuperResolutionTask
from jaxres.train.checks import check_config
from jaxres.train.config import load_config
from jaxres.train.loop import train_and_evaluate


def _info(num_classes):
  return DatasetInfo(tuple(f"c{i}" for i in range(num_classes)), {"train": 8, "eval": 4}, 1)


def test_class_count_batch_and_sizes_are_checked_by_name():
  config = load_config("demo", ["--config.data.path=/data/UCF-101", "--config.data.source=folder"])
  task = ClassificationTask()
  check_config(config, task, info=_info(4), num_devices=8)
  with pytest.raises(
    ValueError,
    match=r"model.num_classes=4 but /data/UCF-101 has 101 classes; "
    r"set --config.model.num_classes=101",
  ):
    check_config(config, task, info=_info(101))
  with pytest.raises(ValueError, match="global_batch_size=16 is not divisible by the 3 devices"):
    check_config(config, task, info=_info(4), num_devices=3)
  config.global_batch_size = 0
  with pytest.raises(ValueError, match="global_batch_size must be a positive integer"):
    check_config(config, task, info=_info(4))


def test_super_resolution_data_must_be_unnormalised_and_divide_by_the_scale():
  config = load_config("sr_edsr_demo")
  task = SuperResolutionTask(scale=2)
  check_config(config, task, info=_info(4))  # the class count does not matter for SR
  config.data.mean = (0.5, 0.5, 0.5)
  with pytest.raises(ValueError, match=r"data.mean=\(0., 0., 0.\)"):
    check_config(config, task)
  config = load_config("sr_edsr_demo", ["--config.data.crop_size=63"])
  with pytest.raises(ValueError, match="data.crop_size=63 is not a multiple of the scale"):
    check_config(config, task)


def test_training_refuses_a_class_count_that_does_not_fit_before_writing_anything(tmp_path):
  config = load_config("demo", ["--config.model.num_classes=3"])
  workdir = str(tmp_path / "run")
  with pytest.raises(ValueError, match="model.num_classes=3 but .* has 4 classes"):
    train_and_evaluate(config, workdir)
  assert not os.path.exists(workdir)
