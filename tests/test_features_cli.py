"""`jaxres features` and `jaxres.features.extract_features`: per-window features of a model layer."""

import json
import os

import jax
import numpy as np
import pytest
import test_timeline
from test_timeline import data_config, moving_frames

from jaxres import cli, features, models
from jaxres.data import windows as windows_lib
from jaxres.data.video_write import write_video

# The tiny model and its weights published by name, as in the timeline tests.
tiny, published = test_timeline.tiny, test_timeline.published


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
  root = tmp_path_factory.mktemp("feature_videos")
  (root / "folder" / "sub").mkdir(parents=True)
  paths = [
    write_video(str(root / "folder" / "a.mp4"), moving_frames(21, seed=1), fps=10),
    write_video(str(root / "folder" / "sub" / "b.mp4"), moving_frames(30, seed=2), fps=10),
  ]
  (root / "folder" / "broken.mp4").write_text("not a video")
  return root, paths


def test_each_row_is_the_models_layer_on_that_windows_clip(tiny, videos):
  model, variables = tiny
  _, paths = videos
  data = data_config()
  bad = os.path.join(os.path.dirname(paths[0]), "broken.mp4")
  failed = []
  results = list(
    features.extract_features(
      [paths[0], bad, paths[1]],
      model,
      variables,
      data,
      layer="stage4",
      windowing=windows_lib.Windowing(stride_frames=4),
      on_error=lambda path, error: failed.append((path, error.reason)),
    )
  )
  stage4 = jax.jit(lambda v, x: models.features(model, v, x)[1]["stage4"])  # one view a call
  assert failed == [(bad, "corrupt")] and [r[0] for r in results] == [paths[0], paths[1]]
  for path, times, feats in results:
    _, windows = windows_lib.stream_windows(path, data, windows_lib.Windowing(stride_frames=4))
    windows = list(windows)
    assert feats.shape == (len(windows), 64) and times.shape == (len(windows), 2)
    for row, when, w in zip(feats, times, windows):
      direct = stage4(variables, w.views)
      np.testing.assert_allclose(row, direct.mean(axis=(0, 1, 2, 3)), atol=1e-5)
      assert tuple(when) == pytest.approx((w.start_time, w.end_time))
  assert len(results[0][1]) == (21 - 7) // 4 + 1
  with pytest.raises(ValueError, match="layer 'stage9' is not one of the model's"):
    next(features.extract_features(paths, model, variables, data, layer="stage9"))


def test_command_writes_one_npy_per_video_and_skips_the_corrupt_one(published, videos, capsys):
  root, paths = videos
  out = root / "out"
  argv = ["features", str(root / "folder"), "--out", str(out), "--weights", published]
  assert cli.main(argv + ["--no-progress"]) == 0
  captured = capsys.readouterr()
  assert "wrote features of 2 of 3 video(s)" in captured.out
  assert "skipped 1 unreadable" in captured.out and "broken.mp4" in captured.out
  a, b = np.load(out / "a.npy"), np.load(out / "sub" / "b.npy")
  assert a.shape == (3, 64) and b.shape == (4, 64)  # floor((N - 7) / 7) + 1 windows of pre_logits
  sidecar = json.load(open(out / "sub" / "b.json"))
  assert sidecar["layer"] == "pre_logits" and sidecar["video"] == os.path.abspath(paths[1])
  assert sidecar["times"][1] == pytest.approx([0.7, 1.4])
  assert not os.path.exists(out / "broken.npy")
  # A rerun replaces its own outputs; an unrelated file in the way is refused before any work.
  assert cli.main(argv + ["--no-progress", "--layer", "stage3"]) == 0
  assert json.load(open(out / "a.json"))["layer"] == "stage3"
  (out / "sub" / "b.json").write_text('{"mine": true}')
  assert cli.main(argv + ["--no-progress"]) == 2
  assert "b.npy exists and was not written by jaxres features" in capsys.readouterr().err
  assert json.load(open(out / "sub" / "b.json")) == {"mine": True}
  # Only unreadable files: exit 1; an unknown layer: a usage error naming the layers.
  only_bad = ["features", str(root / "folder" / "broken.mp4"), "--out", str(root / "o2")]
  assert cli.main(only_bad + ["--weights", published, "--no-progress"]) == 1
  assert cli.main(only_bad + ["--weights", published, "--layer", "nope"]) == 2
  assert "--layer 'nope' is not one of r3d_tiny's: pre_logits, stage1" in capsys.readouterr().err


def test_out_is_created_only_when_a_file_is_written(published, videos, tmp_path):
  root, _ = videos
  bad = str(root / "folder" / "broken.mp4")
  command = ["features", bad, "--weights", published, "--no-progress", "--out"]
  assert cli.main(command + [str(tmp_path / "new" / "feats")]) == 1
  assert os.listdir(tmp_path) == []  # neither --out nor its missing parent
  (tmp_path / "mine").mkdir()  # the user's own (empty) folder stays
  assert cli.main(command + [str(tmp_path / "mine")]) == 1
  assert sorted(os.listdir(tmp_path)) == ["mine"] and os.listdir(tmp_path / "mine") == []


@pytest.mark.parametrize("failing", ["npy", "json"])
def test_a_failed_write_leaves_no_folder_it_created_and_keeps_the_users(
  published, videos, tmp_path, monkeypatch, capsys, failing
):
  import errno

  from jaxres import atomic_files

  def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")

  monkeypatch.setattr(
    atomic_files, "atomic_open" if failing == "npy" else "write_atomic", full_disk
  )
  _, paths = videos
  command = ["features", paths[0], "--weights", published, "--no-progress", "--out"]
  (tmp_path / "mine").mkdir()
  for out in (tmp_path / "new" / "feats", tmp_path / "mine"):
    assert cli.main(command + [str(out)]) == 1
    err = capsys.readouterr().err
    assert err == "jaxres features: [Errno 28] No space left on device\n", err
  assert sorted(os.listdir(tmp_path)) == ["mine"] and os.listdir(tmp_path / "mine") == []
