"""Class folders, split lists (UCF101 and CSV), clear errors, class names, host sharding, demo data."""

import os

import numpy as np
import pytest

from jaxres.data import demo, sources
from jaxres.data.config import default_data_config, validate
from jaxres.data.skips import SkipCounter


def make_folder(root, layout):
  """layout: {class: [file names]}; files are empty placeholders (listing never decodes)."""
  for name, files in layout.items():
    os.makedirs(root / name, exist_ok=True)
    for f in files:
      (root / name / f).write_bytes(b"x")
  return str(root)


def test_classes_are_sorted_and_labels_follow_folders(tmp_path):
  root = make_folder(
    tmp_path,
    {
      "Zebra": ["z1.mp4"],
      "apple": ["a2.avi", "a1.mkv"],
      "Mango": ["m.webm", "notes.txt"],
      ".hidden": ["h.mp4"],
    },
  )
  skips = SkipCounter()
  videos = sources.folder_videos(root, skips=skips)
  assert videos.class_names == ("Mango", "Zebra", "apple")
  got = [(os.path.relpath(e.path, root), e.label, e.video_id) for e in videos.entries]
  assert got == [
    ("Mango/m.webm", 0, 0),
    ("Zebra/z1.mp4", 1, 1),
    ("apple/a1.mkv", 2, 2),
    ("apple/a2.avi", 2, 3),
  ]
  assert skips.files("not_video") == [os.path.join(root, "Mango", "notes.txt")]
  assert skips.metrics() == {"data/skipped_total": 1, "data/skipped_not_video": 1}


def test_ucf_and_csv_split_lists(tmp_path):
  root = make_folder(tmp_path / "data", {"Run": ["r1.avi", "r2.avi"], "Jump": ["j1.avi", "j2.avi"]})
  train = tmp_path / "trainlist01.txt"
  train.write_text("Run/r1.avi 2\nJump/j2.avi 1\n\n")
  test = tmp_path / "testlist01.txt"
  test.write_text("Jump/j1.avi\n")
  csv = tmp_path / "split.csv"
  csv.write_text(f"path,label\nRun/r2.avi,Run\nJump/j1.avi,0\n{root}/Run/r1.avi,1\n")
  names = ("Jump", "Run")
  rel = lambda v: [(os.path.relpath(e.path, root), e.label) for e in v.entries]
  assert rel(sources.folder_videos(root, str(train))) == [("Jump/j2.avi", 0), ("Run/r1.avi", 1)]
  assert rel(sources.folder_videos(root, str(test), split="eval")) == [("Jump/j1.avi", 0)]
  assert rel(sources.folder_videos(root, str(csv))) == [
    ("Jump/j1.avi", 0),
    ("Run/r1.avi", 1),
    ("Run/r2.avi", 1),
  ]
  assert sources.list_classes(root) == names


def test_split_list_naming_missing_files_is_a_clear_error(tmp_path):
  root = make_folder(tmp_path / "data", {"Run": ["r1.avi"]})
  listing = tmp_path / "list.txt"
  listing.write_text("Run/r1.avi\nRun/gone1.avi\nRun/gone2.avi\n")
  with pytest.raises(FileNotFoundError, match="2 missing") as info:
    sources.folder_videos(root, str(listing))
  assert "Run/gone1.avi" in str(info.value) and "Run/gone2.avi" in str(info.value)
  bad = tmp_path / "bad.csv"
  bad.write_text("Run/r1.avi,Walk\n")
  with pytest.raises(ValueError, match="bad.csv:1: label 'Walk'"):
    sources.folder_videos(root, str(bad))
  with pytest.raises(FileNotFoundError, match="list.missing"):
    sources.folder_videos(root, str(tmp_path / "list.missing"))


def test_empty_folders_are_clear_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="has no class subfolders"):
    sources.folder_videos(str(tmp_path))
  make_folder(tmp_path, {"Run": ["readme.md"]})
  with pytest.raises(FileNotFoundError, match="No videos found in folder"):
    sources.folder_videos(str(tmp_path), skips=SkipCounter())
  with pytest.raises(FileNotFoundError, match="does not exist"):
    sources.folder_videos(str(tmp_path / "nope"))


def test_holdout_split_is_disjoint_and_covers(tmp_path):
  root = make_folder(
    tmp_path, {"a": [f"{i}.mp4" for i in range(8)], "b": [f"{i}.mp4" for i in range(4)]}
  )
  train = {e.path for e in sources.folder_videos(root, holdout_fraction=0.25).entries}
  held = {e.path for e in sources.folder_videos(root, split="eval", holdout_fraction=0.25).entries}
  assert len(held) == 3 and not train & held and len(train | held) == 12


def test_host_shards_are_disjoint_and_cover():
  items = list(range(11))
  shards = [sources.shard_entries(items, i, 3) for i in range(3)]
  assert sorted(sum(shards, [])) == items
  assert all(not set(a) & set(b) for a in shards for b in shards if a is not b)
  with pytest.raises(ValueError):
    sources.shard_entries(items, 3, 3)


def test_class_names_round_trip(tmp_path):
  path = sources.write_class_names(str(tmp_path / "run"), ("b", "a c"))
  assert open(path).read() == "b\na c\n"
  assert sources.read_class_names(str(tmp_path / "run")) == ("b", "a c")


def test_config_defaults_validate_and_reject_bad_values():
  config = default_data_config()
  validate(config)
  config.eval_crops = 2
  with pytest.raises(ValueError, match="eval_crops"):
    validate(config)
  config = default_data_config()
  config.source, config.path = "folder", ""
  with pytest.raises(ValueError, match="data.path"):
    validate(config)
  config = default_data_config()
  config.flip = True  # Would swap the demo's left/right labels.
  with pytest.raises(ValueError, match="flip"):
    validate(config)


def _shift(a, b):
  """Integer (dy, dx) moving image a onto b, by phase correlation."""
  spectrum = np.fft.fft2(b) * np.conj(np.fft.fft2(a))
  corr = np.fft.ifft2(spectrum / (np.abs(spectrum) + 1e-9)).real
  dy, dx = np.unravel_index(corr.argmax(), corr.shape)
  n = a.shape[0]
  return (dy + n // 2) % n - n // 2, (dx + n // 2) % n - n // 2


@pytest.mark.parametrize("name", ["right", "left", "down", "up", "up_right"])
def test_demo_clips_move_in_their_class_direction(name):
  clip = demo.render_clip(np.random.default_rng(3), demo.DIRECTIONS[name], 8, 48).astype(np.float32)
  moving = np.abs(clip - np.median(clip, axis=0)).sum(-1)  # The background is static.
  shifts = np.array([_shift(moving[t], moving[t + 1]) for t in range(6)])
  direction = np.sign(shifts.mean(0))
  assert tuple(direction) == demo.DIRECTIONS[name]


def test_demo_dataset_is_real_video_and_reused(tmp_path):
  from jaxres.data import video as video_io

  root = demo.write_demo_dataset(
    str(tmp_path / "demo"), num_classes=4, videos_per_class=4, num_frames=8, size=32
  )
  assert sources.list_classes(root) == ("down", "left", "right", "up")
  train = sources.folder_videos(root, os.path.join(root, "trainlist01.txt"))
  test = sources.folder_videos(root, os.path.join(root, "testlist01.txt"), split="eval")
  assert len(train.entries) == 12 and len(test.entries) == 4
  assert all(
    os.path.basename(os.path.dirname(e.path)) == train.class_names[e.label]
    for e in train.entries + test.entries
  )
  video = video_io.read_video(train.entries[0].path)
  assert video.frames.shape == (8, 32, 32, 3)
  mtime = os.path.getmtime(train.entries[0].path)
  assert (
    demo.write_demo_dataset(root, num_classes=4, videos_per_class=4, num_frames=8, size=32) == root
  )
  assert os.path.getmtime(train.entries[0].path) == mtime


def test_listing_the_demo_never_writes_it(tmp_path):
  from jaxres.data import catalog

  config = default_data_config()
  config.path = str(tmp_path / "demo")
  config.demo.videos_per_class, config.demo.num_frames, config.demo.size = 2, 4, 16
  with pytest.raises(FileNotFoundError) as error:
    catalog.dataset_info(config)
  message = str(error.value)
  assert os.path.join(config.path, "trainlist01.txt") in message
  assert "ensure_demo_data(config)" in message
  assert not os.path.exists(config.path)  # nothing written
  assert catalog.ensure_demo_data(config) == config.path
  info = catalog.dataset_info(config)
  assert info.num_videos == {"train": 4, "eval": 4}
  assert [len(info.video_lists[s].entries) for s in ("train", "eval")] == [4, 4]
  config.source = "folder"
  assert catalog.ensure_demo_data(config) is None  # only the demo source is written


def test_split_list_writer_reads_back_and_footage_uses_it(tmp_path):
  from jaxres.data import footage, split_lists

  root = footage.write_footage_dataset(
    str(tmp_path / "footage"), num_videos=4, frames=2, height=16, width=16
  )
  assert sorted(os.listdir(root)) == ["footage", split_lists.EVAL_LIST, split_lists.TRAIN_LIST]
  train = sources.folder_videos(root, os.path.join(root, split_lists.TRAIN_LIST))
  test = sources.folder_videos(root, os.path.join(root, split_lists.EVAL_LIST), split="eval")
  assert [os.path.basename(e.path) for e in train.entries] == [f"clip_00{i}.mp4" for i in range(3)]
  assert [os.path.basename(e.path) for e in test.entries] == ["clip_003.mp4"]
  path = os.path.join(root, "mine.txt")
  assert (
    split_lists.write_split_list(path, ["footage/clip_001.mp4 1", "footage/clip_000.mp4"]) == path
  )
  assert open(path).read() == "footage/clip_001.mp4 1\nfootage/clip_000.mp4\n"
  for bad in (["a.mp4\nb.mp4"], [""]):
    with pytest.raises(ValueError, match="one non-empty line"):
      split_lists.write_split_list(path, bad)
  assert open(path).read().count("\n") == 2  # a refused list leaves the old one
  assert sorted(os.listdir(root)) == [
    "footage",
    "mine.txt",
    split_lists.EVAL_LIST,
    split_lists.TRAIN_LIST,
  ]  # no temporary file left
