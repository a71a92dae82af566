"""A published model in one call: `load_pretrained("x3d_m.kinetics400")`.

The entry (`jaxres.weights`) names the architecture, its constructor arguments and the file; the
variables come from the cache (downloaded and converted the first time) and are checked against
the model's own shapes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional

import jax

from jaxres import models, weights
from jaxres.inference.shapes import IncompatibleCheckpointError, abstract_variables, mismatches


@dataclasses.dataclass(frozen=True)
class PretrainedInfo:
  """What comes with published weights.

  Attributes:
    name: the registry name, `ARCH.TAG`.
    arch: the jaxres model name.
    class_names: label -> name (None for models without classes).
    preprocessing: what the publisher evaluates with, in data-config keys (`num_frames`,
      `frame_stride`, `resize`, `crop_size`, `mean`, `std`, `eval_clips`, `eval_crops`).
    metrics: the published figures.
    source: where they are published.
    url: the publisher's file.
  """

  name: str
  arch: str
  class_names: Optional[tuple[str, ...]]
  preprocessing: Mapping[str, Any]
  metrics: Mapping[str, float]
  source: str
  url: str


def load_pretrained(
  name: str, *, progress: bool = True, **model_kwargs
) -> tuple[Any, dict[str, Any], PretrainedInfo]:
  """The model, its published variables and what the publisher says of them.

  Args:
    name: a `jaxres.weights` entry, e.g. `"r3d_18.kinetics400"` (`jaxres weights list`).
    progress: show a progress bar while downloading.
    **model_kwargs: constructor arguments on top of the entry's, e.g. `dtype=jnp.bfloat16`.

  Returns:
    `(model, variables, info)`: the flax module, `{"params", "batch_stats"}` on the default
    device, and a `PretrainedInfo`.

  Raises:
    KeyError: no such entry.
    jaxres.weights.WeightsError: the file cannot be had or does not check out.
    IncompatibleCheckpointError: the variables do not fit the model (e.g. `num_classes` changed).

  Example:
    >>> model, variables, info = load_pretrained("r3d_18.kinetics400")
    >>> logits = model.apply(variables, clips, train=False)      # clips: info.preprocessing
    >>> info.class_names[int(logits[0].argmax())]
  """
  entry = weights.get(name)
  model = models.get(entry.arch, **{**entry.model_kwargs, **model_kwargs})
  variables = weights.load_variables(entry, progress=progress)
  problems = mismatches(variables, abstract_variables(model, models.spec(entry.arch).input_rank))
  if problems:
    raise IncompatibleCheckpointError(
      f"The weights {name} do not fit {entry.arch} built with {model_kwargs}: "
      f"{'; '.join(problems[:5])}."
    )
  info = PretrainedInfo(
    name=entry.name,
    arch=entry.arch,
    class_names=entry.class_names(),
    preprocessing=dict(entry.preprocessing),
    metrics=dict(entry.metrics),
    source=entry.source,
    url=entry.url,
  )
  return model, jax.device_put(variables), info
