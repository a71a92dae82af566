"""Frame-folder datasets (REDS, Vimeo-90K, Vid4, MMAction2 rawframes) on tiny generated PNG/JPEG
folders: listing per layout, clips equal to the images, paired LR/HR crops aligned and used by the
SR task, corrupt and missing images skipped and counted, `jaxres prepare` on frames."""

import os

import numpy as np
import pytest
from PIL import Image

from jaxres import cli
from jaxres.data import frames, pipeline, records, sequences
from jaxres.data.config import default_data_config, validate
from jaxres.data.prepare import prepare_dataset
from jaxres.data.skips import SkipCounter
from jaxres.tasks import SuperResolutionTask

SIZE, LR_SCALE = 32, 4


def write_frames(folder, clip, names, fmt="PNG"):
  os.makedirs(folder, exist_ok=True)
  for image, name in zip(clip, names):
    Image.fromarray(image).save(os.path.join(folder, name), fmt, quality=95)


def random_clip(rng, num_frames, size=SIZE, channel=None):
  clip = rng.integers(0, 256, (num_frames, size, size, 3), dtype=np.uint8)
  if channel is not None:  # a dominant colour tells the class
    clip //= 4
    clip[..., channel] += 180
  return clip


def box_down(clip, scale=LR_SCALE):
  t, h, w, c = clip.shape
  return np.round(
    clip.reshape(t, h // scale, scale, w // scale, scale, c).astype(np.float64).mean((2, 4))
  ).astype(np.uint8)


@pytest.fixture(scope="module")
def reds(tmp_path_factory):
  """REDS-like: train_sharp/000..003 (6 frames each) + train_sharp_bicubic/X4 box-downsampled."""
  root = tmp_path_factory.mktemp("REDS")
  rng = np.random.default_rng(0)
  clips = {}
  for seq in ("000", "001", "002", "003"):
    clip = random_clip(rng, 6)
    names = [f"{i:08d}.png" for i in range(6)]
    write_frames(root / "train_sharp" / seq, clip, names)
    write_frames(root / "train_sharp_bicubic" / "X4" / seq, box_down(clip), names)
    clips[seq] = clip
  return str(root), clips


def frames_config(path, **overrides):
  config = default_data_config()
  config.source, config.path = "frames", path
  config.num_frames, config.resize, config.crop_size = 3, 0, 16
  config.mean, config.std = (0.0,) * 3, (1.0,) * 3
  config.shuffle_buffer = 4
  for k, v in overrides.items():
    setattr(config, k, v)
  validate(config)
  return config


def take(config, split, n=None, batch=2, **kwargs):
  it = pipeline.create_iterator(
    config,
    split,
    global_batch_size=batch,
    sharding=None,
    seed=0,
    skips=kwargs.pop("skips", SkipCounter()),
    **kwargs,
  )
  out = []
  for b in it:
    out.append(b)
    if n is not None and len(out) == n:
      break
  return out


def test_natural_order_and_gaps_are_missing_frames(tmp_path):
  clip = random_clip(np.random.default_rng(1), 3, 8)
  write_frames(tmp_path / "v", clip, ["im1.png", "im2.png", "im10.png"])
  with pytest.raises(frames.FrameError, match="im3.png is missing between im2.png and im10.png"):
    frames.list_frames(str(tmp_path / "v"))
  write_frames(tmp_path / "w", clip, ["b.jpg", "a10.png", "a9.png"])  # not all numbered: no gaps
  assert frames.list_frames(str(tmp_path / "w")) == ["a9.png", "a10.png", "b.jpg"]
  np.testing.assert_array_equal(
    frames.read_frames(str(tmp_path / "w"), [1, 1, 7])[:2], clip[[1, 1]]
  )
  write_frames(tmp_path / "mm", clip, ["img_00001.jpg", "flow_x_00001.jpg", "img_00002.jpg"])
  assert frames.list_frames(str(tmp_path / "mm"), "img_*") == ["img_00001.jpg", "img_00002.jpg"]
  with pytest.raises(frames.FrameError, match="2 of the 7 frames"):  # e.g. a Vimeo septuplet
    frames.list_frames(str(tmp_path / "mm"), "img_*", expected=7)
  os.makedirs(tmp_path / "none")
  with pytest.raises(frames.FrameError, match="empty"):
    frames.list_frames(str(tmp_path / "none"))


def test_layouts_list_their_sequences(reds, tmp_path):
  root, _ = reds
  sharp = os.path.join(root, "train_sharp")
  names = lambda v: [os.path.relpath(e.path, sharp) for e in v.entries]
  # REDS: a held-out set of sequences (REDS4-style) is the eval split and is left out of train.
  assert names(
    sequences.frame_sequences(sharp, split="eval", holdout_sequences=("001", "003"))
  ) == ["001", "003"]
  assert names(sequences.frame_sequences(sharp, holdout_sequences=("001", "003"))) == ["000", "002"]
  # BasicSR meta_info lines work as lists (first token = folder).
  (tmp_path / "meta.txt").write_text("002 6 (32,32,3)\n000 6 (32,32,3)\n")
  listed = sequences.frame_sequences(sharp, split_list=str(tmp_path / "meta.txt"))
  assert names(listed) == ["000", "002"] and listed.class_names == ()
  assert [e.num_frames for e in listed.entries] == [6, 6]
  with pytest.raises(FileNotFoundError, match="not sequences"):
    sequences.frame_sequences(sharp, holdout_sequences=("999",))
  # Vid4: every folder of images at any depth.
  vid4 = tmp_path / "Vid4" / "GT"
  rng = np.random.default_rng(2)
  for seq in ("calendar", "city"):
    write_frames(vid4 / seq, random_clip(rng, 2, 16), ["0000.jpg", "0001.jpg"], "JPEG")
  assert [os.path.basename(e.path) for e in sequences.frame_sequences(str(vid4)).entries] == [
    "calendar",
    "city",
  ]
  # Vimeo-90K septuplets: sequences/ + sep_trainlist.txt / sep_testlist.txt by default.
  vimeo = tmp_path / "vimeo_septuplet"
  for seq in ("00001/0001", "00001/0002", "00002/0001"):
    write_frames(
      vimeo / "sequences" / seq, random_clip(rng, 7, 8), [f"im{i}.png" for i in range(1, 8)]
    )
  (vimeo / "sep_trainlist.txt").write_text("00001/0001\n00002/0001\n")
  (vimeo / "sep_testlist.txt").write_text("00001/0002\n")
  rel = lambda v: [os.path.relpath(e.path, vimeo / "sequences") for e in v.entries]
  assert rel(sequences.frame_sequences(str(vimeo), "vimeo")) == ["00001/0001", "00002/0001"]
  assert rel(sequences.frame_sequences(str(vimeo), "vimeo", split="eval")) == ["00001/0002"]
  assert {e.num_frames for e in sequences.frame_sequences(str(vimeo), "vimeo").entries} == {7}
  (vimeo / "bad.txt").write_text("00001/0001\n00009/0009\n")
  with pytest.raises(FileNotFoundError, match="1 missing folder"):
    sequences.frame_sequences(str(vimeo), "vimeo", "bad.txt")
  with pytest.raises(ValueError, match="data.layout"):
    sequences.frame_sequences(str(vimeo), "vimeo90k")


@pytest.fixture(scope="module")
def rawframes(tmp_path_factory):
  """MMAction2 rawframes: <class>/<video>/img_00001.jpg, a colour per class, + an annotation list."""
  root = tmp_path_factory.mktemp("rawframes")
  rng = np.random.default_rng(3)
  lines = []
  for label, (name, channel) in enumerate((("jump", 1), ("run", 0))):
    for v in range(2):
      n = 5 + v
      write_frames(
        root / name / f"v{v}",
        random_clip(rng, n, 24, channel),
        [f"img_{i:05d}.jpg" for i in range(1, n + 1)],
        "JPEG",
      )
      for axis in "xy":  # optical flow next to the RGB frames, as MMAction2's extraction writes
        write_frames(
          root / name / f"v{v}",
          random_clip(rng, n - 1, 24, 2),
          [f"flow_{axis}_{i:05d}.jpg" for i in range(1, n)],
          "JPEG",
        )
      lines.append(f"{name}/v{v} {n} {label}")
  (root / "train_list.txt").write_text("\n".join(lines) + "\n")
  return str(root)


@pytest.mark.parametrize("listed", [False, True])
def test_rawframes_classification_batches_carry_their_labels(rawframes, listed):
  config = frames_config(
    rawframes,
    layout="rawframes",
    resize=24,
    crop_size=16,
    train_split="train_list.txt" if listed else "",
    frame_pattern="img_*",
  )
  info = pipeline.dataset_info(config)
  assert info.class_names == (("0", "1") if listed else ("jump", "run"))
  assert info.num_videos == {"train": 4, "eval": 4}
  (batch,) = take(config, "train", 1, batch=4)
  assert batch["video"].shape == (4, 3, 16, 16, 3) and set(batch) == {"video", "label"}
  dominant = batch["video"].mean((1, 2, 3)).argmax(-1)  # green = jump (0), red = run (1)
  np.testing.assert_array_equal(batch["label"], np.where(dominant == 1, 0, 1))


@pytest.mark.parametrize(
  "line, says",
  [
    ("run/v0 5 -1", "label '-1' is not a class index"),
    ("run/v0 5 1.0", "label '1.0' is not a class index"),
    ("run/v0 5 run", "label 'run' is not a class index"),
    ("run/v0 5 2", "label 2 is not below the 2 classes of the training list"),
  ],
)
def test_a_rawframes_list_label_that_is_not_a_class_is_refused_naming_file_and_line(
  rawframes, tmp_path, line, says
):
  eval_list = tmp_path / "eval_list.txt"
  eval_list.write_text(f"jump/v0 5 0\n# a comment\n{line}\n")
  config = frames_config(
    rawframes,
    layout="rawframes",
    train_split="train_list.txt",
    eval_split=str(eval_list),
    frame_pattern="img_*",
  )
  with pytest.raises(ValueError) as error:
    pipeline.dataset_info(config)  # the run's listing: nothing reaches batches or a manifest
  assert str(error.value).startswith(f"{eval_list}:3: {says}") and "\n" not in str(error.value)
  if "not below" not in says:  # a list on its own refuses it as well (what `jaxres prepare` reads)
    with pytest.raises(ValueError, match=f"{eval_list}:3: "):
      sequences.frame_sequences(rawframes, "rawframes", str(eval_list))


def test_sequence_clips_are_the_images(reds):
  root, clips = reds
  config = frames_config(
    os.path.join(root, "train_sharp"),
    holdout_sequences=("000", "002"),
    num_frames=3,
    frame_stride=2,
  )
  assert pipeline.dataset_info(config).num_videos == {"train": 2, "eval": 2}
  batches = take(config, "eval", batch=2)
  (batch,) = batches
  np.testing.assert_array_equal(batch["video_id"], [0, 1])
  # Frames 0, 2, 4 of each held-out sequence, the centre 16x16 crop, exactly (PNG is lossless).
  for row, seq in enumerate(("000", "002")):
    want = clips[seq][[0, 2, 4], 8:24, 8:24].astype(np.float32) / 255
    np.testing.assert_allclose(batch["video"][row], want, atol=1e-6)
  (train,) = take(config, "train", 1)
  assert train["video"].shape == (2, 3, 16, 16, 3) and "lr" not in train


def test_paired_lr_frames_are_read_aligned_and_used_by_the_sr_task(reds):
  root, clips = reds
  config = frames_config(
    os.path.join(root, "train_sharp"),
    lr_path=os.path.join(root, "train_sharp_bicubic", "X4"),
    flip=True,
    rotate=True,
  )
  for batch in take(config, "train", 2) + take(config, "eval", batch=4):
    hr, lr = batch["video"], batch["lr"]
    assert hr.shape[2:4] == (16, 16) and lr.shape[2:4] == (4, 4)
    # LR is the box-downsampled HR of the same window: aligned, flipped and turned together.
    np.testing.assert_allclose(
      lr * 255,
      box_down((hr * 255).round().astype(np.uint8).reshape(-1, 16, 16, 3)).reshape(lr.shape),
      atol=0.51,
    )
  config.mirror = True  # the clip, then its reverse: 2 x 3 frames, LR in step
  (mirrored,) = take(config, "train", 1)
  for key in ("video", "lr"):
    assert mirrored[key].shape[1] == 6
    np.testing.assert_array_equal(mirrored[key][:, 3:], mirrored[key][:, 2::-1])
  task = SuperResolutionTask(scale=LR_SCALE)
  task.check_data(config)
  out = task.prepare(batch, None)
  np.testing.assert_array_equal(out["lr"], batch["lr"])  # as given, not degraded again
  np.testing.assert_array_equal(out["hr"], batch["video"])
  with pytest.raises(ValueError, match="not 1/2"):
    SuperResolutionTask(scale=2).prepare(batch, None)


def test_rotate_draws_the_four_vflip_transpose_symmetries():
  from jaxres.data import transforms

  clip = np.arange(2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)
  want = {
    "id": clip,
    "vflip": clip[:, ::-1],
    "transpose": clip.transpose(0, 2, 1, 3),
    "both": clip[:, ::-1].transpose(0, 2, 1, 3),
  }
  seen = set()
  for seed in range(16):
    out = np.asarray(transforms.random_vflip_transpose(clip, [seed, 1]))
    seen.add(next(k for k, v in want.items() if np.array_equal(out, v)))
  assert seen == set(want)


def test_corrupt_and_missing_images_skip_their_sequence_and_are_counted(reds, tmp_path):
  root, clips = reds
  hr, lr = tmp_path / "hr", tmp_path / "lr"
  rng = np.random.default_rng(4)
  for seq in ("good", "corrupt", "gap", "lr_gone", "tail"):
    clip = random_clip(rng, 4)
    names = [f"{i:08d}.png" for i in range(4)]
    write_frames(hr / seq, clip, names)
    write_frames(lr / seq, box_down(clip), names)
  data = (hr / "corrupt" / "00000001.png").read_bytes()
  (hr / "corrupt" / "00000001.png").write_bytes(data[: len(data) // 2])  # truncated
  os.remove(hr / "gap" / "00000002.png")
  os.remove(lr / "lr_gone" / "00000003.png")
  for folder in (hr, lr):  # the last frame gone: no gap, but the list says 4 frames
    os.remove(folder / "tail" / "00000003.png")
  (tmp_path / "meta_info.txt").write_text(
    "".join(f"{seq} 4 (32,32,3)\n" for seq in ("good", "corrupt", "gap", "lr_gone", "tail"))
  )
  skips = SkipCounter()
  config = frames_config(
    str(hr), lr_path=str(lr), num_frames=4, eval_split=str(tmp_path / "meta_info.txt")
  )
  batches = take(config, "eval", batch=5, skips=skips)
  assert batches[0]["mask"].sum() == 1 and batches[0]["video_id"][0] == 2  # only "good" is left
  assert skips.counts() == {"corrupt": 1, "missing": 3}
  assert skips.files("corrupt") == [str(hr / "corrupt")]
  assert {os.path.basename(f) for f in skips.files("missing")} == {"gap", "lr_gone", "tail"}
  # `jaxres prepare` skips and lists the same sequences, for the same reasons.
  skips = SkipCounter()
  manifest = prepare_dataset(
    str(hr),
    str(tmp_path / "prepared"),
    layout="sequences",
    resize=0,
    lr_src=str(lr),
    lr_scale=LR_SCALE,
    workers=1,
    skips=skips,
    log=None,
    split_lists={"train": str(tmp_path / "meta_info.txt")},
  )
  assert {s["path"]: s["reason"] for s in manifest["splits"]["train"]["skipped"]} == {
    "corrupt": "corrupt",
    "gap": "missing",
    "lr_gone": "missing",
    "tail": "missing",
  }
  assert manifest["splits"]["train"]["num_videos"] == 1
  assert skips.counts() == {"corrupt": 1, "missing": 3}


def test_prepare_frame_folders(reds, rawframes, tmp_path, capsys):
  root, clips = reds
  sharp = os.path.join(root, "train_sharp")
  out = str(tmp_path / "prepared")
  (tmp_path / "eval.txt").write_text("001\n003\n")
  assert (
    cli.main(
      [
        "prepare",
        sharp,
        out,
        "--layout",
        "sequences",
        "--eval-list",
        str(tmp_path / "eval.txt"),
        "--resize",
        "0",
        "--workers",
        "1",
      ]
    )
    == 0
  )
  assert "eval: 2 videos" in capsys.readouterr().out
  manifest = records.read_manifest(out)
  assert manifest["image_format"] == "any" and manifest["splits"]["train"]["num_videos"] == 4
  # Frames are stored as they were (PNG): prepared clips equal the images.
  config = frames_config(out, source="prepared", num_frames=6)
  (batch,) = take(config, "eval", batch=2)
  for row, seq in enumerate(("001", "003")):
    np.testing.assert_allclose(batch["video"][row], clips[seq][:, 8:24, 8:24] / 255, atol=1e-6)
  # Paired LR frames stored next to the HR ones: the same batches as reading the folders.
  out3, lr_root = str(tmp_path / "paired"), os.path.join(root, "train_sharp_bicubic", "X4")
  assert (
    cli.main(
      [
        "prepare",
        sharp,
        out3,
        "--layout",
        "sequences",
        "--holdout-sequences",
        "001",
        "003",
        "--resize",
        "0",
        "--lr",
        lr_root,
        "--lr-scale",
        "4",
        "--workers",
        "1",
      ]
    )
    == 0
  )
  raw = frames_config(sharp, lr_path=lr_root, holdout_sequences=("001", "003"), num_frames=6)
  from_records = frames_config(out3, source="prepared", num_frames=6)
  (want,), (got,) = take(raw, "eval", batch=4), take(from_records, "eval", batch=4)
  assert set(got) == set(want) and got["lr"].shape == (4, 6, 4, 4, 3)
  for key in want:
    np.testing.assert_array_equal(got[key], want[key], err_msg=key)
  assert take(from_records, "train", 1)[0]["lr"].shape == (2, 6, 4, 4, 3)
  from_records.lr_scale = 2
  with pytest.raises(ValueError, match="data.lr_scale=4"):
    take(from_records, "eval")
  # Rawframes with labels, re-encoded to JPEG at a short side of 16.
  out2 = str(tmp_path / "prepared2")
  prepare_dataset(
    rawframes,
    out2,
    layout="rawframes",
    resize=16,
    workers=1,
    skips=SkipCounter(),
    log=None,
    frame_pattern="img_*",
  )
  manifest = records.read_manifest(out2)
  assert manifest["class_names"] == ["jump", "run"] and manifest["image_format"] == "jpeg"
  videos = [v for s in manifest["splits"]["train"]["shards"] for v in s["videos"]]
  assert sorted((v["path"], v["label"], v["num_frames"]) for v in videos) == [
    ("jump/v0", 0, 5),
    ("jump/v1", 0, 6),
    ("run/v0", 1, 5),
    ("run/v1", 1, 6),
  ]


def test_frames_config_is_checked():
  config = default_data_config()
  config.source, config.path = "frames", "/data"
  config.target_fps = 15.0
  with pytest.raises(ValueError, match="target_fps"):
    validate(config)
  config = default_data_config()
  config.source, config.path, config.layout = "frames", "/data", "vimeo90k"
  with pytest.raises(ValueError, match="data.layout"):
    validate(config)
  config = default_data_config()
  config.lr_path = "/data/lr"
  with pytest.raises(ValueError, match="needs data.source = 'frames'"):
    validate(config)
  config.source, config.path = "frames", "/data"
  with pytest.raises(ValueError, match="resize = 0"):
    validate(config)
  from jaxres.train.config import apply_override, load_config

  config = load_config("sr_edsr_demo")
  with pytest.raises(KeyError, match="data.layout"):
    apply_override(config, "--config.data.layuot=vimeo")


@pytest.mark.slow  # compiles a train and an eval step
def test_sr_training_on_paired_frames_uses_the_given_lr(reds, tmp_path, capsys):
  from jaxres.train import load_config, train_and_evaluate

  root, clips = reds
  config = load_config(
    "sr_edsr_demo",
    [
      "--config.data.source=frames",
      f"--config.data.path={root}/train_sharp",
      f"--config.data.lr_path={root}/train_sharp_bicubic/X4",
      "--config.data.lr_scale=4",
      "--config.model.scale=4",
      "--config.data.holdout_sequences=('000',)",
      "--config.data.crop_size=24",
      "--config.data.num_frames=2",
      "--config.data.eval_clips=1",
      "--config.model.num_blocks=1",
      "--config.model.features=8",
      "--config.global_batch_size=8",
      "--config.num_train_steps=2",
      "--config.eval_every_steps=0",
      "--config.progress_bar=False",
      "--config.plot=False",
      "--config.tensorboard=False",
      "--config.checkpoint.async_save=False",
    ],
  )
  summary = train_and_evaluate(config, str(tmp_path / "run"))
  assert summary["step"] == 2 and summary["eval"]["num_videos"] == 1
  # The bicubic baseline is measured on the LR frames as given (box-downsampled), not on a
  # bicubic degradation of HR: recompute it from the files.
  from jaxres.models.sr import bicubic_upsample
  from jaxres.tasks import image_metrics

  (batch,) = take(
    frames_config(
      f"{root}/train_sharp",
      lr_path=f"{root}/train_sharp_bicubic/X4",
      holdout_sequences=("000",),
      num_frames=2,
      crop_size=24,
    ),
    "eval",
    batch=8,
  )
  bic = np.round(np.clip(np.asarray(bicubic_upsample(batch["lr"][:1], 4)), 0, 1) * 255) / 255
  want = float(np.mean(image_metrics.psnr(bic, batch["video"][:1], crop=4, y_channel=True)))
  np.testing.assert_allclose(summary["eval"]["psnr_y_bicubic"], want, rtol=1e-4)
  # `jaxres evaluate --checkpoint RUN` reads the run's eval sequences whole, with their LR frames
  # as given.
  from jaxres import cli

  capsys.readouterr()
  assert cli.main(["evaluate", "--checkpoint", str(tmp_path / "run")]) == 0
  lines = capsys.readouterr().out.splitlines()
  assert "on the 1 held-out sequences of its eval split, border crop 4:" in lines[0], lines
  hr = clips["000"].astype(np.float32) / 255
  lr = box_down(clips["000"]).astype(np.float32) / 255
  bic = np.round(np.clip(np.asarray(bicubic_upsample(lr, 4)), 0, 1) * 255) / 255
  want = float(np.mean(image_metrics.psnr(bic, hr, crop=4, y_channel=True)))
  assert lines[2].split()[0] == "000" and lines[2].split()[2] == f"{want:.2f}", lines


def test_a_dataset_of_only_corrupt_sequences_is_one_clean_line(tmp_path):
  rng = np.random.default_rng(5)
  for seq in ("a", "b"):
    write_frames(tmp_path / seq, random_clip(rng, 4), [f"{i:08d}.png" for i in range(4)])
    (tmp_path / seq / "00000001.png").write_bytes(b"not a png")
  skips = SkipCounter()
  with pytest.raises(ValueError) as error:
    take(frames_config(str(tmp_path)), "train", 1, skips=skips)
  line = str(error.value)
  assert line.startswith(
    f"None of this host's 2 frame sequences in {tmp_path} can be used: 2 skipped (corrupt: 2), "
    f"e.g. {tmp_path / 'a'} (corrupt: 00000001.png: "
  )
  assert line.endswith("or set data.path to other data.") and "\n" not in line
  assert "function_node" not in line and skips.counts() == {"corrupt": 2}
