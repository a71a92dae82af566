"""Pictures of an evaluation for TensorBoard: a confusion matrix, or SR crops side by side.

Classification: the confusion matrix of the eval set (per video when the values carry video ids,
the logits of a video's views averaged as for `video_accuracy`), drawn with matplotlib, rows the
true class, columns the predicted one, each row normalised. Super-resolution: for a few clips of
the first eval batch, the middle frame's LR (nearest-upsampled to the HR size), bicubic, model and
HR crops side by side, one clip per row.

Example:
  >>> pictures = EvalPictures(task, model, class_names=info.class_names)
  >>> images = pictures(values, first_batch, variables)     # {"confusion_matrix": uint8 [H, W, 3]}
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxres.models.sr import bicubic_upsample
from jaxres.tasks.base import mean_by_video

SR_ROWS = 3  # clips shown
SR_CROP = 64  # HR pixels per side shown of each frame (at most)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
  """Counts `[true, predicted]` (int64 `[num_classes, num_classes]`).

  Example:
    >>> confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), 2)
    array([[1, 0],
           [1, 1]])
  """
  matrix = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(matrix, (np.asarray(labels, np.int64), np.asarray(predictions, np.int64)), 1)
  return matrix


def eval_confusion(values: Sequence[Mapping[str, Any]]) -> Optional[np.ndarray]:
  """The confusion matrix of classification eval values (`ClassificationTask.eval_metrics` rows).

  Per video when rows carry `video_id` (views' logits averaged), else per clip; rows with
  `weight` 0 (padding) are left out. None when the values hold no logits.
  """
  rows = [{k: np.asarray(v) for k, v in m.items()} for m in values]
  if not rows or "logits" not in rows[0] or "label" not in rows[0]:
    return None
  num_classes = rows[0]["logits"].shape[-1]
  column = lambda key: np.concatenate([m[key] for m in rows])
  weight = np.concatenate([m.get("weight", np.ones(len(m["label"]))) for m in rows])
  keep = weight > 0
  if "video_id" in rows[0]:
    _, videos = mean_by_video(rows, ["logits"])
    _, first = np.unique(column("video_id")[keep], return_index=True)
    labels, predicted = column("label")[keep][first], videos["logits"].argmax(-1)
  else:
    labels, predicted = column("label")[keep], column("logits")[keep].argmax(-1)
  return confusion_matrix(labels, predicted, num_classes)


def confusion_image(matrix: np.ndarray, class_names: Optional[Sequence[str]] = None) -> np.ndarray:
  """The confusion matrix drawn as a uint8 `[H, W, 3]` image (rows normalised; counts written
  in the cells for up to 20 classes, class names on the axes for up to 40).

  Example:
    >>> confusion_image(np.eye(4, dtype=int), ["right", "left", "down", "up"]).shape
    (480, 480, 3)
  """
  import matplotlib  # pylint: disable=import-outside-toplevel

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  n = len(matrix)
  rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
  fig, ax = plt.subplots(figsize=(4.8, 4.8), dpi=100)
  ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
  ax.set_xlabel("predicted")
  ax.set_ylabel("true")
  if class_names is not None and n <= 40:
    ax.set_xticks(range(n), list(class_names)[:n], rotation=90, fontsize=7)
    ax.set_yticks(range(n), list(class_names)[:n], fontsize=7)
  if n <= 20:
    for i in range(n):
      for j in range(n):
        if matrix[i, j]:
          ax.text(
            j,
            i,
            str(int(matrix[i, j])),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if rates[i, j] > 0.5 else "black",
          )
  fig.tight_layout()
  fig.canvas.draw()
  image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
  plt.close(fig)
  return image


def sr_crops(
  lr: np.ndarray, bicubic: np.ndarray, sr: np.ndarray, hr: np.ndarray, crop: int = SR_CROP
) -> np.ndarray:
  """LR (nearest-upsampled) | bicubic | model | HR, one row per frame, as uint8 `[H, W, 3]`.

  Args:
    lr: `[N, h, w, 3]` in [0, 1].
    bicubic, sr, hr: `[N, H, W, 3]` in [0, 1], `H = h * scale`.
    crop: HR pixels per side of the centre crop shown.

  Returns:
    The image: N rows of 4 crops with a 2-pixel white gap between crops.

  Example:
    >>> sr_crops(lr, bicubic, sr, hr).shape      # 3 frames, 64-pixel crops
    (196, 262, 3)
  """
  scale = hr.shape[1] // lr.shape[1]
  lr = np.repeat(np.repeat(lr, scale, axis=1), scale, axis=2)
  h, w = hr.shape[1:3]
  ch, cw = min(crop, h), min(crop, w)
  top, left = (h - ch) // 2, (w - cw) // 2
  cut = lambda x: np.clip(np.asarray(x, np.float32)[:, top : top + ch, left : left + cw], 0, 1)
  gap = lambda *shape: np.ones(shape, np.float32)
  rows = []
  for i in range(len(hr)):
    parts = []
    for image in (lr, bicubic, sr, hr):
      parts += [cut(image)[i], gap(ch, 2, 3)]
    rows += [np.concatenate(parts[:-1], axis=1), gap(2, 4 * cw + 6, 3)]
  return np.round(np.concatenate(rows[:-1], axis=0) * 255).astype(np.uint8)


class EvalPictures:
  """Makes the pictures of one evaluation (see the module notes).

  Args:
    task: the run's task.
    model: the run's model (SR pictures run it on a few clips of the first eval batch).
    class_names: label -> name for the confusion matrix's axes.

  Example:
    >>> pictures = EvalPictures(task, model, class_names=("down", "left", "right", "up"))
    >>> images = pictures(values, first_batch, state.variables)
  """

  def __init__(self, task, model, *, class_names: Optional[Sequence[str]] = None):
    self.task, self.model, self.class_names = task, model, class_names
    self._sr = None
    if task.name == "super_resolution":

      def sr_views(variables, video):
        batch = task.prepare({"video": video}, None)
        out = model.apply(variables, task.model_input(batch), train=False)
        middle = lambda x: x[:, x.shape[1] // 2] if x.ndim == 5 else x
        return (
          middle(batch["lr"]),
          middle(bicubic_upsample(batch["lr"], task.scale)),
          middle(out.astype(jnp.float32)),
          middle(batch["hr"]),
        )

      self._sr = jax.jit(sr_views)

  def __call__(
    self,
    values: Sequence[Mapping[str, Any]],
    first_batch: Optional[Mapping[str, Any]],
    variables: Any,
  ) -> dict[str, np.ndarray]:
    """`{tag: uint8 [H, W, 3]}` for this evaluation (empty when there is nothing to draw, e.g.
    SR arrays spread over hosts)."""
    if self.task.name == "classification":
      matrix = eval_confusion(values)
      return (
        {} if matrix is None else {"confusion_matrix": confusion_image(matrix, self.class_names)}
      )
    if self._sr is None or first_batch is None or "video" not in first_batch:
      return {}
    video = first_batch["video"]
    leaves = jax.tree.leaves(variables) + [video]
    if any(isinstance(x, jax.Array) and not x.is_fully_addressable for x in leaves):
      return {}  # multi-host arrays: not drawn
    rows = np.asarray(video[:SR_ROWS])
    variables = jax.tree.map(np.asarray, variables)
    lr, bicubic, sr, hr = (np.asarray(x) for x in self._sr(variables, rows))
    return {"lr_bicubic_model_hr": sr_crops(lr, bicubic, sr, hr)}
