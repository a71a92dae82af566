"""Tasks: what the model sees, the loss and metrics, and how eval values aggregate; one registry.

The train and eval steps (`jaxres.train.steps`) are written once against the `Task` protocol, so a
new kind of model adds a task module here and one line to `TASKS`. The task of a model is
`jaxres.models.spec(name).task`; a training config's `task` section holds its keyword arguments.

Modules:

- `base`: the `Task` protocol and `mean_by_video` (per-video averaging of eval values).
- `classification`: softmax cross-entropy, label smoothing, mixup/cutmix (`mixup`).
- `super_resolution`: LR made from the HR frames on device (`degradation`), L1/Charbonnier,
  PSNR/SSIM (`image_metrics`) against bicubic.

Example:
  >>> from jaxres import tasks
  >>> task = tasks.make_task("classification", label_smoothing=0.1)
"""

from __future__ import annotations

from typing import Callable

from jaxres.tasks.base import Task, mean_by_video
from jaxres.tasks.classification import ClassificationTask
from jaxres.tasks.super_resolution import SuperResolutionTask

# task name (a model spec's `task`) -> constructor taking a config's `task` section as keywords.
TASKS: dict[str, Callable[..., Task]] = {
  ClassificationTask.name: ClassificationTask,
  SuperResolutionTask.name: SuperResolutionTask,
}


def make_task(name: str, **kwargs) -> Task:
  """Builds the task `name` of `TASKS` from keyword arguments (usually `config.task`).

  Args:
    name: a key of `TASKS`, e.g. `jaxres.models.spec("r3d_18").task`.
    **kwargs: the task's fields.

  Returns:
    The task.

  Raises:
    KeyError: unknown task. TypeError: a field the task does not have.

  Example:
    >>> task = make_task("classification", label_smoothing=0.1, mixup_alpha=0.2)
  """
  if name not in TASKS:
    raise KeyError(f"Unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}.")
  return TASKS[name](**kwargs)


__all__ = [
  "TASKS",
  "ClassificationTask",
  "SuperResolutionTask",
  "Task",
  "make_task",
  "mean_by_video",
]
