"""Config -> model, task, optimiser and engine; and a compiled train step for benchmarks."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax

from jaxres import models
from jaxres.tasks import Task, make_task
from jaxres.train import parallel
from jaxres.train.optimizer import create_optimizer
from jaxres.train.param_groups import ParamGroups
from jaxres.train.state import TrainState


def build_model(config, *, bn_axis_name: str | None = None):
  """The model of `config.model` (`jaxres.models.from_config`).

  Example:
    >>> model = build_model(config)                   # for jit
    >>> model = build_model(config, bn_axis_name="batch")   # for pmap
  """
  return models.from_config(config.model, bn_axis_name=bn_axis_name)


def build_task(config) -> Task:
  """The task of the configured model (`jaxres.models.spec(name).task`) with `config.task` arguments."""
  return make_task(models.spec(config.model.name).task, **dict(config.task))


def build_engine(config, *, devices: Sequence[jax.Device] | None = None):
  """The engine (`parallel.JitEngine` or `parallel.PmapEngine`) that `config.parallel` asks for.

  Args:
    config: the training config.
    devices: devices to use (default: all; `config.parallel.num_devices` takes the first n).

  Returns:
    `(engine, model, task)`.

  Example:
    >>> engine, model, task = build_engine(config)
  """
  p = config.parallel
  task = build_task(config)
  tx, schedule = create_optimizer(config)
  groups = ParamGroups.from_config(config.optimizer)
  keep = groups.keep_frozen_statistics if groups.active else None
  if p.mode == "jit":
    model = build_model(config)
    mesh = parallel.make_mesh(p.num_devices, devices, shape=dict(p.get("mesh", {})))
    engine = parallel.JitEngine(
      model,
      task,
      tx,
      schedule,
      mesh=mesh,
      fsdp=p.fsdp,
      fsdp_min_size=p.fsdp_min_size,
      ema_decay=config.ema_decay,
      grad_accum_steps=config.grad_accum_steps,
      keep_statistics=keep,
    )
  elif p.mode == "pmap":
    if p.fsdp or p.get("mesh", {}).get("fsdp", 1) != 1:
      raise ValueError("parallel.fsdp and parallel.mesh.fsdp need parallel.mode='jit'.")
    model = build_model(config, bn_axis_name=parallel.PMAP_AXIS)
    devices = list(devices or jax.local_devices())
    if p.num_devices > 0:
      devices = devices[: p.num_devices]
    engine = parallel.PmapEngine(
      model,
      task,
      tx,
      schedule,
      devices=devices,
      ema_decay=config.ema_decay,
      grad_accum_steps=config.grad_accum_steps,
      keep_statistics=keep,
    )
  else:
    raise ValueError(f"config.parallel.mode must be 'jit' or 'pmap', got {p.mode!r}.")
  return engine, model, task


def build_train_step(
  config, input_shape: Sequence[int], *, seed: int = 0
) -> tuple[Any, TrainState, Callable]:
  """A ready model, initial state and compiled train step for `input_shape`, without the loop.

  For benchmarks: `step(state, batch, rng)` takes numpy or jax batches (put on the mesh for you)
  and returns `(state, metrics)`; the state is donated, so keep the returned one.

  Args:
    config: a training config (e.g. `load_config("kinetics400_r3d_18")`).
    input_shape: the global model input, e.g. `(8, 16, 112, 112, 3)`.
    seed: parameter initialisation seed.

  Returns:
    `(model, state, step)`.

  Example:
    >>> model, state, step = build_train_step(config, (8, 16, 112, 112, 3))
    >>> batch = {"video": np.zeros((8, 16, 112, 112, 3), np.float32), "label": np.zeros(8, np.int32)}
    >>> state, metrics = step(state, batch, jax.random.key(0))
  """
  engine, model, _ = build_engine(config)
  state = engine.init(jax.random.key(seed), tuple(input_shape))

  def step(state, batch, rng):
    return engine.train_step(state, engine.put_batch(batch), rng)

  return model, state, step
