"""jaxres: residual networks for video in JAX/Flax.

`import jaxres` stays light: the names below load their modules on first use (PEP 562).

Example:
  >>> import jaxres
  >>> run = jaxres.load_run("runs/demo")             # model, variables, config, step of a run
  >>> logits = run.model.apply(run.variables, clips, train=False)
  >>> model, variables, info = jaxres.load_pretrained("r3d_18.kinetics400")   # published weights
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Exported name -> (module, attribute); loaded when first used.
_EXPORTS = {
  "load_pretrained": ("jaxres.inference.pretrained", "load_pretrained"),
  "load_run": ("jaxres.inference.runs", "load_run"),
  "load_variables": ("jaxres.convert.files", "load_variables"),
  "predict_video": ("jaxres.predict", "predict_video"),
}


def __getattr__(name: str) -> Any:
  if name in _EXPORTS:
    module, attr = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
  return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # for type checkers and IDEs
  from jaxres.convert.files import load_variables
  from jaxres.inference.pretrained import load_pretrained
  from jaxres.inference.runs import load_run
  from jaxres.predict import predict_video
