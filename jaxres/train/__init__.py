"""The training engine: state, optimisers, pure steps, jit/pmap parallelism, checkpoints, the loop.

Names are imported on first use (PEP 562), so `from jaxres.train import make_train_step` pulls in
only jax, flax and optax: the models, state, optimiser, steps and parallel engines work with the
core install (`pip install jaxres`). The config files, checkpoints, data pipeline, loop and metric
writers need the `video` extra (ml_collections, orbax, TensorFlow), which is imported only when
one of their names is used.

Example:
  >>> from jaxres import train
  >>> config = train.load_config("demo", ["--config.num_train_steps=100"])
  >>> train.train_and_evaluate(config, "/tmp/run")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Exported name -> (module in jaxres.train, or a full module name, attribute there).
_EXPORTS = {
  # Core install (jax, flax, optax, numpy).
  "build_engine": ("build", "build_engine"),
  "build_model": ("build", "build_model"),
  "build_task": ("build", "build_task"),
  "build_train_step": ("build", "build_train_step"),
  "create_optimizer": ("optimizer", "create_optimizer"),
  "create_schedule": ("optimizer", "create_schedule"),
  "weight_decay_mask": ("optimizer", "weight_decay_mask"),
  "JitEngine": ("parallel", "JitEngine"),
  "PmapEngine": ("parallel", "PmapEngine"),
  "make_mesh": ("parallel", "make_mesh"),
  "state_shardings": ("parallel", "state_shardings"),
  "TrainState": ("state", "TrainState"),
  "init_state": ("state", "init_state"),
  "make_eval_step": ("steps", "make_eval_step"),
  "make_train_step": ("steps", "make_train_step"),
  "synthetic_batches": ("synthetic", "synthetic_batches"),
  "TASKS": ("jaxres.tasks", "TASKS"),
  "ClassificationTask": ("jaxres.tasks", "ClassificationTask"),
  "Task": ("jaxres.tasks", "Task"),
  "make_task": ("jaxres.tasks", "make_task"),
  "initialize_distributed": ("distributed", "initialize"),
  "StopRequest": ("preemption", "StopRequest"),
  # The `video` extra (ml_collections, orbax-checkpoint, TensorFlow, matplotlib).
  "apply_override": ("config", "apply_override"),
  "default_config": ("config", "default_config"),
  "load_config": ("config", "load_config"),
  "Checkpointer": ("checkpoint", "Checkpointer"),
  "NonFiniteLossError": ("loop", "NonFiniteLossError"),
  "evaluate": ("loop", "evaluate"),
  "train_and_evaluate": ("loop", "train_and_evaluate"),
  "MetricWriter": ("writers", "MetricWriter"),
  "plot_curves": ("writers", "plot_curves"),
  "read_metrics": ("writers", "read_metrics"),
  "load_run": ("run", "load_run"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
  if name in _EXPORTS:
    module_name, attr = _EXPORTS[name]
    module = module_name if "." in module_name else f"{__name__}.{module_name}"
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # later lookups skip this function
    return value
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
  return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names above load on first use
  from jaxres.tasks import TASKS, ClassificationTask, Task, make_task
  from jaxres.train.build import build_engine, build_model, build_task, build_train_step
  from jaxres.train.checkpoint import Checkpointer
  from jaxres.train.config import apply_override, default_config, load_config
  from jaxres.train.distributed import initialize as initialize_distributed
  from jaxres.train.loop import NonFiniteLossError, evaluate, train_and_evaluate
  from jaxres.train.optimizer import create_optimizer, create_schedule, weight_decay_mask
  from jaxres.train.parallel import JitEngine, PmapEngine, make_mesh, state_shardings
  from jaxres.train.preemption import StopRequest
  from jaxres.train.run import load_run
  from jaxres.train.state import TrainState, init_state
  from jaxres.train.steps import make_eval_step, make_train_step
  from jaxres.train.synthetic import synthetic_batches
  from jaxres.train.writers import MetricWriter, plot_curves, read_metrics
