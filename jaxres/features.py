"""Per-window features of video files from a model's inner layer, for research code on top of them.

Every window of a video (`jaxres.data.windows`: streamed, memory flat in the video's length) goes
through the model once, and the layer asked for (`jaxres.models.features`: `stem`, `stage1`..,
`pre_logits`) is kept: averaged over space and time for the stage maps (`pool=True`), and over
the window's views (clips x crops). All videos go through one jitted function whose batches
all have one shape, so a folder of videos compiles the model once.

Example:
  >>> for path, times, feats in extract_features(paths, run.model, run.variables, run.config.data):
  ...   np.save(path + ".npy", feats)           # feats: [windows, 512]; times: [windows, 2] s
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterable, Iterator, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxres import models
from jaxres.data import windows as windows_lib
from jaxres.data.video import DecodeError

__all__ = ["extract_features", "feature_layers", "feature_function"]


def feature_layers(model, variables, view_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
  """The layers `model` sows and their shapes for one view of `view_shape` (nothing is run).

  Example:
    >>> feature_layers(model, variables, (8, 32, 32, 3))["pre_logits"]
    (1, 64)
  """
  x = jax.ShapeDtypeStruct((1,) + tuple(view_shape), jnp.float32)
  _, feats = jax.eval_shape(lambda v, x: models.features(model, v, x), variables, x)
  return {name: tuple(f.shape) for name, f in feats.items()}


def feature_function(model, layer: str, *, pool: bool = True) -> Callable[[Any, Any], jax.Array]:
  """A jitted `(variables, views) -> features` of one layer (`[B, C]` pooled, else its map).

  Example:
    >>> f = feature_function(model, "stage4")
    >>> f(variables, views).shape      # [views, 512] for r3d_18
  """

  def apply(variables, x):
    f = models.features(model, variables, x)[1][layer]
    return f.mean(axis=tuple(range(1, f.ndim - 1))) if pool and f.ndim > 2 else f

  return jax.jit(apply)


def extract_features(
  paths: Iterable[str],
  model,
  variables,
  data_config: ml_collections.ConfigDict,
  *,
  layer: str = "pre_logits",
  windowing: windows_lib.Windowing = windows_lib.Windowing(),
  pool: bool = True,
  batch_size: int = 4,
  on_error: Optional[Callable[[str, Exception], None]] = None,
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
  """Features of every window of every video, one video at a time.

  Args:
    paths: video files.
    model: a jaxres model that sows features (every classifier does).
    variables: its variables.
    data_config: the data config whose eval views each window gets (`run.config.data`, or
      `predict.pretrained_data_config(info.preprocessing)` for published weights; its
      `eval_clips` x `eval_crops` views of a window are averaged).
    layer: one of the model's layers (`feature_layers`).
    windowing: window and stride (default: one clip per window, windows tiling the video).
    pool: average a stage's map over time and space (`[C]` per window); False keeps the map.
    batch_size: windows per forward call.
    on_error: called with `(path, error)` for a file that is missing or does not decode, which is
      then skipped; None raises the error.

  Yields:
    `(path, times, features)`: float64 `[windows, 2]` start and end seconds of each window, and
    float32 `[windows, C]` (or `[windows, t, h, w, C]` without `pool`).

  Raises:
    ValueError: `layer` is not one the model sows.

  Example:
    >>> for path, times, feats in extract_features(["a.mp4", "b.mp4"], model, variables,
    ...                                            run.config.data, layer="stage4"):
    ...   print(path, times[0], feats.shape)
  """
  data_config = data_config.data if "data" in data_config else data_config
  crop = data_config.eval_crop_size or data_config.crop_size
  layers = feature_layers(model, variables, (data_config.num_frames, crop, crop, 3))
  if layer not in layers:
    raise ValueError(f"layer {layer!r} is not one of the model's: {', '.join(layers)}.")
  forward = feature_function(model, layer, pool=pool)
  for path in paths:
    try:
      times, feats = _video_features(path, variables, data_config, windowing, forward, batch_size)
    except (DecodeError, FileNotFoundError) as error:
      if on_error is None:
        raise
      on_error(path, error)
      continue
    yield path, times, feats


def _video_features(path, variables, data_config, windowing, forward, batch_size):
  _, windows = windows_lib.stream_windows(path, data_config, windowing)
  times, rows = [], []
  with contextlib.closing(windows):
    for group, x in windows_lib.window_batches(windows, batch_size):
      f = np.asarray(forward(variables, x), np.float32)
      v = len(group[0].views)
      for i, w in enumerate(group):
        rows.append(f[i * v : (i + 1) * v].mean(axis=0))
        times.append((w.start_time, w.end_time))
  return np.asarray(times, np.float64).reshape(-1, 2), np.stack(rows)
