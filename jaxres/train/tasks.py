"""Tasks: what the model sees, the training loss and metrics, and how eval metrics aggregate.

The train and eval steps are written once against the `Task` protocol, so a new kind of model only
adds a task here (the super-resolution task lives in `jaxres.sr.task` and registers itself in `TASKS`).
The task of a model is `jaxres.models.spec(name).task`; `config.task` holds the task's keyword
arguments.

Example:
  >>> task = make_task("classification", label_smoothing=0.1)
  >>> loss, metrics = task.loss_and_metrics(logits, batch)
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Callable, Iterable, Mapping, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from jaxres.train import mixup

Batch = Mapping[str, Any]


class Task(Protocol):
  """What the engine needs from a task.

  `augment` is optional (the train step calls it when the task has it). Per-example eval values
  may come with a `"weight"` `[B]` entry (0 marks padding); the engine adds it from `batch["mask"]`.
  """

  def model_input(self, batch: Batch) -> jax.Array:
    """The array the model is called on, e.g. `batch["video"]`."""

  def loss_and_metrics(self, outputs: jax.Array, batch: Batch
                       ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The scalar training loss and a dict of scalar metrics of one batch (inside the step)."""

  def eval_metrics(self, outputs: jax.Array, batch: Batch) -> dict[str, jax.Array]:
    """Per-example values, each with leading axis B (inside the eval step)."""

  def aggregate(self, per_example: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Reduces the host copies of `eval_metrics` over a whole eval set to floats."""


@dataclasses.dataclass(frozen=True)
class ClassificationTask:
  """Softmax cross-entropy on `batch["label"]`, with label smoothing and mixup/cutmix.

  Eval reports clip accuracy and loss, and, when batches carry `"video_id"`, video accuracy: the
  logits of every clip of a video are averaged (several clips per video at test time).

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

  def augment(self, batch: Batch, rng: jax.Array) -> Batch:
    """Mixes the clips (mixup/cutmix) and records the partner index and weight for the loss."""
    if not (self.mixup_alpha or self.cutmix_alpha):
      return batch
    video, perm, lam = mixup.mix_clips(batch["video"], rng, mixup_alpha=self.mixup_alpha,
                                       cutmix_alpha=self.cutmix_alpha,
                                       switch_prob=self.switch_prob)
    return dict(batch, video=video, mix_perm=perm, mix_lambda=lam)

  def _targets(self, labels: jax.Array, num_classes: int) -> jax.Array:
    onehot = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
    return onehot * (1.0 - self.label_smoothing) + self.label_smoothing / num_classes

  def loss_and_metrics(self, outputs, batch):
    logits = outputs.astype(jnp.float32)
    labels = batch["label"]
    targets = self._targets(labels, logits.shape[-1])
    if "mix_perm" in batch:
      lam = batch["mix_lambda"]
      targets = lam * targets + (1.0 - lam) * targets[batch["mix_perm"]]
    loss = jnp.mean(-jnp.sum(targets * jax.nn.log_softmax(logits), axis=-1))
    accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
    return loss, {"loss": loss, "accuracy": accuracy}

  def eval_metrics(self, outputs, batch):
    logits = outputs.astype(jnp.float32)
    labels = batch["label"]
    nll = -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=-1)[:, 0]
    out = {"loss": nll, "correct": (jnp.argmax(logits, -1) == labels).astype(jnp.float32),
           "label": labels, "logits": logits}
    if "video_id" in batch:
      out["video_id"] = batch["video_id"]
    return out

  def aggregate(self, per_example):
    """Clip `accuracy` and `loss`, and `video_accuracy` when video ids were given."""
    sums = collections.defaultdict(float)
    count = 0.0
    videos: dict[int, list] = {}
    for m in per_example:
      m = {k: np.asarray(v) for k, v in m.items()}
      weight = m.get("weight", np.ones(m["label"].shape, np.float32)).astype(np.float64)
      keep = weight > 0
      count += float(weight.sum())
      sums["loss"] += float((m["loss"] * weight)[keep].sum())
      sums["accuracy"] += float((m["correct"] * weight)[keep].sum())
      if "video_id" in m:
        for vid, logit, label in zip(m["video_id"][keep], m["logits"][keep], m["label"][keep]):
          entry = videos.setdefault(int(vid), [np.zeros_like(logit, np.float64), 0, int(label)])
          entry[0] += logit
          entry[1] += 1
    if not count:
      return {}
    out = {k: v / count for k, v in sums.items()}
    out["num_clips"] = count
    if videos:
      out["video_accuracy"] = float(np.mean([s.argmax() == label for s, _, label in videos.values()]))
      out["num_videos"] = float(len(videos))
    return out


def _super_resolution(**kwargs):
  from jaxres.sr.task import SuperResolutionTask  # imported on use: the SR package is optional here
  return SuperResolutionTask(**kwargs)


# task name (a model spec's `task`) -> constructor taking `config.task` as keyword arguments.
TASKS: dict[str, Callable[..., Task]] = {
    "classification": ClassificationTask,
    "super_resolution": _super_resolution,
}


def make_task(name: str, **kwargs) -> Task:
  """Builds the task `name` of `TASKS` from keyword arguments (usually `config.task`).

  Args:
    name: a key of `TASKS`, e.g. `jaxres.models.spec("r3d_18").task`.
    **kwargs: the task's fields.

  Returns:
    The task.

  Example:
    >>> task = make_task("classification", label_smoothing=0.1, mixup_alpha=0.2)
  """
  if name not in TASKS:
    raise KeyError(f"Unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}.")
  return TASKS[name](**kwargs)
