"""`jaxres predict --window`: every window of a long video classified, streaming, as one clip would be."""

import csv
import json
import os

import imageio.v3 as iio
import jax
import numpy as np
import pytest
from model_init import init_variables

from jaxres import cli, models, predict
from jaxres.data import video
from jaxres.data import windows as windows_lib
from jaxres.data.config import default_data_config
from jaxres.data.video_write import write_video

NAMES = ("down", "left", "right", "up")


def data_config(clips=1, crops=1):
  """4 frames 2 apart, short side 20, crop 16: a clip covers 7 frames."""
  c = default_data_config()
  c.num_frames, c.frame_stride, c.resize, c.crop_size = 4, 2, 20, 16
  return predict.view_config(c, clips=clips, crops=crops)


@pytest.fixture(scope="module")
def tiny():
  """r3d_tiny with 4 classes, its classifier scaled so the probabilities differ from window to
  window (a fresh classifier gives each class about 1/4 everywhere)."""
  model = models.get("r3d_tiny", num_classes=4)
  variables = init_variables(model, np.zeros((1, 4, 16, 16, 3), np.float32), train=False)
  params = dict(variables["params"])
  params["fc"] = jax.tree.map(lambda a: a * 300.0, params["fc"])
  return model, {**variables, "params": params}


def moving_frames(n: int, size=(24, 32), seed=0) -> np.ndarray:
  """`n` frames of a bright square moving over noise: neighbouring windows differ."""
  rng = np.random.default_rng(seed)
  frames = rng.integers(0, 80, (n,) + size + (3,), dtype=np.uint8)
  for t in range(n):
    y, x = (2 * t) % (size[0] - 8), (3 * t) % (size[1] - 8)
    frames[t, y : y + 8, x : x + 8] = (255, 200, 40)
  return frames


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("timeline") / "long.mp4")
  return write_video(path, moving_frames(40), fps=10)


def ordinary_prediction(frames, model, variables, data, folder):
  """`predict_video` of a video made of `frames` alone (lossless PNGs in `folder`)."""
  folder.mkdir()
  for i, frame in enumerate(frames):
    iio.imwrite(folder / f"{i:03d}.png", frame)
  return predict.predict_video(str(folder), model, variables, data)


def test_windows_count_and_predict_as_a_video_of_their_frames(tiny, long_video, tmp_path):
  model, variables = tiny
  n = 40
  # One clip per window (7 frames), 3 apart: floor((40 - 7) / 3) + 1 = 12 windows.
  fps, timeline = predict.predict_timeline(
    long_video, model, variables, data_config(), windows_lib.Windowing(stride_frames=3)
  )
  assert fps == pytest.approx(10.0)
  timeline = list(timeline)
  starts = [p.start for p in timeline]
  assert starts == list(range(0, n - 7 + 1, 3)) and len(starts) == (n - 7) // 3 + 1
  decoded = video.read_video(long_video).frames
  for p in (timeline[1], timeline[-1]):
    ordinary = ordinary_prediction(
      decoded[p.start : p.end], model, variables, data_config(), tmp_path / f"w{p.start}"
    )
    np.testing.assert_allclose(p.logits, ordinary.logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(p.probabilities, ordinary.probabilities, atol=1e-5)
  assert np.ptp([p.probabilities.max() for p in timeline]) > 0.01  # the windows do differ


@pytest.mark.slow  # 5 ordinary predictions of 6 views each through tf.data (~30 s)
def test_every_window_of_several_views_predicts_as_a_video_of_its_frames(
  tiny, long_video, tmp_path
):
  model, variables = tiny
  n = 40
  # In seconds, 2 clips x 3 crops a window: 1.0 s = 10 frames every 0.7 s = 7 frames.
  data = data_config(clips=2, crops=3)
  fps, timeline = predict.predict_timeline(
    long_video, model, variables, data, windows_lib.Windowing(window=1.0, stride=0.7), batch_size=3
  )
  timeline = list(timeline)
  assert len(timeline) == (n - 10) // 7 + 1 == 5
  decoded = video.read_video(long_video).frames
  for p in timeline:
    assert p.end - p.start == 10 and p.num_views == 6
    assert (p.start_time, p.end_time) == pytest.approx((p.start / 10, p.end / 10))
    folder = tmp_path / f"w{p.start}"
    ordinary = ordinary_prediction(decoded[p.start : p.end], model, variables, data, folder)
    np.testing.assert_allclose(p.logits, ordinary.logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(p.probabilities, ordinary.probabilities, atol=1e-5)


def test_frames_held_do_not_grow_with_the_length(tmp_path):
  def peak(n, windowing):
    path = write_video(str(tmp_path / f"v{n}.mp4"), moving_frames(n, size=(16, 16)), fps=25)
    _, windows = windows_lib.stream_windows(path, data_config(), windowing)
    held = [(w.held, w.start) for w in windows]
    return len(held), max(h for h, _ in held)

  for windowing, span, stride in (
    (windows_lib.Windowing(), 7, 7),
    (windows_lib.Windowing(window_frames=12, stride_frames=2), 12, 2),
  ):
    short, long = peak(30, windowing), peak(300, windowing)
    assert short[0] == (30 - span) // stride + 1 and long[0] == (300 - span) // stride + 1
    # A video 10x longer holds no more frames at once: those of about one window.
    assert long[1] == short[1] <= span


def test_a_video_shorter_than_a_window_is_one_looped_window(tiny, tmp_path):
  path = write_video(str(tmp_path / "short.mp4"), moving_frames(5), fps=10)
  _, windows = windows_lib.stream_windows(path, data_config(), windows_lib.Windowing())
  (window,) = list(windows)
  assert (window.start, window.end) == (0, 5) and window.views.shape == (1, 4, 16, 16, 3)
  strict = data_config()
  strict.short_video = "skip"
  with pytest.raises(video.DecodeError, match="short"):
    list(windows_lib.stream_windows(path, strict, windows_lib.Windowing())[1])


def test_grid_frames_resample_a_variable_rate_stream_as_read_video():
  images = [np.full((2, 2, 3), i, np.uint8) for i in range(4)]
  times = [0.0, 0.1, 0.35, 0.4]  # a gap: grid frames 2 and 3 (0.2, 0.3 s) show frame 1
  grid = [int(f[0, 0, 0]) for f in windows_lib.grid_frames(zip(images, times), 10.0)]
  # read_video's rule: the last frame shown by each grid time, a quarter frame of tolerance.
  expected = np.searchsorted(times, np.arange(5) / 10 + 0.025, side="right") - 1
  assert grid == list(expected) == [0, 1, 1, 1, 3]


@pytest.fixture(scope="module")
def published(tiny, tmp_path_factory):
  """The tiny model published as weights by name (served from 127.0.0.1)."""
  from local_server import LocalServer

  from jaxres import weights
  from jaxres.convert import save_variables

  _, variables = tiny
  root = tmp_path_factory.mktemp("published")
  (root / "served").mkdir()
  save_variables(jax.device_get(variables), str(root / "served" / "tiny.msgpack"))
  cache = os.environ.get("JAXRES_CACHE_DIR")
  os.environ["JAXRES_CACHE_DIR"] = str(root / "cache")
  server = LocalServer(root / "served")
  c = data_config()
  weights.register(
    "r3d_tiny.timeline_test",
    url=f"{server.url}/tiny.msgpack",
    arch="r3d_tiny",
    converter="jaxres",
    model_kwargs={"num_classes": 4},
    classes=NAMES,
    preprocessing={k: c[k] for k in ("num_frames", "frame_stride", "resize", "crop_size")},
    overwrite=True,
  )
  yield "r3d_tiny.timeline_test"
  server.stop()
  if cache is None:
    os.environ.pop("JAXRES_CACHE_DIR", None)
  else:
    os.environ["JAXRES_CACHE_DIR"] = cache


def test_command_writes_json_csv_and_a_plot(tiny, published, long_video, tmp_path, capsys):
  model, variables = tiny
  out = {k: str(tmp_path / f"t.{k}") for k in ("json", "csv", "png")}
  bad = tmp_path / "broken.mp4"
  bad.write_text("not a video")
  options = ["--weights", published, "--window-frames", "7", "--stride-frames", "3", "--top-k", "2"]
  argv = ["predict", long_video] + options + ["--no-progress"]
  code = cli.main(argv + ["--json", out["json"], "--csv", out["csv"], "--plot", out["png"]])
  captured = capsys.readouterr()
  assert code == 0, captured.err
  assert "classified 12 window(s) of 1 of 1 video(s)" in captured.out
  result = json.load(open(out["json"]))
  (timeline,) = result["timelines"]
  assert result["class_names"] == list(NAMES) and len(timeline["windows"]) == 12
  _, direct = predict.predict_timeline(
    long_video, model, variables, data_config(), windows_lib.Windowing(stride_frames=3)
  )
  for row, p in zip(timeline["windows"], direct):
    np.testing.assert_allclose(row["probabilities"], p.probabilities, atol=1e-5)
    assert row["top_k"][0]["class"] == NAMES[int(np.argmax(p.probabilities))]
    assert (row["start_time"], row["end_time"]) == pytest.approx((p.start_time, p.end_time))
  rows = list(csv.DictReader(open(out["csv"])))
  assert len(rows) == 12 and rows[1]["start_time"] == "0.300" and rows[1]["end_time"] == "1.000"
  assert rows[0]["class_1"] == timeline["windows"][0]["top_k"][0]["class"]
  picture = iio.imread(out["png"])
  assert picture.shape[0] > 300 and picture.shape[1] > 800
  assert len(np.unique(picture.reshape(-1, picture.shape[-1]), axis=0)) > 20  # drawn, not blank

  # Unreadable files are skipped and counted; only unreadable files: exit 1. --plot of two
  # videos, and --csv without windows, are usage errors (2).
  two = ["predict", long_video, str(bad)] + options + ["--no-progress"]
  assert cli.main(two) == 0
  assert "skipped 1 unreadable" in capsys.readouterr().out
  assert cli.main(["predict", str(bad), "--weights", published, "--window", "1"]) == 1
  with pytest.raises(SystemExit) as exit_:
    cli.main(two + ["--plot", out["png"]])
  assert exit_.value.code == 2 and "--plot draws one video's timeline" in capsys.readouterr().err
  with pytest.raises(SystemExit) as exit_:
    cli.main(["predict", long_video, "--weights", published, "--csv", out["csv"]])
  assert exit_.value.code == 2


@pytest.fixture(scope="module")
def tiny_run(tiny, tmp_path_factory):
  """A run folder as `jaxres train` leaves it (config.json, classes.txt, checkpoints/5) holding
  `tiny`'s variables and `data_config()`'s preprocessing, written without training."""
  from jaxres.data.sources import write_class_names
  from jaxres.train import load_config
  from jaxres.train.checkpoint import Checkpointer
  from jaxres.train.run import save_config

  _, variables = tiny
  workdir = str(tmp_path_factory.mktemp("timeline_run"))
  overrides = {"num_frames": 4, "frame_stride": 2, "resize": 20, "crop_size": 16}
  config = load_config(
    "demo",
    ["--config.model.name=r3d_tiny", "--config.model.num_classes=4"]
    + [f"--config.data.{key}={value}" for key, value in overrides.items()],
  )
  save_config(config, workdir)
  write_class_names(workdir, NAMES)
  checkpoints = Checkpointer(os.path.join(workdir, "checkpoints"), keep=1, async_save=False)
  checkpoints.save(5, {**jax.device_get(variables), "opt_state": {"mu": np.zeros(3, np.float32)}})
  checkpoints.close()
  return workdir


def test_command_with_a_run_folder_classifies_every_window_with_its_classes(
  tiny, tiny_run, long_video, tmp_path, capsys
):
  model, variables = tiny
  out = str(tmp_path / "t.json")
  argv = ["predict", long_video, "--checkpoint", tiny_run, "--window-frames", "7"]
  code = cli.main(argv + ["--stride-frames", "3", "--top-k", "2", "--json", out, "--no-progress"])
  captured = capsys.readouterr()
  assert code == 0, captured.err
  assert "classified 12 window(s) of 1 of 1 video(s)" in captured.out
  result = json.load(open(out))
  (timeline,) = result["timelines"]
  assert result["class_names"] == list(NAMES) and result["step"] == 5
  assert result["checkpoint"] == os.path.abspath(tiny_run)
  _, direct = predict.predict_timeline(
    long_video, model, variables, data_config(), windows_lib.Windowing(stride_frames=3)
  )
  direct = list(direct)
  assert len(timeline["windows"]) == len(direct) == (40 - 7) // 3 + 1
  for row, p in zip(timeline["windows"], direct):
    np.testing.assert_allclose(row["probabilities"], p.probabilities, atol=1e-5)
    assert row["top_k"][0]["class"] == NAMES[int(np.argmax(p.probabilities))]
    assert (row["start_time"], row["end_time"]) == pytest.approx((p.start_time, p.end_time))
