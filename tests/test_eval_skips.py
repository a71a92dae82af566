"""SR evaluation skips (and counts) the sequences training skips, by the same reader and rule, rather
than scoring them; with nothing left, one line says why."""

import os

import flax.linen as nn
import jax
import numpy as np
import pytest
from PIL import Image

from jaxres.data import pipeline
from jaxres.data.config import default_data_config
from jaxres.data.skips import SkipCounter
from jaxres.models.sr import bicubic_upsample
from jaxres.sr import evaluate

SCALE = 2


class Bicubic(nn.Module):
  """A clip model `[B, T, h, w, 3] -> [B, T, 2h, 2w, 3]` with one parameter."""

  @nn.compact
  def __call__(self, x, train: bool = False):
    return bicubic_upsample(x, SCALE) + self.param("shift", nn.initializers.zeros, ())


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
  """HR sequences listed with 3 frames each: `good`; `tail` holding 2; `broken` with a bad PNG."""
  root = tmp_path_factory.mktemp("frames")
  rng = np.random.default_rng(0)
  for seq, frames in (("good", 3), ("tail", 2), ("broken", 3)):
    os.makedirs(root / "hr" / seq)
    for i in range(frames):
      image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
      Image.fromarray(image).save(root / "hr" / seq / f"{i:04d}.png")
  (root / "hr" / "broken" / "0001.png").write_bytes(b"\x89PNG not really")
  (root / "meta_info.txt").write_text("good 3 (16,16,3)\ntail 3 (16,16,3)\nbroken 3 (16,16,3)\n")
  return str(root / "hr"), str(root / "meta_info.txt")


def _model():
  model = Bicubic()
  return model, model.init(jax.random.key(0), np.zeros((1, 1, 4, 4, 3), np.float32))


def test_eval_skips_what_training_skips_and_counts_it_the_same(folders):
  hr, meta_info = folders
  config = default_data_config()
  config.source, config.path, config.eval_split = "frames", hr, meta_info
  config.num_frames, config.resize, config.crop_size = 2, 0, 16
  training = SkipCounter()
  batches = pipeline.create_iterator(
    config, "eval", global_batch_size=3, sharding=None, seed=0, skips=training
  )
  assert sum(float(b["mask"].sum()) for b in batches) == 1  # only "good" is used
  model, variables = _model()
  evaluation = SkipCounter()
  rows = evaluate.evaluate_frames(
    model,
    variables,
    hr,
    scale=SCALE,
    clip_model=True,
    split_list=meta_info,
    crop=0,
    skips=evaluation,
  )
  assert [r["name"] for r in rows] == ["good"]
  assert evaluation.counts() == training.counts() == {"corrupt": 1, "missing": 1}
  assert evaluation.files() == training.files()


def test_eval_with_every_sequence_skipped_is_one_line(folders):
  hr, meta_info = folders
  model, variables = _model()
  with pytest.raises(ValueError) as error:
    evaluate.evaluate_frames(
      model,
      variables,
      hr,
      scale=SCALE,
      clip_model=True,
      sequences=["tail", "broken"],
      expected={"tail": 3},
      skips=SkipCounter(),
    )
  line = str(error.value)
  assert line.startswith(f"None of this host's 2 frame sequences in {hr} can be used: 2 skipped")
  assert "\n" not in line and "(corrupt: 1, missing: 1)" in line


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
  """One class folder: `good.mp4`, `cut.mp4` (its header lists 40 frames, a few decode) and
  `garbage.avi` (random bytes)."""
  from media import cut_with_index_first

  from jaxres.data.video import write_video

  root = tmp_path_factory.mktemp("videos")
  os.makedirs(root / "clips" / "a")
  rng = np.random.default_rng(0)
  write_video(
    str(root / "clips" / "a" / "good.mp4"), rng.integers(0, 256, (4, 16, 16, 3), np.uint8), 25
  )
  long_clip = write_video(
    str(root / "long.mp4"), rng.integers(0, 256, (40, 16, 16, 3), np.uint8), 25
  )
  cut_with_index_first(long_clip, str(root / "clips" / "a" / "cut.mp4"), 0.3)
  (root / "clips" / "a" / "garbage.avi").write_bytes(rng.bytes(3000))
  return str(root / "clips")


def _folder_config(path):
  """Eval clips at both ends of each video, so training's reader meets where a cut file stops."""
  config = default_data_config()
  config.source, config.path = "folder", path
  config.num_frames, config.resize, config.crop_size, config.eval_clips = 2, 0, 16, 2
  return config


def test_held_out_videos_skip_what_training_skips_and_count_it_the_same(video_folder):
  config = _folder_config(video_folder)
  training = SkipCounter()
  batches = pipeline.create_iterator(
    config, "eval", global_batch_size=3, sharding=None, seed=0, skips=training
  )
  assert sum(float(b["mask"].sum()) for b in batches) == 2  # good.mp4's 2 clips only
  evaluation = SkipCounter()
  videos = evaluate.held_out_videos(config, evaluation)
  assert [name for name, _ in videos] == ["good.mp4"]
  assert videos[0][1].shape == (4, 16, 16, 3)
  assert evaluation.counts() == training.counts() == {"corrupt": 1, "partial": 1}
  assert evaluation.files() == training.files()


def test_held_out_videos_all_skipped_is_one_line(video_folder, tmp_path):
  os.makedirs(tmp_path / "a")
  for name in ("cut.mp4", "garbage.avi"):
    os.symlink(os.path.join(video_folder, "a", name), tmp_path / "a" / name)
  with pytest.raises(ValueError) as error:
    evaluate.held_out_videos(_folder_config(str(tmp_path)), SkipCounter())
  line = str(error.value)
  assert line.startswith(f"None of this host's 2 videos in {tmp_path} can be used: 2 skipped")
  assert "\n" not in line and "(corrupt: 1, partial: 1)" in line
