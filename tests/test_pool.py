"""`jaxres.models.pool.max_pool`: flax's max pool and its gradient, ties included."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxres.models.pool import max_pool

# (input shape, window, strides, padding): the video stems' pool, Slow/I3D's stage-1 time pool,
# the 2D ResNets' stem pool.
CASES = {
  "stem_1x3x3": ((2, 4, 9, 10, 5), (1, 3, 3), (1, 2, 2), ((0, 0), (1, 1), (1, 1))),
  "time_2x1x1": ((2, 6, 5, 5, 3), (2, 1, 1), (2, 1, 1), ((0, 0), (0, 0), (0, 0))),
  "image_3x3": ((2, 9, 10, 4), (3, 3), (2, 2), ((1, 1), (1, 1))),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_max_pool_and_its_gradient_match_flax_with_ties(case):
  shape, window, strides, padding = CASES[case]
  x = jnp.maximum(jax.random.normal(jax.random.key(0), shape), 0.0)  # ties: a ReLU's zeros
  x = x.at[0, ..., 0].set(0.0)  # a channel of zeros: every window ties throughout
  x = x.at[1, ..., 1].set(1.0)  # and of equal positive values
  want_y = nn.max_pool(x, window, strides, padding)
  dy = jax.random.normal(jax.random.key(1), want_y.shape)

  @jax.jit
  def both(x):
    ours = lambda x: jnp.vdot(max_pool(x, window, strides, padding), dy)
    flax = lambda x: jnp.vdot(nn.max_pool(x, window, strides, padding), dy)
    return max_pool(x, window, strides, padding), jax.grad(ours)(x), jax.grad(flax)(x)

  y, got, want = both(x)
  np.testing.assert_array_equal(y, want_y)
  # Each window's gradient goes to its first maximum as in XLA's select-and-scatter: a tie sent
  # elsewhere would move a whole dy value; only the order of the sums where windows overlap
  # differs (float32 rounding).
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * float(jnp.abs(dy).max()))
  assert float(jnp.abs(got).sum()) > 0


def test_max_pool_refuses_mismatched_window_strides_and_padding():
  with pytest.raises(ValueError, match="needs 3 window sizes, strides and paddings"):
    max_pool(jnp.zeros((1, 4, 4, 4, 2)), (3, 3), (2, 2), ((1, 1), (1, 1)))
