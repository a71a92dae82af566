"""Mixup and cutmix for clips: one mixing weight per batch, one cutmix box shared by all frames."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def mix_clips(
  video: jax.Array,
  rng: jax.Array,
  *,
  mixup_alpha: float,
  cutmix_alpha: float,
  switch_prob: float = 0.5,
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Mixes every clip with another clip of the batch.

  Args:
    video: `[B, T, H, W, C]` (or images `[B, H, W, C]`).
    rng: a PRNG key.
    mixup_alpha: Beta parameter of mixup; 0 turns mixup off.
    cutmix_alpha: Beta parameter of cutmix; 0 turns cutmix off.
    switch_prob: probability of cutmix when both are on.

  Returns:
    `(mixed, perm, lam)`: the mixed batch, the partner index of every clip, and the weight of the
    clip's own label (for cutmix, the fraction of the frame area it kept).

  Example:
    >>> mixed, perm, lam = mix_clips(clips, key, mixup_alpha=0.2, cutmix_alpha=1.0)
    >>> targets = lam * onehot + (1 - lam) * onehot[perm]
  """
  if not (mixup_alpha or cutmix_alpha):
    raise ValueError("mix_clips needs mixup_alpha or cutmix_alpha > 0.")
  k_perm, k_mix, k_cut, k_box, k_switch = jax.random.split(rng, 5)
  perm = jax.random.permutation(k_perm, video.shape[0])
  partner = video[perm]

  def mixup_(_):
    lam = jax.random.beta(k_mix, mixup_alpha, mixup_alpha)
    return (lam * video + (1 - lam) * partner).astype(video.dtype), lam

  def cutmix_(_):
    h, w = video.shape[-3], video.shape[-2]
    lam = jax.random.beta(k_cut, cutmix_alpha, cutmix_alpha)
    cut = jnp.sqrt(1.0 - lam)
    ch, cw = jnp.round(h * cut).astype(jnp.int32), jnp.round(w * cut).astype(jnp.int32)
    cy, cx = jax.random.randint(k_box, (2,), 0, jnp.array([h, w]))
    y0, y1 = jnp.clip(cy - ch // 2, 0, h), jnp.clip(cy + ch // 2, 0, h)
    x0, x1 = jnp.clip(cx - cw // 2, 0, w), jnp.clip(cx + cw // 2, 0, w)
    ys, xs = jnp.arange(h)[:, None], jnp.arange(w)[None, :]
    box = ((ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1))[..., None]
    lam = 1.0 - ((y1 - y0) * (x1 - x0)) / (h * w)  # the area actually kept
    return jnp.where(box, partner, video), lam.astype(jnp.float32)

  if mixup_alpha and cutmix_alpha:
    use_cutmix = jax.random.uniform(k_switch) < switch_prob
    mixed, lam = jax.lax.cond(use_cutmix, cutmix_, mixup_, None)
  elif cutmix_alpha:
    mixed, lam = cutmix_(None)
  else:
    mixed, lam = mixup_(None)
  return mixed, perm, jnp.asarray(lam, jnp.float32)
