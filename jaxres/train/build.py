"""Config -> model, task, optimiser and engine; and a compiled train step for benchmarks."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

from jaxres import models
from jaxres.models.blocks import remat_block
from jaxres.models.conv import LOWERINGS
from jaxres.train import parallel
from jaxres.train.optimizer import create_optimizer
from jaxres.train.state import TrainState
from jaxres.tasks import Task, make_task

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def build_model(config, *, bn_axis_name: str | None = None):
  """The model of `config.model` (`name` plus constructor arguments; dtype names become dtypes).

  `conv_lowering` pins the convolutions' lowering and `remat` rematerialises every residual block
  (`jaxres.models.blocks.remat_block`: "none", "block" or a `jax.checkpoint_policies` name).

  Example:
    >>> model = build_model(config)                   # for jit
    >>> model = build_model(config, bn_axis_name="batch")   # for pmap
  """
  kwargs = dict(config.model)
  name = kwargs.pop("name")
  for key in ("dtype", "param_dtype"):
    if isinstance(kwargs.get(key), str):
      if kwargs[key] not in _DTYPES:
        raise ValueError(f"config.model.{key} must be one of {sorted(_DTYPES)}, got {kwargs[key]!r}.")
      kwargs[key] = _DTYPES[kwargs[key]]
  if bn_axis_name is not None:
    kwargs["bn_axis_name"] = bn_axis_name
  lowering = kwargs.pop("conv_lowering", "auto")
  remat = kwargs.pop("remat", "none")
  model = models.get(name, **kwargs)
  if lowering != "auto":
    if lowering not in LOWERINGS:
      raise ValueError(f"config.model.conv_lowering must be one of {LOWERINGS}, got {lowering!r}.")
    if not hasattr(model, "conv_lowering"):
      raise ValueError(f"config.model.conv_lowering={lowering!r}: model {name!r} has no choice of "
                       "convolution lowering (the ResNets do); leave it \"auto\".")
    model = model.clone(conv_lowering=lowering)
  if remat != "none":
    if not hasattr(model, "block_cls"):
      raise ValueError(f"config.model.remat={remat!r}: model {name!r} takes no residual block "
                       "class to rematerialise (the ResNets do); leave it \"none\".")
    try:
      model = model.clone(block_cls=remat_block(model.block_cls, remat))
    except ValueError as e:
      raise ValueError(f"config.model.remat: {e}") from None
  return model


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
  if p.mode == "jit":
    model = build_model(config)
    mesh = parallel.make_mesh(p.num_devices, devices, shape=dict(p.get("mesh", {})))
    engine = parallel.JitEngine(model, task, tx, schedule, mesh=mesh, fsdp=p.fsdp,
                                fsdp_min_size=p.fsdp_min_size, ema_decay=config.ema_decay,
                                grad_accum_steps=config.get("grad_accum_steps", 1))
  elif p.mode == "pmap":
    if p.fsdp or p.get("mesh", {}).get("fsdp", 1) != 1:
      raise ValueError("parallel.fsdp and parallel.mesh.fsdp need parallel.mode='jit'.")
    model = build_model(config, bn_axis_name=parallel.PMAP_AXIS)
    devices = list(devices or jax.local_devices())
    if p.num_devices > 0:
      devices = devices[:p.num_devices]
    engine = parallel.PmapEngine(model, task, tx, schedule, devices=devices,
                                 ema_decay=config.ema_decay,
                                 grad_accum_steps=config.get("grad_accum_steps", 1))
  else:
    raise ValueError(f"config.parallel.mode must be 'jit' or 'pmap', got {p.mode!r}.")
  return engine, model, task


def build_train_step(config, input_shape: Sequence[int], *, seed: int = 0
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
