"""Checks of a training config against its data and devices, before anything compiles.

Each error names the config key, the value found and what to change, e.g.
`model.num_classes=4 but /data/UCF-101 has 101 class folders; set --config.model.num_classes=101`.

Example:
  >>> check_config(config, task, info=dataset_info(config.data), num_devices=jax.device_count())
"""

from __future__ import annotations

from typing import Any, Optional


def check_config(
  config,
  task,
  *,
  info: Optional[Any] = None,
  uses_data_config: bool = True,
  num_devices: int = 1,
  num_processes: int = 1,
) -> None:
  """Raises `ValueError` naming the first key that does not fit the data or the devices.

  Args:
    config: a training config.
    task: its task (`jaxres.tasks.Task`); `task.check_data(config.data)` runs first.
    info: the data's `jaxres.data.pipeline.DatasetInfo` (None: not checked).
    uses_data_config: whether `config.data` feeds the run (False when the caller supplies its
      own batches or `synthetic_data` is on: the data section is then not checked).
    num_devices: devices the global batch is split over (jit) or replicated on (pmap).
    num_processes: hosts that each read a share of the batch.

  Example:
    >>> check_config(config, task, info=info, num_devices=8)
  """
  batch = config.global_batch_size
  if not isinstance(batch, int) or batch < 1:
    raise ValueError(f"global_batch_size must be a positive integer, got {batch!r}.")
  if batch % num_devices:
    raise ValueError(
      f"global_batch_size={batch} is not divisible by the {num_devices} devices; "
      f"use a multiple of {num_devices} (or --config.parallel.num_devices)."
    )
  accum = config.grad_accum_steps
  if not isinstance(accum, int) or accum < 1:
    raise ValueError(f"grad_accum_steps must be a positive integer, got {accum!r}.")
  if batch % (accum * num_devices):
    raise ValueError(
      f"global_batch_size={batch} does not split into grad_accum_steps={accum} micro-batches "
      f"over {num_devices} devices; use a multiple of {accum * num_devices} (each device takes "
      f"an equal share of every micro-batch)."
    )
  if batch % num_processes:
    raise ValueError(f"global_batch_size={batch} is not divisible by the {num_processes} hosts.")
  profile = tuple(config.profile_steps)
  if profile and (
    len(profile) > 2
    or not all(isinstance(s, int) and s >= 1 for s in profile)
    or profile[0] > profile[-1]
  ):
    raise ValueError(
      f"profile_steps={profile!r} must be (first, last) train steps, 1 <= first "
      "<= last, e.g. --config.profile_steps=10,20 (or () for no profile)."
    )
  if config.num_train_steps < 0:
    raise ValueError(f"num_train_steps must be >= 0, got {config.num_train_steps}.")
  uses_data = uses_data_config and not config.synthetic_data
  if "scale" in config.task:
    _check_one_scale(config, paired_frames=uses_data and bool(config.data.lr_path))
  if uses_data:
    task.check_data(config.data)
  if info is None or "num_classes" not in config.model or task.name != "classification":
    return
  if config.model.num_classes != info.num_classes:
    where = config.data.path or f"the {config.data.source} data"
    raise ValueError(
      f"model.num_classes={config.model.num_classes} but {where} has {info.num_classes} "
      f"classes; set --config.model.num_classes={info.num_classes}."
    )


def _check_one_scale(config, *, paired_frames: bool) -> None:
  """Super-resolution: the model, the task and paired LR frames (`data.lr_path`) share one scale.

  `jaxres.configs.common.super_resolution_recipe` ties them (one `FieldReference`, set by
  `--config.model.scale`); a config built otherwise, or a saved one edited by hand, may not.
  """
  scales = {
    "model.scale": config.model.get("scale"),  # the model's own default when absent
    "task.scale": config.task.scale,
  }
  if paired_frames:
    scales["data.lr_scale"] = config.data.lr_scale
  found = {k: v for k, v in scales.items() if v is not None}
  if len(set(found.values())) > 1:
    listed = ", ".join(f"{k}={v}" for k, v in found.items())
    raise ValueError(
      f"The super-resolution scale differs between {listed}: set it once, as model.scale "
      "(configs from jaxres.configs.common.super_resolution_recipe share that one value with "
      "task.scale and data.lr_scale, so --config.model.scale=N moves all of them)."
    )
