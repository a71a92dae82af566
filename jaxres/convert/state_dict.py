"""The conversion every reference library shares: torch-named tensors -> jaxres variables by rules.

A converter gives module-path rules (torch module path regex -> jaxres module path); leaves map by
name (`weight` -> `kernel` or BatchNorm `scale`, `bias`, `running_mean` -> `mean`, `running_var`
-> `var`) and kernels are transposed to channels-last. Every key must land on a variable of the
right shape and every variable must be filled, or one `ConversionError` names them all, in one
format for every converter.

`convert_state_dict` builds the registered model from the classifier's width and converts;
`convert_arrays` is the loop itself, for converters that build the expected variables otherwise
(BasicSR's networks, read their widths from the weights).

Torch tensors are read through `.numpy()`, so nothing here imports torch.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Sequence, Union

import flax
import jax
import jax.numpy as jnp
import numpy as np

from jaxres import models

# (torch module path regex, jaxres module path): a replacement string (`\1` for groups) or a
# function of the match. First match wins; patterns end in `$`.
Rules = Sequence[tuple[str, Union[str, Callable[[re.Match], str]]]]


class ConversionError(ValueError):
  """A state dict does not fit the architecture; the message lists every offending key."""


def to_numpy(value: Any) -> np.ndarray:
  """A torch tensor or array-like as a numpy array."""
  if hasattr(value, "detach"):  # a torch tensor
    value = value.detach().cpu().numpy()
  return np.asarray(value)


def _target(torch_key: str, value: np.ndarray, rules: Rules) -> tuple[str, str] | None:
  """(collection, 'path/to/leaf') of a torch key, or None if no rule knows it."""
  module_path, _, leaf = torch_key.rpartition(".")
  for pattern, replacement in rules:
    match = re.match(pattern, module_path)
    if match:
      path = replacement(match) if callable(replacement) else match.expand(replacement)
      break
  else:
    return None
  if leaf == "weight":
    return "params", f"{path}/{'scale' if value.ndim == 1 else 'kernel'}"
  if leaf == "bias":
    return "params", f"{path}/bias"
  if leaf == "running_mean":
    return "batch_stats", f"{path}/mean"
  if leaf == "running_var":
    return "batch_stats", f"{path}/var"
  return None


def raise_if_unconverted(
  arch: str, unknown: Sequence[str], missing: Sequence[str], mismatched: Sequence[str]
) -> None:
  """Raises one `ConversionError` listing every offending key, if there is any.

  Args:
    arch: the architecture converted to.
    unknown: state-dict keys no rule maps; missing: parameters no key filled;
      mismatched: "key shape -> path shape" descriptions.

  Example:
    >>> raise_if_unconverted("r3d_18", [], ["params/fc/bias"], [])   # ConversionError
  """
  if unknown or missing or mismatched:
    lines = [f"Cannot convert this state dict to {arch}:"]
    for title, items in (
      ("unknown keys", unknown),
      ("missing parameters", missing),
      ("shape mismatches", mismatched),
    ):
      if items:
        lines.append(f"  {title} ({len(items)}): " + ", ".join(items))
    raise ConversionError("\n".join(lines))


def _to_jax_layout(value: np.ndarray, leaf: str) -> np.ndarray:
  # torch conv [O, I, *k] -> [*k, I, O]; linear [O, I] -> [I, O].
  if leaf == "kernel":
    return np.transpose(value, tuple(range(2, value.ndim)) + (1, 0))
  return value


def convert_arrays(
  arrays: Mapping[str, Any],
  expected: Mapping[str, Any],
  rules: Rules,
  *,
  arch: str,
  dtype: Any = np.float32,
) -> dict[str, Any]:
  """Maps torch-named `arrays` onto the variable tree `expected` by `rules`.

  Args:
    arrays: torch-named tensors (torch tensors or numpy arrays); `num_batches_tracked` entries are
      ignored.
    expected: the variables to fill, `{collection: tree}` of anything with a `.shape` (e.g. from
      `jax.eval_shape` of `model.init`); keys landing in a collection it lacks are unknown.
    rules: (torch module path regex, jaxres module path replacement) pairs, first match wins.
    arch: the architecture converted to, for the message.
    dtype: dtype of the returned arrays.

  Returns:
    `{collection: tree}` of numpy arrays, with the collections of `expected`.

  Raises:
    ConversionError: naming every unknown key, missing parameter and shape mismatch (shapes each in
      its own library's layout).

  Example:
    >>> expected = jax.eval_shape(lambda x: model.init(key, x), x)
    >>> variables = convert_arrays(state_dict, {"params": expected["params"]}, [(r"^fc$", "fc")],
    ...                            arch="edsr")
  """
  expected = {
    col: flax.traverse_util.flatten_dict(flax.core.unfreeze(tree), sep="/")
    for col, tree in expected.items()
  }
  converted = {col: {} for col in expected}
  unknown, mismatched = [], []
  for key, value in arrays.items():
    if key.endswith("num_batches_tracked"):
      continue
    value = to_numpy(value)
    target = _target(key, value, rules)
    if target is None or target[1] not in expected.get(target[0], {}):
      unknown.append(key)
      continue
    collection, path = target
    torch_shape = tuple(value.shape)
    value = _to_jax_layout(value, path.rpartition("/")[2])
    want = expected[collection][path].shape
    if value.shape != want:
      mismatched.append(f"{key} {torch_shape} -> {collection}/{path} {tuple(want)}")
      continue
    converted[collection][path] = value.astype(dtype)
  missing = [
    f"{col}/{path}" for col in expected for path in expected[col] if path not in converted[col]
  ]
  raise_if_unconverted(arch, unknown, missing, mismatched)
  return {col: flax.traverse_util.unflatten_dict(converted[col], sep="/") for col in converted}


def convert_state_dict(
  state_dict: Mapping[str, Any],
  arch: str,
  rules: Rules,
  *,
  classifier_key: str,
  reference: str,
  dtype: Any = np.float32,
  model_fields: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
  """Maps `state_dict` onto the variables of the registered model `arch` by `rules`.

  Args:
    state_dict: torch-named tensors (torch tensors or numpy arrays); `num_batches_tracked` entries
      are ignored.
    arch: a registered jaxres model name.
    rules: (torch module path regex, jaxres module path replacement) pairs, first match wins.
    classifier_key: the key of the classifier's weight; its rows give `num_classes`.
    reference: the library's name, for messages ("torchvision", "PyTorchVideo").
    dtype: dtype of the returned arrays.
    model_fields: further fields of the model (`models.get(arch, **model_fields)`), for weights of
      a variant of `arch`.

  Returns:
    `{"params": ..., "batch_stats": ...}` of numpy arrays.

  Raises:
    ConversionError: naming every unknown key, missing parameter and shape mismatch.

  Example:
    >>> convert_state_dict(sd, "r3d_18", [(r"^fc$", "fc"), ...], classifier_key="fc.weight",
    ...                    reference="torchvision")
  """
  if classifier_key not in state_dict:
    raise ConversionError(f"The state dict has no {classifier_key!r}; is it a {reference} {arch}?")
  num_classes = to_numpy(state_dict[classifier_key]).shape[0]

  model = models.get(arch, num_classes=num_classes, **(model_fields or {}))
  rank = models.spec(arch).input_rank
  dummy = jax.ShapeDtypeStruct((1, 4, 32, 32, 3) if rank == 5 else (1, 32, 32, 3), jnp.float32)
  expected = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), dummy)
  return convert_arrays(
    state_dict,
    {col: expected[col] for col in ("params", "batch_stats")},
    rules,
    arch=arch,
    dtype=dtype,
  )
