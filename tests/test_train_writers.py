"""MetricWriter: metrics.jsonl lines and TensorBoard scalar summaries read back from the event files
(with TensorFlow's own reader), read_metrics, plot_curves, and the writers that write nothing."""

import glob
import json
import os

import numpy as np

from jaxres.train.writers import MetricWriter, curve_panels, plot_curves, read_metrics


def _events(directory):
  """(step, tag, value, plugin) of every summary value in a split's event files."""
  import tensorflow as tf

  out = []
  for path in sorted(glob.glob(os.path.join(directory, "events.out.tfevents*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        out.append(
          (
            event.step,
            value.tag,
            float(tf.make_ndarray(value.tensor)),
            value.metadata.plugin_data.plugin_name,
          )
        )
  return out


def test_scalars_go_to_jsonl_and_tensorboard(tmp_path):
  writer = MetricWriter(str(tmp_path), enabled=True)
  writer.write(
    10,
    {
      "loss": 0.5,
      "accuracy": np.float32(0.25),
      "name": "skipped",
      "vector": np.ones(3),
      "nan": float("nan"),
    },
    split="train",
  )
  writer.write(20, {"loss": np.float64(0.375)}, split="train")
  writer.write(20, {"accuracy": 0.75, "video_accuracy": 1.0}, split="eval")
  writer.close()

  assert writer.path == os.path.join(str(tmp_path), "metrics.jsonl")
  with open(writer.path) as f:
    lines = [json.loads(line) for line in f]
  assert [(r["split"], r["step"]) for r in lines] == [("train", 10), ("train", 20), ("eval", 20)]
  assert lines[0]["loss"] == 0.5 and lines[0]["accuracy"] == 0.25 and lines[0]["nan"] is None
  assert "name" not in lines[0] and "vector" not in lines[0]

  train = _events(tmp_path / "tensorboard" / "train")
  assert [(s, t) for s, t, _, _ in train] == [
    (10, "loss"),
    (10, "accuracy"),
    (10, "nan"),
    (20, "loss"),
  ]
  np.testing.assert_allclose([v for _, _, v, _ in train], [0.5, 0.25, np.nan, 0.375])
  assert {p for *_, p in train} == {"scalars"}  # shown in TensorBoard's scalars dashboard
  assert _events(tmp_path / "tensorboard" / "eval") == [
    (20, "accuracy", 0.75, "scalars"),
    (20, "video_accuracy", 1.0, "scalars"),
  ]


def test_read_metrics_keeps_a_resumed_runs_latest_records_and_plot_curves(tmp_path):
  writer = MetricWriter(str(tmp_path), tensorboard=False, enabled=True)
  for step, loss in ((1, 2.0), (2, 1.5), (2, 1.25), (3, 1.0)):  # step 2 logged again after a resume
    writer.write(step, {"loss": loss, "accuracy": 0.1 * step})
  writer.write(3, {"loss": 1.1, "accuracy": 0.5, "video_accuracy": 0.6}, split="eval")
  writer.close()
  assert not os.path.exists(tmp_path / "tensorboard")
  records = read_metrics(writer.path)
  assert [(r["split"], r["step"], r["loss"]) for r in records] == [
    ("eval", 3, 1.1),
    ("train", 1, 2.0),
    ("train", 2, 1.25),
    ("train", 3, 1.0),
  ]
  png = plot_curves(writer.path, str(tmp_path / "curves.png"), title="test")
  assert png == str(tmp_path / "curves.png") and os.path.getsize(png) > 1000


def test_a_disabled_writer_writes_nothing(tmp_path):
  workdir = tmp_path / "run"
  writer = MetricWriter(str(workdir), enabled=False)  # what processes other than 0 get
  writer.write(1, {"loss": 1.0})
  writer.flush()
  writer.close()
  assert not workdir.exists()


def test_flush_and_close_twice_are_harmless(tmp_path):
  writer = MetricWriter(str(tmp_path), enabled=True)
  writer.write(1, {"loss": 1.0})
  writer.flush()
  writer.close()
  writer.close()
  assert len(_events(tmp_path / "tensorboard" / "train")) == 1


def test_curves_show_accuracy_for_classification_and_psnr_against_bicubic_for_sr(tmp_path):
  classification = [
    {"split": "train", "step": 1, "loss": 1.0, "accuracy": 0.5},
    {"split": "eval", "step": 1, "loss": 1.1, "accuracy": 0.4, "video_accuracy": 0.6},
  ]
  panels = dict(curve_panels(classification))
  assert list(panels) == ["loss", "accuracy"]
  assert [legend for legend, _, _ in panels["accuracy"]] == ["train", "eval", "eval (video)"]
  sr = [
    {"split": "train", "step": 1, "loss": 0.1, "psnr": 25.0},
    {"split": "eval", "step": 1, "psnr_y": 31.0, "psnr_y_bicubic": 29.5, "gain_y": 1.5},
  ]
  panels = dict(curve_panels(sr))
  assert list(panels) == ["loss", "PSNR (dB)"]  # no empty accuracy panel
  assert {legend: points for legend, _, points in panels["PSNR (dB)"]} == {
    "train (RGB)": [(1, 25.0)],
    "eval PSNR-Y": [(1, 31.0)],
    "eval bicubic PSNR-Y": [(1, 29.5)],
  }
  path = tmp_path / "metrics.jsonl"
  path.write_text("".join(json.dumps(r) + "\n" for r in sr))
  png = plot_curves(str(path), str(tmp_path / "curves.png"))
  assert os.path.getsize(png) > 1000
