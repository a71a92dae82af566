"""The SR demo's footage: pans over photographs bundled in scikit-image (read with the network
blocked), exact crops of the photo, deterministic, reused, held-out photos never in training, and
read through the demo source and `jaxres.sr.evaluate`'s whole-video path."""

import hashlib
import os
import socket

import numpy as np
import pytest
import skimage

from jaxres.data import catalog, footage, photo_demo, video
from jaxres.data.config import default_data_config, validate
from jaxres.sr import evaluate

SMALL = dict(clips_per_photo=1, num_frames=3, size=64)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
  return photo_demo.write_photo_dataset(str(tmp_path_factory.mktemp("photos")), **SMALL)


def test_photos_are_bundled_files_read_without_network(monkeypatch):
  def refuse(*args, **kwargs):
    raise AssertionError("a photo was downloaded")

  monkeypatch.setattr(socket.socket, "connect", refuse)
  bundled = os.listdir(os.path.join(os.path.dirname(skimage.__file__), "data"))
  assert {"astronaut.png", "chelsea.png", "coffee.png", "camera.png"} <= set(bundled)
  images = {}
  for name in photo_demo.TRAIN_PHOTOS + photo_demo.EVAL_PHOTOS:
    image = photo_demo.load_photo(name)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[-1] == 3, name
    assert min(image.shape[:2]) >= 128 and image.std() > 10, name  # a real picture, not blank
    images[name] = image
  assert np.array_equal(images["camera"][..., 0], images["camera"][..., 2])  # grey -> 3 channels
  # Held-out scenes are not training scenes: textured 24-pixel row segments of every held-out
  # photo (72 bytes) occur nowhere in any training photo.
  assert not set(photo_demo.TRAIN_PHOTOS) & set(photo_demo.EVAL_PHOTOS)
  train_bytes = [images[name].tobytes() for name in photo_demo.TRAIN_PHOTOS]
  for held in photo_demo.EVAL_PHOTOS:
    image = images[held]
    for y in range(40, image.shape[0] - 40, 50):
      x = int(np.argmax([image[y, i : i + 24].std() for i in range(0, image.shape[1] - 24, 8)])) * 8
      segment = image[y, x : x + 24].tobytes()
      assert not any(segment in b for b in train_bytes), (held, y, x)


def test_pans_are_exact_whole_pixel_crops():
  image = photo_demo.load_photo("astronaut")
  clip = photo_demo.render_pan(image, np.random.default_rng(0), 5, 40, 48, velocity=(1, -2))
  assert clip.shape == (5, 40, 48, 3)
  for t in range(4):  # frame t+1 is frame t moved by the velocity, no resampling
    assert np.array_equal(clip[t + 1][:-1, 2:], clip[t][1:, :-2])
  again = photo_demo.render_pan(image, np.random.default_rng(0), 5, 40, 48, velocity=(1, -2))
  assert np.array_equal(clip, again)
  drawn = photo_demo.render_pan(image, np.random.default_rng(1), 4, 64, 64)
  ys, xs = np.nonzero((image[:-63, :-63] == drawn[0, 0, 0]).all(-1))
  assert any(np.array_equal(image[y : y + 64, x : x + 64], drawn[0]) for y, x in zip(ys, xs))
  with pytest.raises(ValueError, match="leaves"):
    photo_demo.render_pan(image, np.random.default_rng(0), 100, 500, 500, velocity=(1, 0))
  with pytest.raises(ValueError, match="at least"):
    photo_demo.render_pan(image, np.random.default_rng(0), 2, 600, 64)


def test_dataset_is_deterministic_reused_and_holds_out_its_photos(small_set, tmp_path):
  root = small_set
  train = open(os.path.join(root, "trainlist01.txt")).read().split()[::2]
  test = open(os.path.join(root, "testlist01.txt")).read().split()
  assert [p.split("/")[1].rsplit("_", 1)[0] for p in train] == list(photo_demo.TRAIN_PHOTOS)
  assert [p.split("/")[1].rsplit("_", 1)[0] for p in test] == list(photo_demo.EVAL_PHOTOS)
  first = video.read_video(os.path.join(root, train[0])).frames
  assert first.shape == (3, 64, 64, 3)
  held = video.read_video(os.path.join(root, test[0])).frames
  assert held.shape == (photo_demo.EVAL_FRAMES, photo_demo.EVAL_HEIGHT, photo_demo.EVAL_WIDTH, 3)
  mtime = os.path.getmtime(os.path.join(root, train[0]))
  assert photo_demo.write_photo_dataset(root, **SMALL) == root  # reused, not rewritten
  assert os.path.getmtime(os.path.join(root, train[0])) == mtime
  other = photo_demo.write_photo_dataset(str(tmp_path / "again"), **SMALL)
  for rel in (train[0], test[0]):
    assert np.array_equal(
      video.read_video(os.path.join(root, rel)).frames,
      video.read_video(os.path.join(other, rel)).frames,
    ), rel
  # The held-out pans do not depend on the training ones.
  more = photo_demo.write_photo_dataset(
    str(tmp_path / "more"), clips_per_photo=1, num_frames=2, size=48
  )
  assert np.array_equal(held, video.read_video(os.path.join(more, test[0])).frames)


def test_demo_source_reads_the_photo_footage(small_set):
  config = default_data_config()
  config.demo.kind, config.path, config.flip = "photos", small_set, True
  config.demo.videos_per_class, config.demo.num_frames, config.demo.size = 1, 3, 64  # = SMALL
  validate(config)  # flips are fine on photographs (they are refused for the motion demo)
  lists = {s: catalog.video_list(config, s) for s in ("train", "eval")}
  assert len(lists["train"].entries) == len(photo_demo.TRAIN_PHOTOS)
  names = [name for name, _ in evaluate.held_out_videos(config)]
  assert names == sorted(f"{p}_00.mp4" for p in photo_demo.EVAL_PHOTOS)
  assert not {e.path for e in lists["train"].entries} & {e.path for e in lists["eval"].entries}
  config.demo.kind = "shapes"
  with pytest.raises(ValueError, match="data.demo.kind"):
    validate(config)


# Bytes of two files of the small set (seed 0) with the pinned PyAV: the same on every machine
# (jaxres.data.reproducible_video). A change means the SR demo's footage, and so its README
# figures, changed: re-measure them before updating the hashes.
SMALL_SET_SHA256 = {
  "footage/chelsea_00.mp4": "747c61ff26fb4272",
  "footage/astronaut_00.mp4": "55106f1d44b886dd",
}


def test_small_set_has_the_pinned_bytes(small_set):
  for rel, digest in SMALL_SET_SHA256.items():
    with open(os.path.join(small_set, rel), "rb") as f:
      assert hashlib.sha256(f.read()).hexdigest().startswith(digest), rel


def test_generated_footage_has_the_pinned_bytes(tmp_path):
  root = footage.write_footage_dataset(str(tmp_path), num_videos=2, frames=4, height=32, width=48)
  with open(os.path.join(root, "footage", "clip_000.mp4"), "rb") as f:
    assert hashlib.sha256(f.read()).hexdigest().startswith("4794a6f531b5e474")
