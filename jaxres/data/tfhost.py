"""TensorFlow for host-side input work only: importing this hides every GPU from TensorFlow.

TF would otherwise reserve accelerator memory the JAX program needs. Data modules import `tf` from
here, so the first of them to load does it before any TF op has run.

Example:
  >>> from jaxres.data.tfhost import tf
"""

from __future__ import annotations

import tensorflow as tf

try:
  tf.config.set_visible_devices([], "GPU")
except RuntimeError:  # Devices were already initialised by someone else; too late to change.
  pass

__all__ = ["tf"]
