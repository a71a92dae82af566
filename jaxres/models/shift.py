"""The temporal shift of TSM (Lin et al. 2019), as MMAction2's `TemporalShift.shift` computes it."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def temporal_shift(x: jax.Array, num_segments: int, shift_div: int = 8) -> jax.Array:
  """Shifts 1/`shift_div` of the channels one frame back in time and 1/`shift_div` one forward.

  Frames are the leading axis, `num_segments` consecutive ones per clip (a clip batch folded as
  `[B * T, ...]`). With `fold = C // shift_div`: channels `[0, fold)` of frame t take frame t + 1's
  (zeros at the last frame), channels `[fold, 2 * fold)` take frame t - 1's (zeros at the first),
  the others stay. No parameters.

  Args:
    x: `[B * num_segments, ..., C]`, channels last.
    num_segments: frames per clip.
    shift_div: 8 in TSM (a quarter of the channels move).

  Returns:
    The shifted array, of `x`'s shape.

  Example:
    >>> y = temporal_shift(frames, num_segments=8)   # frames [B * 8, H, W, C]
  """
  if x.shape[0] % num_segments:
    raise ValueError(f"temporal_shift: {x.shape[0]} frames are not clips of {num_segments}.")
  fold = x.shape[-1] // shift_div
  clips = x.reshape((-1, num_segments) + x.shape[1:])
  rest = [(0, 0)] * (clips.ndim - 2)
  back = jnp.pad(clips[:, 1:, ..., :fold], [(0, 0), (0, 1)] + rest)
  forward = jnp.pad(clips[:, :-1, ..., fold : 2 * fold], [(0, 0), (1, 0)] + rest)
  out = jnp.concatenate([back, forward, clips[..., 2 * fold :]], axis=-1)
  return out.reshape(x.shape)
