"""Optimisers and learning-rate schedules from config (optax).

`config.optimizer` chooses the update rule, `config.schedule` the learning rate over steps:

- `optimizer.name`: "sgd" (momentum, optional Nesterov), "adamw", "lamb" or "lars" (the last two
  for large batches). Weight decay applies to kernels only: BatchNorm scales/biases and dense
  biases (every parameter with fewer than 2 dimensions) are skipped.
- `optimizer.grad_clip_norm`: clip the global gradient norm first (0: off).
- `schedule.name`: "cosine" (to 0) or "step" (multiply by `decay_factor` at each of
  `boundaries`), or "constant", each after `warmup_steps` of linear warm-up from 0.
- The peak learning rate is `optimizer.learning_rate`, times `global_batch_size /
  optimizer.reference_batch_size` when the latter is set (the linear scaling rule).
- `optimizer.frozen`, `trainable`, `lr_multipliers`, `frozen_until`: parameter groups
  (`jaxres.train.param_groups`).

Example:
  >>> tx, schedule = create_optimizer(config)
  >>> opt_state = tx.init(params)
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import optax

from jaxres.train.param_groups import ParamGroups

Schedule = Callable[[Any], Any]


def weight_decay_mask(params: Any) -> Any:
  """True for the parameters that get weight decay: those with 2+ dimensions (kernels)."""
  return jax.tree.map(lambda p: p.ndim > 1, params)


def peak_learning_rate(config) -> float:
  """`optimizer.learning_rate`, scaled by the global batch when `reference_batch_size` is set."""
  lr = config.optimizer.learning_rate
  if config.optimizer.reference_batch_size:
    lr *= config.global_batch_size / config.optimizer.reference_batch_size
  return lr


def create_schedule(config) -> Schedule:
  """The learning rate as a function of the step (see the module notes).

  Args:
    config: needs `schedule`, `optimizer.learning_rate`, `global_batch_size`, `num_train_steps`.

  Returns:
    An optax schedule.

  Example:
    >>> create_schedule(config)(0)   # 0.0 at the start of warm-up
  """
  s = config.schedule
  peak = peak_learning_rate(config)
  warmup = int(s.warmup_steps)
  total = int(config.num_train_steps)
  if s.name == "cosine":
    main = optax.cosine_decay_schedule(peak, max(total - warmup, 1))
  elif s.name == "step":
    main = optax.piecewise_constant_schedule(
      peak, {int(b) - warmup: s.decay_factor for b in s.boundaries if int(b) > warmup}
    )
  elif s.name == "constant":
    main = optax.constant_schedule(peak)
  else:
    raise ValueError(f"schedule.name must be 'cosine', 'step' or 'constant', got {s.name!r}.")
  if not warmup:
    return main
  return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), main], [warmup])


def create_optimizer(config) -> tuple[optax.GradientTransformation, Schedule]:
  """The optax optimiser of `config.optimizer` with its schedule.

  Args:
    config: the training config (see the module notes for the keys).

  Returns:
    `(tx, schedule)`.

  Example:
    >>> tx, schedule = create_optimizer(config)
  """
  o = config.optimizer
  schedule = create_schedule(config)
  wd = o.weight_decay
  if o.name == "sgd":
    tx = optax.chain(
      optax.add_decayed_weights(wd, weight_decay_mask) if wd else optax.identity(),
      optax.sgd(schedule, momentum=o.momentum or None, nesterov=o.nesterov),
    )
  elif o.name == "adamw":
    tx = optax.adamw(schedule, b1=o.b1, b2=o.b2, eps=o.eps, weight_decay=wd, mask=weight_decay_mask)
  elif o.name == "lamb":
    tx = optax.lamb(schedule, b1=o.b1, b2=o.b2, eps=o.eps, weight_decay=wd, mask=weight_decay_mask)
  elif o.name == "lars":
    tx = optax.lars(
      schedule,
      weight_decay=wd,
      weight_decay_mask=weight_decay_mask,
      trust_ratio_mask=weight_decay_mask,
      trust_coefficient=o.trust_coefficient,
      momentum=o.momentum,
      nesterov=o.nesterov,
    )
  else:
    raise ValueError(f"optimizer.name must be 'sgd', 'adamw', 'lamb' or 'lars', got {o.name!r}.")
  if o.grad_clip_norm:
    tx = optax.chain(optax.clip_by_global_norm(o.grad_clip_norm), tx)
  return ParamGroups.from_config(o).wrap(tx), schedule
