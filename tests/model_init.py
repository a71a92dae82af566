"""Model variables for the tests: the model's own initialisers, at a small compile cost."""

import functools

import jax


def init_variables(model, *args, seed: int = 0, **kwargs):
  """`model.init(key, *args, **kwargs)` compiled, with a key of XLA's RngBitGenerator ("rbg").

  The draws follow the model's own initialisers (same distributions, other values than a threefry
  key gives). XLA:CPU compiles each threefry draw in about 0.18 s, one per parameter (11.8 s for
  r3d_tiny's init), against 2.4 s for the whole init with rbg; run op by op, init compiles every
  operation of the forward pass once more (28 s for r3d_18).

  Args:
    model: a flax module.
    *args: its inputs.
    seed: the key's seed.
    **kwargs: keyword arguments of its `__call__` (e.g. `train=False`).

  Returns:
    The variables, as `model.init` returns them.

  Example:
    >>> variables = init_variables(models.get("r3d_tiny"), x, train=False)
  """
  init = functools.partial(model.init, **kwargs)
  return jax.jit(init)(jax.random.key(seed, impl="rbg"), *args)
