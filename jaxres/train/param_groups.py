"""Parameter groups by path: frozen parameters, per-group learning rates, groups that start late.

Fine-tuning trains some parameters less or not at all: a pretrained backbone under a new head,
BasicSR's flow network at 1/8 of the rate and fixed for its first 5,000 iterations. The groups are
regular expressions searched in each parameter's path (`"layer4_1/conv2/kernel"`,
`"spynet/basic_module_0/conv_0/kernel"`), from `config.optimizer`:

- `frozen`: matching parameters never change; neither do the BatchNorm statistics of matching
  modules (their paths are the same up to the leaf).
- `trainable`: when not empty, every parameter that matches none of these is frozen (e.g.
  `("^fc/",)` trains the classifier alone).
- `lr_multipliers`: `(pattern, factor)` pairs; a parameter's update is scaled by the first matching
  factor (the learning rate of that group times the factor, for SGD exactly).
- `frozen_until`: `(pattern, step)` pairs; matching parameters (and statistics) stay fixed before that
  step, as BasicSR's `fix_flow_iter`.

Frozen parameters get a zero gradient before the optimiser (so its moments do not move) and a
zero update after it (so weight decay does not move them either), like PyTorch's parameters with
`requires_grad=False`.

Example:
  >>> groups = ParamGroups(lr_multipliers={"spynet/": 0.125}, frozen_until={"spynet/": 5000})
  >>> tx = groups.wrap(optax.adam(2e-4))
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Mapping, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from jaxres.inference.shapes import path_name


def _pairs(value) -> list[tuple[str, Any]]:
  """`(pattern, value)` pairs from a mapping or a sequence of pairs (what JSON gives back)."""
  items = value.items() if hasattr(value, "items") else value
  return [(str(k), v) for k, v in items]


class _Count(NamedTuple):
  count: jax.Array


@dataclasses.dataclass(frozen=True)
class ParamGroups:
  """See the module notes; `from_config` reads them from `config.optimizer`."""

  frozen: tuple[str, ...] = ()
  trainable: tuple[str, ...] = ()
  lr_multipliers: Mapping[str, float] = dataclasses.field(default_factory=dict)
  frozen_until: Mapping[str, int] = dataclasses.field(default_factory=dict)

  @classmethod
  def from_config(cls, optimizer_config) -> "ParamGroups":
    """The groups of `config.optimizer` (its `frozen`, `trainable`, `lr_multipliers`,
    `frozen_until`), each pattern checked to compile.

    Raises:
      ValueError: a pattern that is not a regular expression, a negative factor or step.
    """
    groups = cls(
      frozen=tuple(optimizer_config.frozen),
      trainable=tuple(optimizer_config.trainable),
      lr_multipliers={k: float(v) for k, v in _pairs(optimizer_config.lr_multipliers)},
      frozen_until={k: int(v) for k, v in _pairs(optimizer_config.frozen_until)},
    )
    for key, patterns in (
      ("frozen", groups.frozen),
      ("trainable", groups.trainable),
      ("lr_multipliers", groups.lr_multipliers),
      ("frozen_until", groups.frozen_until),
    ):
      for pattern in patterns:
        try:
          re.compile(pattern)
        except re.error as e:
          raise ValueError(
            f"config.optimizer.{key}: {pattern!r} is not a regular expression ({e})."
          ) from None
    if any(v < 0 for v in groups.lr_multipliers.values()):
      raise ValueError("config.optimizer.lr_multipliers: factors must be >= 0.")
    if any(v < 0 for v in groups.frozen_until.values()):
      raise ValueError("config.optimizer.frozen_until: steps must be >= 0.")
    return groups

  @property
  def active(self) -> bool:
    """Whether any group is set (otherwise the optimiser and step are left as they are)."""
    return bool(self.frozen or self.trainable or self.lr_multipliers or self.frozen_until)

  def is_frozen(self, name: str) -> bool:
    """Whether the parameter (or statistic) at `name` never changes."""
    if any(re.search(p, name) for p in self.frozen):
      return True
    return bool(self.trainable) and not any(re.search(p, name) for p in self.trainable)

  def multiplier(self, name: str) -> float:
    """The factor on the update of the parameter at `name` (0 when frozen)."""
    if self.is_frozen(name):
      return 0.0
    return next((f for p, f in self.lr_multipliers.items() if re.search(p, name)), 1.0)

  def start_step(self, name: str) -> int:
    """The step from which the parameter at `name` changes (0: from the start)."""
    return max((s for p, s in self.frozen_until.items() if re.search(p, name)), default=0)

  def _gate(self, name: str, count: jax.Array, factor: float):
    start = self.start_step(name)
    return factor if not start else jnp.where(count >= start, factor, 0.0)

  def wrap(self, tx: optax.GradientTransformation) -> optax.GradientTransformation:
    """`tx` with the groups applied: frozen gradients zeroed before it, updates scaled after it.

    Example:
      >>> tx = ParamGroups(trainable=("^fc/",)).wrap(optax.sgd(0.1, momentum=0.9))
    """
    if not self.active:
      return tx

    def scaled(scale: bool) -> optax.GradientTransformation:
      def init(params):
        del params
        return _Count(jnp.zeros([], jnp.int32))

      def update(updates, state, params=None):
        del params

        def one(path, u):
          name = path_name(path)
          factor = self.multiplier(name) if scale else (0.0 if self.is_frozen(name) else 1.0)
          gate = self._gate(name, state.count, factor)
          return u if isinstance(gate, float) and gate == 1.0 else u * jnp.asarray(gate, u.dtype)

        return jax.tree_util.tree_map_with_path(one, updates), _Count(state.count + 1)

      return optax.GradientTransformation(init, update)

    return optax.chain(scaled(False), tx, scaled(True))

  def keep_frozen_statistics(self, new: Any, old: Any, step: jax.Array) -> Any:
    """`new` BatchNorm statistics, with those of frozen modules (at `step`) kept at `old`.

    Example:
      >>> batch_stats = groups.keep_frozen_statistics(batch_stats, state.batch_stats, state.step)
    """

    def one(path, n, o):
      name = path_name(path)
      if self.is_frozen(name):
        return o
      start = self.start_step(name)
      return n if not start else jnp.where(step >= start, n, o)

    return jax.tree_util.tree_map_with_path(one, new, old)

  def describe(self, params: Any) -> Optional[str]:
    """One line saying how many parameters each group holds, or None without groups.

    Example:
      >>> groups.describe(state.params)
      'frozen: 60 of 62 arrays (11,172,032 of 11,181,642 values); ...'
    """
    if not self.active:
      return None
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    frozen = [(path_name(p), x.size) for p, x in leaves if self.is_frozen(path_name(p))]
    parts = [
      f"frozen: {len(frozen)} of {len(leaves)} arrays "
      f"({sum(s for _, s in frozen):,} of {sum(x.size for _, x in leaves):,} values)"
    ]
    for pattern, factor in self.lr_multipliers.items():
      n = sum(1 for p, _ in leaves if re.search(pattern, path_name(p)))
      parts.append(f"x{factor:g} learning rate: {n} arrays matching {pattern!r}")
    for pattern, start in self.frozen_until.items():
      n = sum(1 for p, _ in leaves if re.search(pattern, path_name(p)))
      parts.append(f"fixed until step {start}: {n} arrays matching {pattern!r}")
    return "; ".join(parts)
