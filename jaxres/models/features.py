"""Access to a model's intermediate features without a second model class."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax


def features(
  model: nn.Module, variables: Any, x: jax.Array, *, train: bool = False
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Runs `model` and returns its output with the features it sowed.

  Every jaxres classifier sows a dict of `stem`, `stage1`, ..., `pre_logits` as "features" into the
  "intermediates" collection; this collects it (in eval mode the BatchNorm statistics are not touched).

  Args:
    model: a jaxres model.
    variables: its variables (`{"params", "batch_stats"}`).
    x: the input batch.
    train: BatchNorm mode; in train mode the updated statistics are discarded.

  Returns:
    `(output, {name: array})`.

  Example:
    >>> logits, feats = features(model, variables, clips)
    >>> feats["stage4"].shape   # (B, T/8, H/16, W/16, 512) for r3d_18
  """
  mutable = ["intermediates", "batch_stats"] if train else ["intermediates"]
  out, state = model.apply(variables, x, train=train, mutable=mutable)
  # Models sow one dict named "features" per call; `sow` wraps what it stores in a tuple.
  return out, dict(state["intermediates"]["features"][0])
