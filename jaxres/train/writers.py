"""Where metrics go: a JSON-lines log, TensorBoard event files and, at the end, a curve PNG.

TensorBoard gets the scalars, pictures of each evaluation (`write_images`: a confusion matrix, SR
crops; made by `jaxres.train.pictures`) and the run's hyperparameters with its config as text
(`write_hparams`).

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
import numpy as np

from jaxres.atomic_files import atomic_open


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
      f.write(
        json.dumps(
          {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in line.items()
          }
        )
        + "\n"
      )
    if self._tb is not None:
      tf = _tensorflow()
      writer = self._summary_writer(split)
      with writer.as_default(step=int(step)):
        for k, v in scalars.items():
          tf.summary.write(k, tf.constant(v, tf.float32), metadata=_scalar_metadata())
      writer.flush()  # as soon as written, like metrics.jsonl: runs are watched while they train

  def write_images(self, step: int, images: Mapping[str, Any], *, split: str = "eval") -> None:
    """Records uint8 RGB images (`[H, W, 3]` or `[N, H, W, 3]`) for TensorBoard's images tab.

    Written as `tf.summary.image` writes them (PNG strings tagged for the images plugin), through
    `tf.summary.write`, so the `tensorboard` package is not needed.

    Args:
      step: the training step.
      images: tag -> image(s).
      split: the TensorBoard run.

    Example:
      >>> writer.write_images(200, {"confusion_matrix": image})
    """
    if not self.enabled or self._tb is None or not images:
      return
    tf = _tensorflow()
    writer = self._summary_writer(split)
    with writer.as_default(step=int(step)):
      for tag, image in images.items():
        image = np.asarray(image, np.uint8)
        image = image[None] if image.ndim == 3 else image
        pngs = [tf.io.encode_png(frame) for frame in image]
        size = [tf.as_string(image.shape[2]), tf.as_string(image.shape[1])]
        tf.summary.write(tag, tf.stack(size + pngs), metadata=_plugin_metadata("images"))
    writer.flush()

  def write_hparams(self, hparams: Mapping[str, Any], *, text: str = "") -> None:
    """Records the run's hyperparameters for TensorBoard's HParams tab, and `text` (e.g. the whole
    config) as a text summary `config`.

    The HParams summary needs the `tensorboard` package (its `hparams` plugin API); without it
    only the text is written. It goes to the TensorBoard folder itself, whose runs (`train`,
    `eval`) hold the metrics the HParams tab shows next to it.

    Args:
      hparams: name -> bool, int, float or str (other values are written as their str).
      text: markdown for the `config` text summary (none when empty).

    Example:
      >>> writer.write_hparams(flat_hparams(config), text=config.to_json_best_effort())
    """
    if not self.enabled or self._tb is None:
      return
    tf = _tensorflow()
    writer = self._summary_writer("")
    values = {
      k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in hparams.items()
    }
    with writer.as_default(step=0):
      try:
        from tensorboard.plugins.hparams import api as hp  # pylint: disable=import-outside-toplevel
      except ImportError:
        hp = None
      if hp is not None:
        hp.hparams(values)
      if text:
        tf.summary.write("config", tf.constant(text), metadata=_plugin_metadata("text"))
    writer.flush()

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
      with atomic_open(self.path) as f:
        f.writelines(kept)
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
  return _plugin_metadata("scalars")


def _plugin_metadata(plugin: str):
  from tensorflow.core.framework import summary_pb2

  # A TensorBoard plugin's data, version 0 (empty content), as tf.summary.scalar/image/text write it.
  return summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin, content=b"")
  )


def flat_hparams(config: Any, prefix: str = "") -> dict[str, Any]:
  """A config (or nested dict) as `{"optimizer.learning_rate": 0.05, ...}` of bool/int/float/str.

  Example:
    >>> flat_hparams(load_config("demo"))["model.name"]
    'r3d_tiny'
  """
  items = config.items() if hasattr(config, "items") else []
  out: dict[str, Any] = {}
  for key, value in items:
    name = f"{prefix}{key}"
    if hasattr(value, "items"):
      out.update(flat_hparams(value, name + "."))
    elif isinstance(value, (bool, int, float, str)):
      out[name] = value
    else:
      out[name] = str(value)
  return out


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
    second = (
      "accuracy",
      [
        ("train", "-", series("train", "accuracy")),
        ("eval", "o-", series("eval", "accuracy")),
        ("eval (video)", "s--", series("eval", "video_accuracy")),
      ],
    )
  else:
    second = (
      "PSNR (dB)",
      [
        ("train (RGB)", "-", series("train", "psnr")),
        ("eval PSNR-Y", "o-", series("eval", "psnr_y")),
        ("eval bicubic PSNR-Y", "s--", series("eval", "psnr_y_bicubic")),
      ],
    )
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
