"""Where metrics go: a JSON-lines log, TensorBoard event files and, at the end, a curve PNG.

The event files are written by `tf.summary` (TensorFlow's maintained writer): `tf.summary.write`
of float32 scalars tagged for TensorBoard's scalars plugin, which is what `tf.summary.scalar` writes
but without needing the `tensorboard` package installed (only to view the files). TensorFlow is
imported when the first summary is written. Only process 0 writes; other processes get a writer
that does nothing.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any, Mapping

import jax


class MetricWriter:
  """Appends `{"step", "split", "time", ...metrics}` lines to `workdir/metrics.jsonl` and writes the
  same scalars as TensorBoard scalar summaries under `workdir/tensorboard/<split>`.

  Args:
    workdir: the run's folder.
    tensorboard: also write TensorBoard event files (needs TensorFlow: the `video` extra).
    enabled: write at all (default: only on process 0).

  Example:
    >>> writer = MetricWriter("/tmp/run")
    >>> writer.write(100, {"loss": 0.3}, split="train")
    >>> writer.close()
  """

  def __init__(self, workdir: str, *, tensorboard: bool = True, enabled: bool | None = None):
    self.enabled = jax.process_index() == 0 if enabled is None else enabled
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._tb_dir = os.path.join(workdir, "tensorboard")
    self._tb = {} if tensorboard else None  # split -> tf.summary writer, made on first use
    if self.enabled:
      os.makedirs(workdir, exist_ok=True)

  def _summary_writer(self, split: str):
    if split not in self._tb:
      tf = _tensorflow()
      self._tb[split] = tf.summary.create_file_writer(os.path.join(self._tb_dir, split))
    return self._tb[split]

  def write(self, step: int, metrics: Mapping[str, Any], *, split: str = "train") -> None:
    """Records the scalar `metrics` at `step` (values that are not scalars are skipped).

    Args:
      step: the training step.
      metrics: name -> number (Python, numpy or jax scalar).
      split: "train", "eval", ...: a TensorBoard run of its own.
    """
    if not self.enabled:
      return
    scalars = {}
    for k, v in metrics.items():
      try:
        scalars[k] = float(v)
      except (TypeError, ValueError):
        continue
    line = {"step": int(step), "split": split, "time": time.time(), **scalars}
    with open(self.path, "a") as f:
      f.write(json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                          for k, v in line.items()}) + "\n")
    if self._tb is not None:
      tf = _tensorflow()
      writer = self._summary_writer(split)
      with writer.as_default(step=int(step)):
        for k, v in scalars.items():
          tf.summary.write(k, tf.constant(v, tf.float32), metadata=_scalar_metadata())
      writer.flush()  # as soon as written, like metrics.jsonl: runs are watched while they train

  def truncate_after(self, step: int) -> int:
    """Drops the rows of steps after `step`, for a run resumed from the checkpoint of `step`.

    The steps after it run again and log again, so their old rows (written before the process
    was killed, or after a damaged checkpoint) would be duplicates. Rewritten atomically.

    Args:
      step: the step the run resumes from (0: a fresh start drops every row).

    Returns:
      The number of rows dropped.

    Example:
      >>> writer.truncate_after(ckpt.latest_step() or 0)
    """
    if not self.enabled or not os.path.exists(self.path):
      return 0
    with open(self.path) as f:
      lines = [line for line in f if line.strip()]
    kept = []
    for line in lines:
      try:
        if json.loads(line)["step"] <= step:
          kept.append(line if line.endswith("\n") else line + "\n")
      except (ValueError, KeyError, TypeError):
        continue  # a line cut short by a kill mid-write
    if len(kept) < len(lines):
      with open(self.path + ".tmp", "w") as f:
        f.writelines(kept)
      os.replace(self.path + ".tmp", self.path)
    return len(lines) - len(kept)

  def flush(self) -> None:
    for w in (self._tb or {}).values():
      w.flush()

  def close(self) -> None:
    for w in (self._tb or {}).values():
      w.close()
    if self._tb:
      self._tb.clear()


def _scalar_metadata():
  from tensorflow.core.framework import summary_pb2

  # TensorBoard's scalars plugin, data version 0 (empty content), as tf.summary.scalar writes it.
  return summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(
      plugin_name="scalars", content=b""))


def _tensorflow():
  # Imported on first use: slow, and only process 0 writes. tfhost hides the GPUs from TensorFlow
  # (they are JAX's) before TensorFlow initialises its devices.
  from jaxres.data.tfhost import tf
  return tf


def read_metrics(path: str) -> list[dict]:
  """The records of a `metrics.jsonl` file (a resumed run's repeated steps keep the latest)."""
  records: dict[tuple, dict] = {}
  with open(path) as f:
    for line in f:
      if line.strip():
        r = json.loads(line)
        records[(r["split"], r["step"])] = r
  return sorted(records.values(), key=lambda r: (r["split"], r["step"]))


def curve_panels(records: list[dict]) -> list[tuple[str, list[tuple[str, str, list]]]]:
  """What `plot_curves` draws: `[(y label, [(legend, style, [(step, value), ...]), ...]), ...]`.

  Loss, then accuracy for classification runs (train, eval clips, eval videos) or, for runs
  without accuracy (super-resolution), PSNR: train (RGB), eval PSNR-Y and its bicubic baseline.

  Args:
    records: rows of `metrics.jsonl` (`read_metrics`).

  Returns:
    The panels, each with its non-empty series.

  Example:
    >>> [label for label, _ in curve_panels(read_metrics("runs/sr/metrics.jsonl"))]
    ['loss', 'PSNR (dB)']
  """
  def series(split, key):
    return [(r["step"], r[key]) for r in records if r["split"] == split and r.get(key) is not None]

  loss = ("loss", [("train", "-", series("train", "loss")), ("eval", "o-", series("eval", "loss"))])
  if any(r.get("accuracy") is not None for r in records):
    second = ("accuracy", [("train", "-", series("train", "accuracy")),
                           ("eval", "o-", series("eval", "accuracy")),
                           ("eval (video)", "s--", series("eval", "video_accuracy"))])
  else:
    second = ("PSNR (dB)", [("train (RGB)", "-", series("train", "psnr")),
                            ("eval PSNR-Y", "o-", series("eval", "psnr_y")),
                            ("eval bicubic PSNR-Y", "s--", series("eval", "psnr_y_bicubic"))])
  return [(label, [line for line in lines if line[2]]) for label, lines in (loss, second)]


def plot_curves(metrics_path: str, png_path: str, *, title: str = "") -> str:
  """Plots `curve_panels` of a `metrics.jsonl` file: loss, and accuracy or (SR) PSNR, by step.

  Args:
    metrics_path: the JSON-lines log.
    png_path: where the figure goes.
    title: figure title.

  Returns:
    `png_path`.

  Example:
    >>> plot_curves("/tmp/run/metrics.jsonl", "/tmp/run/curves.png")
  """
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  panels = curve_panels(read_metrics(metrics_path))
  fig, axes = plt.subplots(1, len(panels), figsize=(10, 4))
  for ax, (label, lines) in zip(axes, panels):
    for legend, style, points in lines:
      ax.plot(*zip(*points), style, label=legend)
    ax.set_xlabel("step")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    if lines:
      ax.legend()
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(png_path, dpi=100)
  plt.close(fig)
  return png_path
