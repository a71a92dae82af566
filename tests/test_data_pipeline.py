"""The tf.data pipeline on real video files: labels, skips, determinism, resuming without decoding,
hosts, multi-view eval, prepared shards (and resuming `prepare`), native-resolution views for
super-resolution, global jax.Arrays."""

import collections
import os
import re

import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from media import cut_with_index_first

from jaxres import cli
from jaxres.data import clips, pipeline, records
from jaxres.data.config import default_data_config
from jaxres.data.prepare import prepare_dataset
from jaxres.data.skips import SkipCounter
from jaxres.data.video import write_video
from jaxres.tasks import SuperResolutionTask, degradation, mean_by_video

# Each class has its own dominant colour channel, so a clip's colour tells its true class.
CLASSES = {"blue": 2, "green": 1, "red": 0}
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def colour_clip(channel, num_frames, rng, height=40, width=56):
  frames = np.full((num_frames, height, width, 3), 40, np.uint8)
  frames[..., channel] = 200
  for t in range(num_frames):  # A moving bar, so frames differ.
    x = (4 * t + rng.integers(width)) % (width - 6)
    frames[t, :, x : x + 6] = 120
  return frames


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
  """3 classes x 4 good videos (12-21 frames, mp4/webm/avi) + one short, truncated, cut short
  (its index lists every frame), garbage, text."""
  root = tmp_path_factory.mktemp("videos")
  rng = np.random.default_rng(0)
  suffixes = [".mp4", ".webm", ".avi", ".mkv"]
  for name, channel in CLASSES.items():
    os.makedirs(root / name)
    for i in range(4):
      write_video(
        str(root / name / f"{name}{i}{suffixes[i]}"), colour_clip(channel, 12 + 3 * i, rng), fps=25
      )
  write_video(str(root / "red" / "short.mp4"), colour_clip(0, 4, rng), fps=25)
  data = open(root / "green" / "green0.mp4", "rb").read()
  (root / "green" / "truncated.mp4").write_bytes(data[: len(data) // 3])
  long_clip = write_video(
    str(root / "long.mp4"), colour_clip(1, 40, np.random.default_rng(1)), fps=25
  )
  cut_with_index_first(
    long_clip, str(root / "green" / "cut.mp4"), 0.55
  )  # a few of 40 frames decode
  os.remove(long_clip)
  (root / "blue" / "garbage.avi").write_bytes(rng.bytes(3000))
  (root / "blue" / "readme.txt").write_text("not a video")
  return str(root)


@pytest.fixture(scope="module")
def prepared(folder, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("prepared"))
  prepare_dataset(
    folder,
    out,
    split_lists={"train": "", "eval": ""},
    num_shards=4,
    workers=1,
    resize=32,
    skips=SkipCounter(),
    log=None,
  )
  return out


def make_config(source, path, **overrides):
  config = default_data_config()
  config.source, config.path = source, path
  config.num_frames, config.frame_stride = 8, 1
  config.resize, config.crop_size = 32, 28
  config.mean, config.std = MEAN, STD
  config.shuffle_buffer = 8
  config.flip = True  # Colour classes are mirror-proof (the demo's directions are not).
  for k, v in overrides.items():
    setattr(config, k, v)
  return config


def clip_classes(video):
  """True class of each normalised clip in a batch, from its dominant colour."""
  pixels = np.asarray(video) * np.array(STD) + np.array(MEAN)
  channel = pixels.mean(axis=(1, 2, 3)).argmax(-1)
  names = sorted(CLASSES)
  return np.array([names.index(next(n for n, c in CLASSES.items() if c == ch)) for ch in channel])


def good_ids(config):
  """Video ids of the readable videos (ids are positions among all listed video files)."""
  bad = ("truncated.mp4", "cut.mp4", "garbage.avi")
  entries = pipeline.video_list(
    make_config(
      "folder",
      config.path if config.source == "folder" else records.read_manifest(config.path)["src"],
    ),
    "eval",
    SkipCounter(),
  ).entries
  return {e.video_id for e in entries if not e.path.endswith(bad)}


def take(config, split, n=None, seed=0, **kwargs):
  it = pipeline.create_iterator(
    config, split, global_batch_size=kwargs.pop("batch", 4), sharding=None, seed=seed, **kwargs
  )
  out = []
  for batch in it:
    out.append(batch)
    if n is not None and len(out) == n:
      break
  return out


@pytest.mark.parametrize("source", ["folder", "prepared"])
def test_train_batches_have_true_labels_and_bad_files_are_counted(source, folder, prepared):
  skips = SkipCounter()
  config = make_config(source, folder if source == "folder" else prepared, short_video="skip")
  batches = take(config, "train", num_epochs=1, skips=skips)
  assert len(batches) == 3  # 12 good videos, the short one skipped, batches of 4.
  for batch in batches:
    assert batch["video"].shape == (4, 8, 28, 28, 3) and batch["video"].dtype == np.float32
    assert batch["label"].dtype == np.int32
    np.testing.assert_array_equal(batch["label"], clip_classes(batch["video"]))
  counts = skips.counts()
  assert counts.get("short") == 1 and any(f.endswith("short.mp4") for f in skips.files("short"))
  if source == "folder":  # (prepare counted the others when it ran.)
    assert counts["not_video"] == 1 and counts["corrupt"] + counts.get("empty", 0) == 2
    assert skips.files("partial") == [os.path.join(folder, "green", "cut.mp4")]
    assert {os.path.basename(f) for f in skips.files()} == {
      "short.mp4",
      "truncated.mp4",
      "cut.mp4",
      "garbage.avi",
      "readme.txt",
    }


def test_prepare_lists_skipped_files_in_the_manifest(prepared):
  manifest = records.read_manifest(prepared)
  assert manifest["class_names"] == sorted(CLASSES)
  skipped = {s["path"]: s["reason"] for s in manifest["splits"]["train"]["skipped"]}
  assert skipped.pop("green/cut.mp4") == "partial"
  assert set(skipped) == {"green/truncated.mp4", "blue/garbage.avi"}
  assert manifest["splits"]["train"]["num_videos"] == 13  # Short videos are kept for "loop".
  assert open(os.path.join(prepared, "classes.txt")).read().split() == sorted(CLASSES)


@pytest.mark.parametrize("source", ["folder", "prepared"])
def test_same_seed_same_batches(source, folder, prepared):
  config = make_config(source, folder if source == "folder" else prepared, scale_jitter=(1.0, 1.3))
  a, b, c = (take(config, "train", 3, seed=s, skips=SkipCounter()) for s in (5, 5, 6))
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["video"], y["video"])
    np.testing.assert_array_equal(x["label"], y["label"])
  assert any(not np.array_equal(x["video"], z["video"]) for x, z in zip(a, c))


@pytest.mark.parametrize("source", ["folder", "prepared"])
def test_two_hosts_see_disjoint_videos_that_cover_the_set(source, folder, prepared):
  config = make_config(source, folder if source == "folder" else prepared)
  seen, lengths = [], []
  for host in range(2):
    batches = take(
      config, "eval", process_index=host, process_count=2, skips=SkipCounter(), batch=4
    )
    ids = np.concatenate([b["video_id"][b["mask"] > 0] for b in batches])
    seen.append(set(ids.tolist()))
    lengths.append(len(batches))
  assert not seen[0] & seen[1]
  assert seen[0] | seen[1] == good_ids(config) and len(good_ids(config)) == 13
  assert lengths[0] == lengths[1]  # Every host runs the same number of eval steps.
  if source == "prepared":
    files = records.shard_paths(prepared, records.read_manifest(prepared), "train")
    assert len(files) == 4


@pytest.mark.parametrize("source", ["folder", "prepared"])
def test_multi_clip_three_crop_eval_gives_one_prediction_per_video(source, folder, prepared):
  config = make_config(
    source, folder if source == "folder" else prepared, eval_clips=2, eval_crops=3
  )
  info = pipeline.dataset_info(config)
  assert info.num_classes == 3 and info.num_videos["eval"] == (16 if source == "folder" else 13)
  batches = take(config, "eval", batch=8, skips=SkipCounter())
  assert len(batches) == -(-info.num_videos["eval"] * 6 // 8)
  ids = np.concatenate([b["video_id"] for b in batches])
  mask = np.concatenate([b["mask"] for b in batches])
  labels = np.concatenate([b["label"] for b in batches])
  videos = np.concatenate([b["video"] for b in batches])
  assert (
    mask.sum() == 13 * 6
    and np.all(ids[mask == 0] == -1)
    and np.all(mask[-int((mask == 0).sum()) :] == 0)
  )
  assert set(ids[mask > 0].tolist()) == good_ids(config)
  assert np.all(np.bincount(ids[mask > 0])[sorted(good_ids(config))] == 6)
  np.testing.assert_array_equal(labels[mask > 0], clip_classes(videos[mask > 0]))
  # A "model" that is right on some views and wrong on others: averaging over views fixes it.
  logits = np.eye(3)[labels] * 2.0
  logits[::6] = np.eye(3)[(labels[::6] + 1) % 3]
  video_ids, means = mean_by_video(
    [{"logits": logits, "video_id": ids, "weight": mask}], ["logits"]
  )
  assert set(video_ids.tolist()) == good_ids(config) and means["logits"].shape == (13, 3)
  per_video_label = np.zeros(16, int)
  per_video_label[ids[mask > 0]] = labels[mask > 0]
  np.testing.assert_array_equal(means["logits"].argmax(-1), per_video_label[video_ids])
  # The three crops of a clip differ (the frames are wider than tall), the two clips differ.
  first = videos[ids == 0]
  assert not np.array_equal(first[0], first[1]) and not np.array_equal(first[0], first[3])


@pytest.mark.parametrize("source", ["folder", "prepared"])
def test_eval_pipeline_built_once_gives_the_same_batches_each_pass(
  source, folder, prepared, monkeypatch
):
  config = make_config(source, folder if source == "folder" else prepared, eval_clips=2)
  skips = SkipCounter()
  info = pipeline.dataset_info(config, skips)
  assert (info.video_lists is not None) == (source == "folder")
  listed = []
  monkeypatch.setattr(
    pipeline.host_sources.catalog,
    "video_list",
    lambda *a, **k: listed.append(a) or pytest.fail("listed again"),
  )
  evaluation = pipeline.eval_data(
    config, global_batch_size=8, sharding=None, seed=0, skips=skips, info=info
  )
  passes, counts = [], []
  for _ in range(2):
    passes.append(list(evaluation()))
    counts.append(skips.counts())
  assert not listed and len(passes[0]) == len(passes[1]) == len(evaluation())
  for x, y in zip(*passes):
    assert x.keys() == y.keys()
    for k in x:
      np.testing.assert_array_equal(x[k], y[k])
  ids = np.concatenate([b["video_id"][b["mask"] > 0] for b in passes[0]])
  assert set(ids.tolist()) == good_ids(config)
  assert counts[0] == counts[1]  # an unreadable file counts once, however many passes meet it
  if source == "folder":  # found while listing, once, by `dataset_info`
    assert counts[0]["not_video"] == 1


def test_prepared_frames_match_raw_decoding(folder, prepared):
  raw = take(make_config("folder", folder, eval_clips=2), "eval", batch=26, skips=SkipCounter())[0]
  enc = take(
    make_config("prepared", prepared, eval_clips=2), "eval", batch=26, skips=SkipCounter()
  )[0]
  order_raw = np.lexsort((np.arange(26), raw["video_id"]))
  order_enc = np.lexsort((np.arange(26), enc["video_id"]))
  np.testing.assert_array_equal(raw["video_id"][order_raw], enc["video_id"][order_enc])
  diff = np.abs(raw["video"][order_raw] - enc["video"][order_enc]).mean() * STD[0] * 255
  assert diff < 4.0  # JPEG at quality 90 on top of the video codec.


def test_short_videos_loop_by_default(folder):
  config = make_config("folder", folder, num_frames=8, frame_stride=1)
  batches = take(config, "eval", batch=13, skips=SkipCounter())
  short_id = next(
    e.video_id for e in pipeline.video_list(config, "eval").entries if e.path.endswith("short.mp4")
  )
  (row,) = np.flatnonzero(batches[0]["video_id"] == short_id)
  clip = batches[0]["video"][row]
  np.testing.assert_allclose(clip[4:], clip[:4], atol=1e-6)  # 4 frames, looped.


def test_prepare_resumes_after_interruption(folder, tmp_path, capsys):
  out = str(tmp_path / "out")
  assert (
    cli.main(["prepare", folder, out, "--shards", "3", "--workers", "1", "--resize", "32"]) == 0
  )
  assert "train: 13 videos in 3 shards, 3 skipped" in capsys.readouterr().out
  names = [records.shard_name("train", i, 3) for i in range(3)]
  mtimes = {n: os.path.getmtime(os.path.join(out, n)) for n in names}
  manifest = open(os.path.join(out, "manifest.json")).read()
  # Interrupted: one shard never finished (no done marker), the manifest never written.
  os.remove(os.path.join(out, f".{names[1]}.done.json"))
  os.remove(os.path.join(out, "manifest.json"))
  assert (
    cli.main(["prepare", folder, out, "--shards", "3", "--workers", "1", "--resize", "32"]) == 0
  )
  assert "1 to write" in capsys.readouterr().out
  assert os.path.getmtime(os.path.join(out, names[0])) == mtimes[names[0]]
  assert os.path.getmtime(os.path.join(out, names[1])) > mtimes[names[1]]
  assert open(os.path.join(out, "manifest.json")).read() == manifest
  # Different options on the same folder: refused rather than mixed.
  assert cli.main(["prepare", folder, out, "--shards", "2", "--workers", "1"]) == 1
  assert "different inputs" in capsys.readouterr().err
  assert cli.main(["prepare", str(tmp_path / "none"), str(tmp_path / "o2")]) == 1


def test_global_arrays_on_a_mesh(folder):
  mesh = jax.make_mesh((jax.device_count(),), ("data",))
  sharding = NamedSharding(mesh, P("data"))
  config = make_config("folder", folder)
  it = pipeline.create_iterator(
    config,
    "train",
    global_batch_size=jax.device_count(),
    sharding=sharding,
    seed=0,
    skips=SkipCounter(),
  )
  batch = next(it)
  assert isinstance(batch["video"], jax.Array)
  assert batch["video"].shape == (jax.device_count(), 8, 28, 28, 3)
  assert batch["video"].sharding == sharding and batch["label"].sharding == sharding
  np.testing.assert_array_equal(
    np.asarray(batch["label"]), clip_classes(np.asarray(batch["video"]))
  )


def test_native_resolution_views_feed_super_resolution(folder):
  # resize 0 keeps the frames' own 40x56 pixels: crops are cut from them, not from a resized copy.
  config = make_config(
    "folder",
    folder,
    resize=0,
    crop_size=32,
    flip=False,
    mean=(0.0,) * 3,
    std=(1.0,) * 3,
    short_video="skip",
  )
  (batch,) = take(config, "train", 1, skips=SkipCounter())
  assert batch["video"].shape == (4, 8, 32, 32, 3)
  assert batch["video"].min() >= 0 and batch["video"].max() <= 1
  np.testing.assert_allclose(batch["video"] * 255, np.round(batch["video"] * 255), atol=1e-3)
  # The super-resolution task makes its LR input from these frames on device.
  task = SuperResolutionTask(scale=4)
  prepared_batch = task.prepare(batch, None)
  assert prepared_batch["lr"].shape == (4, 8, 8, 8, 3)
  np.testing.assert_allclose(
    prepared_batch["lr"], degradation.degrade(batch["video"], degradation.Degradation(4)), atol=1e-6
  )
  eval_batches = take(config, "eval", batch=8, skips=SkipCounter())
  assert eval_batches[0]["video"].shape == (8, 8, 32, 32, 3) and "mask" in eval_batches[0]


def _good_videos_csv(tmp_path):
  """A split list of the folder's readable, long-enough videos (no file fails to decode)."""
  rows = [
    f"{name}/{name}{i}{suffix},{sorted(CLASSES).index(name)}"
    for name in CLASSES
    for i, suffix in enumerate([".mp4", ".webm", ".avi", ".mkv"])
  ]
  path = tmp_path / "good.csv"
  path.write_text("\n".join(rows) + "\n")
  return str(path)


@pytest.mark.parametrize("source", ["folder", "prepared"])
def test_resumed_batches_equal_an_uninterrupted_run_without_decoding_the_skipped(
  source, folder, prepared, tmp_path, monkeypatch
):
  if source == "folder":
    config = make_config(
      "folder",
      folder,
      train_split=_good_videos_csv(tmp_path),
      scale_jitter=(1.0, 1.3),
      num_parallel_calls=1,
    )
  else:
    config = make_config("prepared", prepared, scale_jitter=(1.0, 1.3), num_parallel_calls=1)
  uninterrupted = take(config, "train", 8, seed=3, skips=SkipCounter())
  decoded = []
  if source == "folder":
    read_frames = clips.video.read_frames
    monkeypatch.setattr(
      clips.video, "read_frames", lambda *a, **k: decoded.append(a[0]) or read_frames(*a, **k)
    )
  resumed = take(config, "train", 2, seed=3, start_step=6, skips=SkipCounter())
  for x, y in zip(uninterrupted[6:], resumed):
    np.testing.assert_array_equal(x["video"], y["video"])
    np.testing.assert_array_equal(x["label"], y["label"])
  if source == "folder":  # 24 examples were skipped; the 8 used (and a little read-ahead) decoded.
    assert 8 <= len(decoded) < 24, len(decoded)


def test_cached_videos_are_decoded_once_and_change_no_batch_and_no_skip(folder, monkeypatch):
  reads = collections.Counter()
  read_frames = clips.video.read_frames
  monkeypatch.setattr(
    clips.video, "read_frames", lambda *a, **k: reads.update([a[0]]) or read_frames(*a, **k)
  )
  runs = []
  for cache in (False, True):
    reads.clear()
    skips = SkipCounter()
    config = make_config(
      "folder", folder, cache=cache, short_video="skip", scale_jitter=(1.0, 1.3), eval_clips=2
    )
    train = take(config, "train", num_epochs=3, skips=skips)
    runs.append((train, take(config, "eval", skips=SkipCounter()), skips.counts(), dict(reads)))
  (
    (train, evals, skipped, plain_reads),
    (cached_train, cached_evals, cached_skipped, cached_reads),
  ) = runs
  assert len(train) == len(cached_train) == 9  # 12 good videos x 3 epochs, batches of 4.
  for x, y in zip(train + evals, cached_train + cached_evals):
    assert x.keys() == y.keys()
    for key in x:
      np.testing.assert_array_equal(x[key], y[key], err_msg=key)
  assert cached_skipped == skipped and skipped["short"] == 1  # (files, not clips)
  good = [p for p in plain_reads if re.search(r"(red|green|blue)\d\.\w+$|short\.mp4$", p)]
  assert len(good) == 13
  assert all(plain_reads[p] == 4 for p in good)  # 3 training clips and one eval decode each,
  assert all(cached_reads[p] == 2 for p in good)  # against one whole decode per pipeline.
  for bad in ("truncated.mp4", "cut.mp4", "garbage.avi"):  # Tried whole once, then clip by clip.
    path = next(p for p in plain_reads if p.endswith(bad))
    assert cached_reads[path] == 2 + plain_reads[path], bad  # once per pipeline (train, eval)


@pytest.mark.parametrize("from_prepared", [False, True])
def test_tfds_builder_and_tfds_source(folder, prepared, tmp_path, from_prepared):
  import tensorflow_datasets as tfds

  from jaxres.data import tfds_builder

  data_dir = str(tmp_path / "tfds")
  source = prepared if from_prepared else folder
  lists = None if from_prepared else {"train": "", "eval": ""}
  builder = tfds.builder(
    "jaxres_videos",
    data_dir=data_dir,
    config=tfds_builder.folder_config(source, name="colours", resize=32, split_lists=lists),
  )
  builder.download_and_prepare()
  assert builder.info.features["label"].names == sorted(CLASSES)
  assert builder.info.splits["train"].num_examples == 13  # The two unreadable files are left out.
  # A built dataset loads by name from its data_dir, like any TFDS dataset (e.g. ucf101).
  config = make_config(
    "tfds", data_dir, tfds_name="jaxres_videos/colours", eval_split="eval", eval_clips=2
  )
  assert pipeline.dataset_info(config).num_videos == {"train": 13, "eval": 13}
  for batch in take(config, "train", 2, skips=SkipCounter()):
    np.testing.assert_array_equal(batch["label"], clip_classes(batch["video"]))
  batches = take(config, "eval", batch=8, skips=SkipCounter())
  ids = np.concatenate([b["video_id"][b["mask"] > 0] for b in batches])
  assert np.all(np.bincount(ids) == 2) and len(np.bincount(ids)) == 13


def test_a_folder_of_only_bad_videos_is_an_error_not_a_hang(tmp_path):
  os.makedirs(tmp_path / "a")
  for i in range(2):
    (tmp_path / "a" / f"bad{i}.mp4").write_bytes(b"\0" * 100)
  skips = SkipCounter()
  with pytest.raises(Exception, match="None of this host's 2 videos"):
    take(make_config("folder", str(tmp_path)), "train", 1, skips=skips)
  assert skips.counts() == {"corrupt": 2}


def test_prepared_shards_of_only_short_videos_are_an_error_not_a_hang(tmp_path):
  rng = np.random.default_rng(1)
  os.makedirs(tmp_path / "videos" / "a")
  for i in range(2):
    write_video(str(tmp_path / "videos" / "a" / f"short{i}.mp4"), colour_clip(0, 4, rng), fps=25)
  out = str(tmp_path / "prepared")
  prepare_dataset(
    str(tmp_path / "videos"),
    out,
    split_lists={"train": "", "eval": ""},
    num_shards=1,
    workers=1,
    resize=32,
    skips=SkipCounter(),
    log=None,
  )
  skips = SkipCounter()
  with pytest.raises(Exception, match="All 2 of this host's videos are shorter than a clip"):
    take(
      make_config("prepared", out, short_video="skip"), "train", 1, skips=skips
    )  # repeats forever
  assert skips.counts() == {"short": 2}


@pytest.mark.parametrize(
  "height,width,size,crop",
  [
    (240, 320, 128, 112),  # the benchmark's clips
    (320, 240, 140, 112),  # portrait, a jittered short side
    (128, 171, 128, 112),  # already at the size: only cast and cut
    (128, 200, 128, 100),  # one side at the size, the other resized
    (50, 45, 64, 60),  # enlarged
    (241, 333, 117, 97),  # odd sizes
  ],
)
def test_resized_random_crop_is_bit_identical_to_resizing_whole_frames(height, width, size, crop):
  from jaxres.data import transforms
  from jaxres.data.crop_window import resized_random_crop
  from jaxres.data.tfhost import tf

  frames = np.random.default_rng(height).integers(0, 256, (3, height, width, 3), dtype=np.uint8)
  for s in range(4):
    seed = tf.constant([s, 11], tf.int64)
    whole = transforms.random_crop(transforms.resize_short_side(frames, size), crop, seed)
    window = resized_random_crop(frames, size, crop, seed)
    assert window.shape == (3, crop, crop, 3)
    np.testing.assert_array_equal(window.numpy(), whole.numpy())


@pytest.mark.parametrize("margin", [0, 2])
def test_resized_random_crop_is_bit_identical_at_random_sizes_scales_and_windows(
  monkeypatch, margin
):
  # Also from only the columns the window reads (columns_read, as the raw decoder keeps them),
  # even with no margin past columns_read's closed form.
  from jaxres.data import crop_window, transforms
  from jaxres.data.tfhost import tf

  monkeypatch.setattr(crop_window, "_MARGIN", margin)
  rng = np.random.default_rng(7)
  for case in range(12):  # shrinking and enlarging, either side the short one
    height, width = (int(v) for v in rng.integers(20, 200, 2))
    crop = int(rng.integers(8, 40))
    size = int(rng.integers(crop, 160))
    frames = rng.integers(0, 256, (2, height, width, 3), dtype=np.uint8)
    seed = tf.constant([case, 3], tf.int64)
    whole = transforms.random_crop(transforms.resize_short_side(frames, size), crop, seed)
    window = crop_window.resized_random_crop(frames, size, crop, seed)
    kept = crop_window.columns_read(
      height, width, size, crop, crop_window.window_draws(seed).numpy()
    )
    narrow = crop_window.resized_random_crop(
      frames[:, :, :kept], size, crop, seed, full_size=(height, width)
    )
    case_text = str((height, width, size, crop, kept))
    np.testing.assert_array_equal(window.numpy(), whole.numpy(), err_msg=case_text)
    np.testing.assert_array_equal(narrow.numpy(), whole.numpy(), err_msg=case_text)


@pytest.mark.parametrize("jitter", [(1.0, 1.0), (0.9, 1.3)])
def test_fused_raw_training_clips_equal_resizing_whole_decoded_frames(folder, jitter):
  from jaxres.data import views
  from jaxres.data.tfhost import tf

  config = make_config("folder", folder, scale_jitter=jitter, resize=36, crop_size=28)
  paths = sorted(
    os.path.join(folder, name, f)
    for name in CLASSES
    for f in os.listdir(os.path.join(folder, name))
  )
  paths = [p for p in paths if p.endswith((".mp4", ".webm", ".avi", ".mkv"))]
  fused = tf.function(clips.raw_decoder(config, "train", SkipCounter(), len(paths)))
  whole = tf.function(
    clips.raw_decoder(config, "train", SkipCounter(), len(paths), fuse_crop=False)
  )
  for i, path in enumerate(paths):
    x = {"path": tf.constant(path), "label": tf.constant(0), "video_id": tf.constant(i)}
    seed = tf.constant([i, 5], tf.int64)
    a, b = fused(x, seed), whole(x, seed)
    assert bool(a["ok"]) == bool(b["ok"])
    if bool(a["ok"]):
      assert "cropped" in a and "cropped" not in b
      np.testing.assert_array_equal(
        views.train_view(config, seed, a)["video"].numpy(),
        views.train_view(config, seed, b)["video"].numpy(),
      )


@pytest.mark.parametrize("jitter", [(1.0, 1.0), (0.9, 1.3)])
def test_raw_training_clips_resized_in_the_decoder_are_the_same_window_scaled(folder, jitter):
  # The window of views.train_view's resize, cut from frames swscale scaled: exactly that with
  # and without the cache, and within a level of TensorFlow's resize.
  from jaxres.data import crop_window, transforms, video, views
  from jaxres.data.tfhost import tf

  overrides = dict(scale_jitter=jitter, resize=36, crop_size=28)
  config = make_config("folder", folder, resize_in_decoder=True, **overrides)
  cached = make_config("folder", folder, resize_in_decoder=True, cache=True, **overrides)
  exact = make_config("folder", folder, **overrides)
  paths = sorted(
    os.path.join(folder, name, f)
    for name in CLASSES
    for f in os.listdir(os.path.join(folder, name))
  )
  decoders = {
    name: tf.function(clips.raw_decoder(c, "train", SkipCounter(), len(paths), fuse_crop=fuse))
    for name, c, fuse in (
      ("scaled", config, True),
      ("cached", cached, True),
      ("exact", exact, True),
      ("whole", exact, False),  # the clip's frames as decoded
    )
  }
  read = 0
  for i, path in enumerate(paths):
    x = {"path": tf.constant(path), "label": tf.constant(0), "video_id": tf.constant(i)}
    seed = tf.constant([i, 5], tf.int64)
    out = {name: decode(x, seed) for name, decode in decoders.items()}
    assert len({bool(o["ok"]) for o in out.values()}) == 1, path
    if not bool(out["exact"]["ok"]):
      continue
    read += 1
    clip = out["scaled"]["clips"][0].numpy()
    assert clip.shape == (8, 28, 28, 3) and "cropped" in out["scaled"]
    np.testing.assert_array_equal(out["cached"]["clips"][0].numpy(), clip)
    # By hand: the clip's whole frames, each scaled alone, the window train_view draws cut out.
    s_size, s_crop, _, _ = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
    size = int(transforms.scale_jitter_size(36, jitter, s_size))
    frames = out["whole"]["clips"][0].numpy()
    draws = crop_window.window_draws(s_crop).numpy()
    new_h, new_w, y0, x0 = crop_window.window(*frames.shape[1:3], size, 28, draws)
    scaled = np.stack([video.scale_rgb(f, new_h, new_w) for f in frames])
    np.testing.assert_array_equal(clip, scaled[:, y0 : y0 + 28, x0 : x0 + 28], err_msg=path)
    tf_clip = views.train_view(exact, seed, out["exact"])["video"].numpy().astype(int)
    diff = np.abs(views.train_view(config, seed, out["scaled"])["video"].numpy() - tf_clip)
    assert np.mean(diff <= 1) > 0.99 and diff.mean() < 0.1, (path, diff.max(), diff.mean())
  assert read >= 10
