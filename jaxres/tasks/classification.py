"""Classification of clips or images: softmax cross-entropy with label smoothing and mixup/cutmix.

Example:
  >>> task = ClassificationTask(label_smoothing=0.1)
  >>> loss, metrics = task.loss_and_metrics(logits, batch)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxres.tasks import mixup
from jaxres.tasks.base import Batch, mean_by_video


def _loss_dtype(outputs) -> jnp.dtype:
  """The loss's dtype: float32 for half-precision logits, float64 for float64 ones."""
  return jnp.promote_types(outputs.dtype, jnp.float32)


def in_top_k(logits, labels, k: int):
  """Whether each label is among the `k` highest logits of its row (jax or numpy arrays).

  A label counts when fewer than `k` classes score strictly higher than it, so ties favour it
  and every label is in the top k when there are at most k classes.

  Args:
    logits: `[B, K]`.
    labels: int `[B]`.
    k: how many top classes count (5 for the published top-5 accuracy).

  Returns:
    bool `[B]`, of the same array kind as `logits`.

  Example:
    >>> in_top_k(np.array([[0.1, 0.5, 0.2, 0.9]]), np.array([2]), 2)
    array([False])
  """
  xp = jnp if isinstance(logits, jax.Array) else np
  own = xp.take_along_axis(logits, xp.asarray(labels)[:, None], axis=-1)
  return xp.sum(logits > own, axis=-1) < k


@dataclasses.dataclass(frozen=True)
class ClassificationTask:
  """Softmax cross-entropy on `batch["label"]`, with label smoothing and mixup/cutmix.

  Eval reports clip top-1 and top-5 accuracy and loss, and, when batches carry `"video_id"`, video
  top-1 and top-5 accuracy: the logits of every clip of a video are averaged (several clips per
  video at test time), the published protocol for Kinetics.

  Attributes:
    label_smoothing: weight moved from the true class to the uniform distribution.
    mixup_alpha: Beta(alpha, alpha) of mixup (0: off).
    cutmix_alpha: Beta(alpha, alpha) of cutmix (0: off); when both are on, each batch uses one at
      random (probability `switch_prob` of cutmix).
    switch_prob: see `cutmix_alpha`.
  """

  label_smoothing: float = 0.0
  mixup_alpha: float = 0.0
  cutmix_alpha: float = 0.0
  switch_prob: float = 0.5
  name = "classification"

  def model_input(self, batch: Batch) -> jax.Array:
    return batch["video"]

  def prepare(self, batch: Batch, rng: jax.Array | None) -> Batch:
    """Training (`rng` given): mixes the clips (mixup/cutmix) and records the partner index and
    weight for the loss. Eval: the batch as is."""
    if rng is None or not (self.mixup_alpha or self.cutmix_alpha):
      return batch
    video, perm, lam = mixup.mix_clips(
      batch["video"],
      rng,
      mixup_alpha=self.mixup_alpha,
      cutmix_alpha=self.cutmix_alpha,
      switch_prob=self.switch_prob,
    )
    return dict(batch, video=video, mix_perm=perm, mix_lambda=lam)

  def _targets(self, labels: jax.Array, num_classes: int, dtype) -> jax.Array:
    onehot = jax.nn.one_hot(labels, num_classes, dtype=dtype)
    return onehot * (1.0 - self.label_smoothing) + self.label_smoothing / num_classes

  def loss_and_metrics(self, outputs, batch):
    logits = outputs.astype(_loss_dtype(outputs))
    labels = batch["label"]
    targets = self._targets(labels, logits.shape[-1], logits.dtype)
    if "mix_perm" in batch:
      lam = batch["mix_lambda"]
      targets = lam * targets + (1.0 - lam) * targets[batch["mix_perm"]]
    loss = jnp.mean(-jnp.sum(targets * jax.nn.log_softmax(logits), axis=-1))
    accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
    return loss, {"loss": loss, "accuracy": accuracy}

  def eval_metrics(self, outputs, batch):
    logits = outputs.astype(_loss_dtype(outputs))
    labels = batch["label"]
    nll = -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=-1)[:, 0]
    out = {
      "loss": nll,
      "correct": (jnp.argmax(logits, -1) == labels).astype(jnp.float32),
      "correct_top5": in_top_k(logits, labels, 5).astype(jnp.float32),
      "label": labels,
      "logits": logits,
    }
    if "video_id" in batch:
      out["video_id"] = batch["video_id"]
    return out

  def aggregate(self, per_example):
    """Clip `accuracy` (top-1), `top5_accuracy` and `loss` (weighted by `weight`; 0 drops
    padding), and `video_accuracy` and `video_top5_accuracy` (logits averaged per video,
    `mean_by_video`) when the values carry video ids."""
    rows = [{k: np.asarray(v) for k, v in m.items()} for m in per_example]
    if not rows:
      return {}
    column = lambda key: np.concatenate([m[key] for m in rows])
    weight = np.concatenate([m.get("weight", np.ones(len(m["label"]))) for m in rows])
    weight = weight.astype(np.float64)
    keep = weight > 0
    count = float(weight.sum())
    if not count:
      return {}
    out = {
      k: float((column(key) * weight)[keep].sum() / count)
      for k, key in (("accuracy", "correct"), ("top5_accuracy", "correct_top5"), ("loss", "loss"))
      if key in rows[0]
    }
    out["num_clips"] = count
    if "video_id" in rows[0]:
      ids, videos = mean_by_video(rows, ["logits"])
      # A video's label is that of its first kept view (all its views share it in real data).
      _, first = np.unique(column("video_id")[keep], return_index=True)  # sorted, as `ids`
      labels = column("label")[keep][first]
      out["video_accuracy"] = float(np.mean(videos["logits"].argmax(-1) == labels))
      out["video_top5_accuracy"] = float(np.mean(in_top_k(videos["logits"], labels, 5)))
      out["num_videos"] = float(len(ids))
    return out

  def check_data(self, data_config: Any) -> None:
    """Classification reads any video source; nothing to check beyond the data config itself."""
    del data_config
