"""Serving a trained model: rebuild it and restore its variables, nothing of training.

Loading for inference reads a run's config and the model's variables only (no optimiser state,
no engine, no mesh), so predicting, exporting and upscaling start quickly and need neither optax
nor the training stack. `load_pretrained` needs only the core install; `load_run` also reads the
run's config (ml_collections) and checkpoint (orbax), from the `video` extra. The names load
their modules on first use.

Example:
  >>> from jaxres.inference import load_run
  >>> run = load_run("runs/demo")
  >>> logits = run.model.apply(run.variables, clips, train=False)
  >>> model, variables, info = load_pretrained("r3d_18.kinetics400")   # published weights
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
  "IncompatibleCheckpointError": "jaxres.inference.shapes",
  "PretrainedInfo": "jaxres.inference.pretrained",
  "load_pretrained": "jaxres.inference.pretrained",
  "Run": "jaxres.inference.runs",
  "load_run": "jaxres.inference.runs",
  "read_config": "jaxres.inference.runs",
}


def __getattr__(name: str) -> Any:
  if name in _EXPORTS:
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
  return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:
  from jaxres.inference.pretrained import PretrainedInfo, load_pretrained
  from jaxres.inference.runs import Run, load_run, read_config
  from jaxres.inference.shapes import IncompatibleCheckpointError
