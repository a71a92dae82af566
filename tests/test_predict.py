"""`jaxres predict` and `jaxres.predict`: a trained run classifies video files as `jaxres eval` would."""

import json
import os

import jax
import numpy as np
import pytest

from jaxres import cli, predict
from jaxres.data import pipeline
from jaxres.data.config import default_data_config
from jaxres.data.video import DecodeError
from jaxres.train.run import load_run


@pytest.fixture(scope="module")
def run(tiny_classifier_run):
  workdir, demo = tiny_classifier_run
  bad = os.path.join(os.path.dirname(workdir), "broken.mp4")
  with open(bad, "w") as f:
    f.write("not a video")
  videos = [os.path.join(demo, "up", "up_g00.mp4"), os.path.join(demo, "left", "left_g00.mp4")]
  return load_run(workdir), workdir, videos, bad


@pytest.mark.slow  # trains a tiny run (shared with tests/test_export.py)
def test_logits_are_the_mean_of_the_model_on_the_eval_pipelines_views(run):
  loaded, workdir, videos, _ = run
  data = predict.view_config(loaded.config.data, clips=2, crops=3)
  assert predict.run_class_names(workdir) == ("down", "left", "right", "up")
  # The eval pipeline's views of the same videos: what `jaxres eval` scores.
  names = {e.video_id: e.path for e in pipeline.video_list(data, "eval").entries}
  ds, _ = pipeline.build_dataset(data, "eval", batch_size=6, seed=0)
  by_path = {}
  for batch in ds.as_numpy_iterator():
    ids = set(batch["video_id"][batch["mask"] > 0])
    assert len(ids) == 1  # 6 views per video, 6 per batch
    by_path[os.path.realpath(names[ids.pop()])] = batch["video"]
  apply = jax.jit(lambda v, x: loaded.model.apply(v, x, train=False))
  for path in videos:
    views = by_path[os.path.realpath(path)]
    np.testing.assert_array_equal(predict.video_views(path, data), views)
    expected = np.asarray(apply(loaded.variables, views)).mean(0)
    p = predict.predict_video(path, loaded.model, loaded.variables, data, batch_size=3)
    assert p.num_views == 6 and p.logits.shape == (4,)
    np.testing.assert_allclose(p.logits, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p.probabilities, jax.nn.softmax(expected), rtol=1e-5)
    top = p.top_k(2, ["down", "left", "right", "up"])
    assert [name for name, _ in top] == [
      ["down", "left", "right", "up"][i] for i in np.argsort(-expected)[:2]
    ]


@pytest.mark.slow
def test_a_folder_of_the_frames_predicts_as_the_video(run, tmp_path):
  import imageio.v3 as iio

  from jaxres.data import video

  loaded, _, videos, _ = run
  for i, frame in enumerate(video.read_video(videos[0]).frames):
    iio.imwrite(tmp_path / f"{i:05d}.png", frame)
  data = predict.view_config(loaded.config.data, clips=2, crops=3)
  np.testing.assert_array_equal(
    predict.video_views(str(tmp_path), data), predict.video_views(videos[0], data)
  )


def test_unreadable_and_missing_files_raise_named_errors(tmp_path):
  bad = tmp_path / "broken.mp4"
  bad.write_text("not a video")
  with pytest.raises(DecodeError, match="broken.mp4 as a video: corrupt"):
    predict.video_views(str(bad), default_data_config())
  with pytest.raises(FileNotFoundError, match="No such video file"):
    predict.video_views(str(tmp_path / "missing.mp4"), default_data_config())
  with pytest.raises(ValueError, match="super_resolution model"):
    predict.check_classifier("edsr_bicubic_tiny")


@pytest.mark.slow
def test_command_prints_top_k_writes_json_and_counts_skips(run, tmp_path, capsys):
  loaded, workdir, videos, bad = run
  out = str(tmp_path / "p.json")
  code = cli.main(
    [
      "predict",
      videos[0],
      bad,
      videos[1],
      "--checkpoint",
      workdir,
      "--top-k",
      "2",
      "--json",
      out,
      "--no-progress",
    ]
  )
  captured = capsys.readouterr()
  assert code == 0, captured.err
  assert "skipping" in captured.err and "broken.mp4" in captured.err
  assert "classified 2 of 3 video(s)" in captured.out and "skipped 1 unreadable" in captured.out
  assert f"wrote {out}" in captured.out.splitlines()[-1]
  result = json.load(open(out))
  assert result["skipped"] == {"corrupt": 1} and result["class_names"] == [
    "down",
    "left",
    "right",
    "up",
  ]
  assert [r["path"] for r in result["predictions"]] == videos
  direct = predict.predict_video(
    videos[1], loaded.model, loaded.variables, loaded.config
  )  # whole config
  np.testing.assert_allclose(
    result["predictions"][1]["probabilities"], direct.probabilities, rtol=1e-5
  )
  first = result["predictions"][1]["top_k"][0]
  assert f"{videos[1]}: {first['class']} {first['probability']:.3f}" in captured.out

  # Only unreadable files: exit code 1. A labels file names the classes; one of the wrong length
  # is refused.
  assert cli.main(["predict", bad, "--checkpoint", workdir, "--no-progress"]) == 1
  assert "classified 0 of 1" in capsys.readouterr().out
  labels = tmp_path / "labels.txt"
  labels.write_text("a\nb\nc\nd\n")
  assert (
    cli.main(
      ["predict", videos[0], "--checkpoint", workdir, "--labels", str(labels), "--top-k", "4"]
    )
    == 0
  )
  line = capsys.readouterr().out.splitlines()[0]
  assert sorted(part.split()[0] for part in line.split(": ", 1)[1].split(", ")) == list("abcd")
  labels.write_text("a\nb\n")
  assert cli.main(["predict", videos[0], "--checkpoint", workdir, "--labels", str(labels)]) == 1
  assert "has 2 names, the model 4 classes" in capsys.readouterr().err


@pytest.mark.slow  # trains a tiny run (shared with tests/test_export.py)
def test_published_weights_predict_as_the_run_they_came_from(run, tmp_path, monkeypatch, capsys):
  """A run's variables published as weights (served from 127.0.0.1) and used by name with the
  run's preprocessing give the run's own predictions."""
  from local_server import LocalServer

  from jaxres import weights
  from jaxres.convert import save_variables

  loaded, workdir, videos, _ = run
  served = tmp_path / "served"
  served.mkdir()
  save_variables(jax.device_get(loaded.variables), str(served / "tiny.msgpack"))
  monkeypatch.setenv("JAXRES_CACHE_DIR", str(tmp_path / "cache"))
  d = loaded.config.data
  server = LocalServer(served)
  try:
    weights.register(
      "r3d_tiny.demo_test",
      url=f"{server.url}/tiny.msgpack",
      arch="r3d_tiny",
      converter="jaxres",
      model_kwargs={"num_classes": 4},
      classes=("down", "left", "right", "up"),
      preprocessing={
        k: d[k]
        for k in (
          "num_frames",
          "frame_stride",
          "resize",
          "crop_size",
          "mean",
          "std",
          "eval_clips",
          "eval_crops",
        )
      },
      overwrite=True,
    )
    out = str(tmp_path / "p.json")
    assert (
      cli.main(
        [
          "predict",
          videos[1],
          "--weights",
          "r3d_tiny.demo_test",
          "--top-k",
          "2",
          "--json",
          out,
          "--no-progress",
        ]
      )
      == 0
    )
  finally:
    server.stop()
  captured = capsys.readouterr()
  assert "with r3d_tiny (weights r3d_tiny.demo_test, 1 clip(s) x 1 crop(s) each)" in captured.out
  result = json.load(open(out))
  assert result["weights"] == "r3d_tiny.demo_test" and result["class_names"][0] == "down"
  direct = predict.predict_video(videos[1], loaded.model, loaded.variables, loaded.config)
  np.testing.assert_allclose(
    result["predictions"][0]["probabilities"], direct.probabilities, rtol=1e-5
  )
  # A name that is not registered: one line, exit code 1.
  assert cli.main(["predict", videos[1], "--weights", "r3d_tiny.nothing"]) == 1
  assert "No weights named 'r3d_tiny.nothing'" in capsys.readouterr().err
