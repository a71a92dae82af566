"""A model's variable shapes, and what differs between them and a tree read from a file.

Needs only the core install (no configs, no checkpointing library), so published weights load
with it.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


class IncompatibleCheckpointError(ValueError):
  """A checkpoint that does not fit the model its config describes, or cannot be read."""


def abstract_variables(model, input_rank: int) -> Any:
  """The shapes and dtypes of `model`'s `{"params", "batch_stats"}`, computed without running it.

  Parameter shapes do not depend on the input's size, so a small input of the model's rank
  stands in for any.

  Args:
    model: the flax module.
    input_rank: 5 for clips, 4 for images (`jaxres.models.spec(name).input_rank`).

  Returns:
    The tree of `jax.ShapeDtypeStruct`s.

  Example:
    >>> abstract_variables(models.get("r3d_18"), 5)["params"]["fc"]["kernel"].shape
    (512, 400)
  """
  x = jnp.zeros((1, 2, 32, 32, 3) if input_rank == 5 else (1, 32, 32, 3), jnp.float32)
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
  return {"params": shapes["params"], "batch_stats": shapes.get("batch_stats", {})}


def mismatches(variables: Any, expected: Any) -> list[str]:
  """What differs between two variable trees: missing or unexpected paths, and other shapes.

  Args:
    variables: the tree read from a file (arrays).
    expected: the model's tree (arrays or `jax.ShapeDtypeStruct`s).

  Returns:
    One line per difference, e.g. `"params/fc/kernel: shape (64, 4) where the model has (64, 10)"`.

  Example:
    >>> mismatches(variables, abstract_variables(model, 5))
    []
  """
  have = _shapes(variables)
  want = _shapes(expected)
  lines = [
    f"{k}: shape {have[k]} where the model has {want[k]}"
    for k in sorted(have.keys() & want.keys())
    if have[k] != want[k]
  ]
  lines += [f"{k}: missing" for k in sorted(want.keys() - have.keys())]
  lines += [f"{k}: not in the model" for k in sorted(have.keys() - want.keys())]
  return lines


def path_name(path) -> str:
  """A key path (`jax.tree_util`) as `"params/fc/kernel"`.

  Example:
    >>> path_name(jax.tree_util.tree_flatten_with_path({"fc": {"kernel": 0}})[0][0][0])
    'fc/kernel'
  """
  return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


def _shapes(tree: Any) -> dict[str, tuple[int, ...]]:
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {path_name(path): tuple(leaf.shape) for path, leaf in flat}
