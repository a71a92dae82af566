"""A model from its config section: the registry name plus constructor arguments, as data.

A training config's `model` section (`{"name": "r3d_18", "num_classes": 400, "dtype": "bfloat16",
"conv_lowering": "auto", "remat": "none"}`) is all it takes to rebuild the module, so training,
inference and exported runs build it the same way from one function.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp

from jaxres.models import registry
from jaxres.models.blocks import remat_block
from jaxres.models.conv import LOWERINGS

DTYPES = {
  "float64": jnp.float64,
  "float32": jnp.float32,
  "bfloat16": jnp.bfloat16,
  "float16": jnp.float16,
}


def from_config(model_config: Mapping[str, Any], *, bn_axis_name: str | None = None):
  """The module a `model` config section describes (dtype names become dtypes).

  `conv_lowering` pins the convolutions' lowering ("auto" leaves the model's choice) and `remat`
  rematerialises every residual block (`jaxres.models.blocks.remat_block`: "none", "block" or a
  `jax.checkpoint_policies` name).

  Args:
    model_config: `name` plus the model's constructor arguments (a dict or a `ConfigDict`).
    bn_axis_name: the mapped axis BatchNorm averages its batch statistics over (for `pmap`).

  Returns:
    The flax module.

  Raises:
    KeyError: an unknown model name.
    ValueError: an unknown dtype, lowering or remat policy, or one the model does not take.

  Example:
    >>> model = from_config({"name": "r3d_18", "num_classes": 400, "dtype": "bfloat16"})
  """
  kwargs = dict(model_config)
  name = kwargs.pop("name")
  for key in ("dtype", "param_dtype"):
    if isinstance(kwargs.get(key), str):
      if kwargs[key] not in DTYPES:
        raise ValueError(
          f"config.model.{key} must be one of {sorted(DTYPES)}, got {kwargs[key]!r}."
        )
      if kwargs[key] == "float64" and not jax.enable_x64.value:
        raise ValueError(
          f"config.model.{key}='float64' needs 64-bit JAX: set JAX_ENABLE_X64=1 in the "
          "environment (float64 is for exactness checks; it is slow)."
        )
      kwargs[key] = DTYPES[kwargs[key]]
  if bn_axis_name is not None:
    kwargs["bn_axis_name"] = bn_axis_name
  lowering = kwargs.pop("conv_lowering", "auto")
  remat = kwargs.pop("remat", "none")
  model = registry.get(name, **kwargs)
  if lowering != "auto":
    if lowering not in LOWERINGS:
      raise ValueError(f"config.model.conv_lowering must be one of {LOWERINGS}, got {lowering!r}.")
    if not hasattr(model, "conv_lowering"):
      raise ValueError(
        f"config.model.conv_lowering={lowering!r}: model {name!r} has no choice of "
        'convolution lowering (the ResNets do); leave it "auto".'
      )
    model = model.clone(conv_lowering=lowering)
  if remat != "none":
    if not hasattr(model, "block_cls"):
      raise ValueError(
        f"config.model.remat={remat!r}: model {name!r} takes no residual block "
        'class to rematerialise (the ResNets do); leave it "none".'
      )
    try:
      model = model.clone(block_cls=remat_block(model.block_cls, remat))
    except ValueError as e:
      raise ValueError(f"config.model.remat: {e}") from None
  return model
