"""Serving a trained model: rebuild it and restore its variables, nothing of training.

Loading for inference reads a run's config and the model's variables only (no optimiser state,
no engine, no mesh), so predicting, exporting and upscaling start quickly and need neither optax
nor the training stack.

Example:
  >>> from jaxres.inference import load_run
  >>> run = load_run("runs/demo")
  >>> logits = run.model.apply(run.variables, clips, train=False)
  >>> model, variables, info = load_pretrained("r3d_18.kinetics400")   # published weights
"""

from jaxres.inference.pretrained import PretrainedInfo, load_pretrained
from jaxres.inference.runs import IncompatibleCheckpointError, Run, load_run, read_config
