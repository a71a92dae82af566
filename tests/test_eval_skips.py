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
