"""Classifying video files with a trained model: the eval views of each video, averaged logits.

A video is decoded exactly as the input pipeline decodes an eval video (`jaxres.data.clips`'s
decoder, `jaxres.data.views.eval_views`, then `normalize_batch`): `eval_clips` uniformly spaced
clips x `eval_crops` crops of the data config, so a prediction here is what `jaxres eval` scores.
The model runs on the views in batches and their logits are averaged into one prediction.

`predict_timeline` classifies every window of a long video instead, streaming (`jaxres.data.windows`:
the decoder reads forward once and memory does not grow with the video's length), each window as
`predict_video` would classify a video of just its frames.

Class names come with the run (`classes.txt`, written by `jaxres train` from the dataset's labels)
or from a file of one name per line (`read_labels`) for converted models.

Example:
  >>> from jaxres import load_run
  >>> run = load_run("runs/demo")
  >>> p = predict_video("clip.mp4", run.model, run.variables, run.config.data)
  >>> p.top_k(3, class_names=run_class_names("runs/demo"))
  [('right', 0.97), ('down', 0.02), ('up', 0.01)]
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import itertools
import os
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import jax
import ml_collections
import numpy as np

from jaxres import models
from jaxres.data import clips as clips_lib
from jaxres.data import sources, views
from jaxres.data import windows as windows_lib
from jaxres.data.skips import SkipCounter
from jaxres.data.tfhost import tf
from jaxres.data.video import DecodeError

__all__ = [
  "Prediction",
  "WindowPrediction",
  "predict_video",
  "predict_timeline",
  "forward_function",
  "predict_videos",
  "video_views",
  "view_config",
  "pretrained_data_config",
  "plot_timeline",
  "read_labels",
  "run_class_names",
  "check_classifier",
]


@dataclasses.dataclass(frozen=True)
class Prediction:
  """What a model says about one video.

  Attributes:
    path: the video file.
    logits: float32 `[classes]`, the mean of the views' logits.
    probabilities: float32 `[classes]`, the softmax of `logits`.
    num_views: clips x crops averaged.
  """

  path: str
  logits: np.ndarray
  probabilities: np.ndarray
  num_views: int

  def top_k(
    self, k: int = 5, class_names: Optional[Sequence[str]] = None
  ) -> list[tuple[str, float]]:
    """The `k` most probable classes as `(name, probability)`, most probable first.

    Args:
      k: how many (at most the number of classes).
      class_names: label -> name; without them (or for labels past their end) names are the
        label numbers.

    Returns:
      `[(name, probability), ...]`.

    Example:
      >>> prediction.top_k(2, ["right", "left", "down", "up"])
      [('left', 0.91), ('up', 0.05)]
    """
    order = np.argsort(-self.probabilities, kind="stable")[:k]
    names = list(class_names or ())
    return [
      (names[i] if i < len(names) else str(int(i)), float(self.probabilities[i])) for i in order
    ]


@dataclasses.dataclass(frozen=True)
class WindowPrediction(Prediction):
  """What a model says about one window of a video (`predict_timeline`).

  Attributes:
    start: the window's first frame (on the video's nominal frame grid).
    end: one past its last frame.
    start_time: seconds, `start / fps`.
    end_time: seconds, `end / fps`.
  """

  start: int = 0
  end: int = 0
  start_time: float = 0.0
  end_time: float = 0.0


def view_config(
  data_config: ml_collections.ConfigDict,
  *,
  clips: Optional[int] = None,
  crops: Optional[int] = None,
) -> ml_collections.ConfigDict:
  """A copy of `data_config` with `eval_clips` / `eval_crops` replaced where given.

  Example:
    >>> view_config(run.config.data, clips=10, crops=3).eval_clips
    10
  """
  config = ml_collections.ConfigDict(data_config.to_dict())
  if clips is not None:
    config.eval_clips = int(clips)
  if crops is not None:
    config.eval_crops = int(crops)
  from jaxres.data import config as config_lib  # pylint: disable=import-outside-toplevel

  config_lib.validate(config)  # names a bad clips/crops value
  return config


def pretrained_data_config(preprocessing) -> ml_collections.ConfigDict:
  """The data config that decodes videos as a publisher evaluates its weights.

  Args:
    preprocessing: `PretrainedInfo.preprocessing` (data-config keys: `num_frames`,
      `frame_stride`, `resize`, `crop_size`, `mean`, `std`, `eval_clips`, `eval_crops`); keys
      that are not data-config fields (e.g. `input_range`) are ignored.

  Returns:
    A default data config with those fields set, validated.

  Example:
    >>> _, _, info = load_pretrained("r3d_18.kinetics400")
    >>> pretrained_data_config(info.preprocessing).crop_size
    112
  """
  from jaxres.configs.defaults import default_data_config  # pylint: disable=import-outside-toplevel
  from jaxres.data import config as config_lib  # pylint: disable=import-outside-toplevel

  config = default_data_config()
  for key, value in preprocessing.items():
    if key in config:
      config[key] = tuple(value) if isinstance(value, (list, tuple)) else value
  config_lib.validate(config)
  return config


class _LastSkip(SkipCounter):
  """Keeps why the decoder skipped the file, for the error (instead of logging and counting)."""

  reason, detail = "", ""

  def record(self, path: str, reason: str, detail: str = "") -> bool:
    del path
    self.reason, self.detail = reason, detail
    return True


def video_views(path: str, data_config: ml_collections.ConfigDict) -> np.ndarray:
  """The eval views of one video, as the pipeline makes them for `jaxres eval`.

  Args:
    path: a video file (any format FFmpeg reads), or a folder of its frames as images (read as
      the `frames` source reads them, `data.frame_pattern` naming them; sorted by name).
    data_config: a data config (its `eval_clips`, `eval_crops`, `num_frames`, `frame_stride`,
      `resize`, `crop_size`, `mean`, `std`, `short_video` are used).

  Returns:
    float32 `[clips * crops, T, S, S, 3]`, normalised, clip-major.

  Raises:
    FileNotFoundError: no such file.
    DecodeError: the file is not a readable video (or too short under `short_video="skip"`).

  Example:
    >>> video_views("clip.mp4", run.config.data).shape
    (1, 8, 32, 32, 3)
  """
  if not os.path.exists(path):
    raise FileNotFoundError(f"No such video file: {path}")
  if os.path.isdir(path) and data_config.source != "frames":  # a folder of frame images
    data_config = ml_collections.ConfigDict(data_config.to_dict())
    data_config.source, data_config.lr_path = "frames", ""
  skips = _LastSkip()
  decode = clips_lib.raw_decoder(data_config, "eval", skips, num_videos=1)
  source = tf.data.Dataset.from_tensors({"path": os.path.abspath(path), "label": 0, "video_id": 0})
  # Through tf.data, as in the pipeline (its numpy_function sees bytes there, not eager tensors).
  element = next(iter(source.map(lambda x: decode(x, tf.zeros([2], tf.int64)))))
  if not bool(element["ok"]):
    raise DecodeError(path, skips.reason or "corrupt", skips.detail)
  batch = views.normalize_batch(data_config, views.eval_views(data_config, element))
  return np.asarray(batch["video"], np.float32)


def forward_function(model) -> Callable[[Any, np.ndarray], jax.Array]:
  """A jitted `(variables, views) -> logits` of `model` in eval mode, to share across videos.

  Example:
    >>> forward = forward_function(run.model)
    >>> logits = forward(run.variables, video_views("clip.mp4", run.config.data))
  """
  return jax.jit(lambda variables, x: model.apply(variables, x, train=False))


_forward = forward_function


def check_classifier(model_name: str) -> None:
  """Raises `ValueError` unless `model_name` is a registered classification model of clips."""
  spec = models.spec(model_name)
  if spec.task != "classification":
    raise ValueError(
      f"{model_name} is a {spec.task} model; `predict` classifies videos "
      "(use `jaxres upscale` for super-resolution)."
    )
  if spec.input_rank != 5:
    raise ValueError(f"{model_name} takes images, not clips; `predict` needs a video model.")


def _data_section(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The data config itself, given either it or a whole training config (`run.config`)."""
  return config.data if "data" in config else config


def predict_video(
  path: str,
  model,
  variables,
  data_config: ml_collections.ConfigDict,
  *,
  batch_size: int = 0,
  forward: Optional[Callable] = None,
) -> Prediction:
  """Classifies one video: the model on its eval views (`video_views`), logits averaged.

  Args:
    path: a video file.
    model: a classification model (flax module taking clips `[B, T, H, W, 3]`).
    variables: its variables (`{"params", "batch_stats"}`).
    data_config: the data config the model was trained with (`run.config.data`, or the whole
      `run.config`; `view_config` changes the number of clips and crops).
    batch_size: views per forward call (0: all views of the video at once).
    forward: `(variables, views) -> logits` to use instead of a jitted `model.apply` (reuse one
      across videos to compile once, or pass a deserialised `jax.export` function).

  Returns:
    A `Prediction`.

  Raises:
    FileNotFoundError: no such file.
    DecodeError: not a readable video.

  Example:
    >>> p = predict_video("clip.mp4", run.model, run.variables, run.config.data)
    >>> p.top_k(1, ["right", "left", "down", "up"])
  """
  forward = forward or _forward(model)
  return _classify(
    path, video_views(path, _data_section(data_config)), variables, forward, batch_size
  )


def _classify(
  path: str, x: np.ndarray, variables, forward: Callable, batch_size: int
) -> Prediction:
  """The `Prediction` of the views `x` of one video."""
  n = len(x)
  step = batch_size if batch_size > 0 else n
  logits = np.concatenate(
    [np.asarray(forward(variables, x[i : i + step]), np.float32) for i in range(0, n, step)]
  )
  mean = logits.mean(axis=0)
  return Prediction(
    path=path, logits=mean, probabilities=np.asarray(jax.nn.softmax(mean)), num_views=n
  )


def predict_videos(
  paths: Iterable[str],
  model,
  variables,
  data_config: ml_collections.ConfigDict,
  *,
  batch_size: int = 0,
) -> Iterator[tuple[str, Prediction | Exception]]:
  """`predict_video` over many files, compiling once; unreadable files yield their error.

  The next two videos are decoded in a background thread while the model runs, so decoding and
  the model overlap.

  Args:
    paths: video files.
    model, variables, data_config, batch_size: as for `predict_video`.

  Yields:
    `(path, Prediction)`, or `(path, error)` (a `DecodeError` or `FileNotFoundError`) for a file
    that cannot be read; the others go on.

  Example:
    >>> for path, result in predict_videos(paths, run.model, run.variables, run.config.data):
    ...   print(path, result.top_k(1) if isinstance(result, Prediction) else result)
  """
  forward = _forward(model)
  data_config = _data_section(data_config)

  def views(path):
    try:
      return video_views(path, data_config)
    except (DecodeError, FileNotFoundError) as error:
      return error

  # The next videos decode in a thread while the model runs on this one.
  paths = iter(paths)
  with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
    pending = collections.deque((p, pool.submit(views, p)) for p in itertools.islice(paths, 2))
    while pending:
      path, future = pending.popleft()
      following = next(paths, None)
      if following is not None:
        pending.append((following, pool.submit(views, following)))
      x = future.result()
      yield (
        path,
        x if isinstance(x, Exception) else _classify(path, x, variables, forward, batch_size),
      )


def predict_timeline(
  path: str,
  model,
  variables,
  data_config: ml_collections.ConfigDict,
  windowing: windows_lib.Windowing = windows_lib.Windowing(),
  *,
  batch_size: int = 4,
  forward: Optional[Callable] = None,
) -> tuple[float, Iterator[WindowPrediction]]:
  """Classifies every window of a video, streaming: one forward read of the file, flat memory.

  Each window is classified as `predict_video` classifies a video made of that window's frames
  alone: its eval views (`data_config.eval_clips` x `eval_crops`; `view_config` sets them; one
  clip and one crop is the usual choice for a timeline), logits averaged.

  Args:
    path: a video file.
    model, variables: a classification model and its variables.
    data_config: the data config (`run.config.data`, or the whole `run.config`).
    windowing: window and stride (`jaxres.data.windows.Windowing`; by default one clip of the
      data config per window, windows tiling the video).
    batch_size: windows per forward call (every call has this shape: one compilation).
    forward: `(variables, views) -> logits` to use instead of a jitted `model.apply` (reuse one
      across videos to compile once).

  Returns:
    `(fps, predictions)`: the video's frame rate and an iterator of `WindowPrediction`s in order,
    `floor((N - span) / stride) + 1` of them for N frames (one when N < span).

  Raises:
    FileNotFoundError: no such file.
    DecodeError: not a readable video (a window shorter than a clip under `short_video="skip"`
      raises when iterating).

  Example:
    >>> fps, timeline = predict_timeline("long.mp4", run.model, run.variables, run.config.data,
    ...                                  windows_lib.Windowing(window=2.0, stride=1.0))
    >>> for p in timeline:
    ...   print(f"{p.start_time:.1f}-{p.end_time:.1f}s", p.top_k(1, names))
  """
  forward = forward or _forward(model)
  meta, windows = windows_lib.stream_windows(path, _data_section(data_config), windowing)

  def predictions():
    with contextlib.closing(windows):
      for group, x in windows_lib.window_batches(windows, batch_size):
        logits = np.asarray(forward(variables, x), np.float32)
        v = len(group[0].views)
        for i, w in enumerate(group):
          mean = logits[i * v : (i + 1) * v].mean(axis=0)
          yield WindowPrediction(
            path=path,
            logits=mean,
            probabilities=np.asarray(jax.nn.softmax(mean)),
            num_views=v,
            start=w.start,
            end=w.end,
            start_time=w.start_time,
            end_time=w.end_time,
          )

  return meta.fps, predictions()


def plot_timeline(
  timeline: Sequence[WindowPrediction],
  out_path: str,
  *,
  class_names: Optional[Sequence[str]] = None,
  num_classes: int = 5,
  title: str = "",
) -> str:
  """Draws a timeline as a PNG: a band of each window's top class, and class probabilities over time.

  The classes drawn are those of highest mean probability over the windows, plus any that is the
  most probable in some window (at most 10, each with its own colour); the band above shows the
  most probable class of each window around its centre (where the curves put it), grey where
  that class is not among those drawn. Time (seconds) runs along the x-axis. Needs matplotlib (the
  `video` extra). The file is written atomically.

  Args:
    timeline: `WindowPrediction`s in time order (`predict_timeline`), at least one.
    out_path: the picture (`.png`; other suffixes matplotlib knows work too).
    class_names: label -> name (None: label numbers).
    num_classes: classes drawn by mean probability (those that win a window are added).
    title: drawn above.

  Returns:
    `out_path`.

  Example:
    >>> fps, timeline = predict_timeline("long.mp4", model, variables, data_config)
    >>> plot_timeline(list(timeline), "timeline.png", class_names=names, title="long.mp4")
  """
  import matplotlib  # pylint: disable=import-outside-toplevel

  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=import-outside-toplevel

  from jaxres.atomic_files import atomic_path  # pylint: disable=import-outside-toplevel

  if not timeline:
    raise ValueError(f"No windows to draw in {out_path}.")
  probs = np.stack([p.probabilities for p in timeline])  # [windows, classes]
  winners = np.argmax(probs, axis=1)
  by_mean = [int(i) for i in np.argsort(-probs.mean(axis=0), kind="stable")[:num_classes]]
  shown = list(dict.fromkeys(by_mean + [int(i) for i in winners]))[:10]
  names = list(class_names or ())
  name = lambda i: names[i] if i < len(names) else str(i)
  colours = {c: plt.get_cmap("tab10")(k) for k, c in enumerate(shown)}
  starts = np.array([p.start_time for p in timeline])
  ends = np.array([p.end_time for p in timeline])
  centres = (starts + ends) / 2

  fig, (band, lines) = plt.subplots(
    2, 1, sharex=True, figsize=(11, 4.5), gridspec_kw={"height_ratios": [1, 5]}
  )
  # Each window's band reaches halfway to its neighbours' centres: aligned with the curves below.
  edges = np.concatenate([[starts[0]], (centres[1:] + centres[:-1]) / 2, [ends[-1]]])
  for start, end, winner in zip(edges[:-1], edges[1:], winners):
    band.axvspan(start, end, color=colours.get(int(winner), (0.8, 0.8, 0.8)), lw=0)
  band.set_yticks([])
  band.set_ylabel("top", rotation=0, ha="right", va="center")
  for c in shown:
    lines.plot(centres, probs[:, c], color=colours[c], lw=1.8, label=name(c))
    lines.fill_between(centres, probs[:, c], color=colours[c], alpha=0.12, lw=0)
  lines.set_ylim(0, 1)
  lines.set_xlim(starts[0], ends[-1])
  lines.set_xlabel("time (s)")
  lines.set_ylabel("probability")
  lines.grid(alpha=0.3)
  lines.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
  if title:
    band.set_title(title)
  fig.tight_layout()
  with atomic_path(out_path) as tmp:
    fig.savefig(tmp, dpi=100, format=os.path.splitext(out_path)[1][1:] or "png")
  plt.close(fig)
  return out_path


def read_labels(path: str) -> tuple[str, ...]:
  """Class names from a text file, one per line (line number = label), blank lines ignored.

  Example:
    >>> read_labels("kinetics400_labels.txt")[:2]
    ('abseiling', 'air drumming')
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"No labels file {path} (one class name per line).")
  with open(path) as f:
    return tuple(line.strip() for line in f if line.strip())


def run_class_names(workdir: str) -> Optional[tuple[str, ...]]:
  """The class names a training run saved (`classes.txt` in its folder), or None.

  Example:
    >>> run_class_names("runs/demo")
    ('down', 'left', 'right', 'up')
  """
  workdir = os.path.abspath(workdir)
  if os.path.basename(workdir) == "checkpoints":
    workdir = os.path.dirname(workdir)
  if not os.path.isfile(os.path.join(workdir, sources.CLASS_NAMES_FILE)):
    return None
  return sources.read_class_names(workdir)
