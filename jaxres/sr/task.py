"""The super-resolution training task: what the model sees, the loss, and the eval metrics.

Batches are `{"lr": [B, T, h, w, 3], "hr": [B, T, s*h, s*w, 3]}` float in [0, 1] (image models
run per frame on the clips). The training engine calls `model_input`, `loss_and_metrics` in the
train step, `eval_metrics` in the eval step (per-clip values, reduced on the host by `aggregate`).

Losses: `"l1"` (mean absolute error) or `"charbonnier"` (`mean(sqrt((x - y)^2 + eps^2))`, a smooth
L1 used by BasicVSR/LapSRN).

Eval metrics per clip (the mean over its frames of the per-frame value): `psnr`, `ssim` on RGB and
`psnr_y`, `ssim_y` on BT.601 Y, all with a border crop of `scale` pixels, and `psnr_y_bicubic`, the
bicubic baseline on the same frames; the model's output is clipped to [0, 1] and quantised to 8
bits first, as when it is saved. `aggregate` averages the clips of each video (`video_id`), then
the videos, as SR papers report per-video figures; `per_video` gives the table itself.

Example:
  >>> task = SuperResolutionTask(scale=4, loss="charbonnier")
  >>> loss, metrics = task.loss_and_metrics(model.apply(variables, task.model_input(batch)), batch)
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxres.models.sr import bicubic_upsample
from jaxres.sr import metrics

LOSSES = ("l1", "charbonnier")


@dataclasses.dataclass(frozen=True)
class SuperResolutionTask:
  """Loss and metrics of residual super-resolution.

  Attributes:
    scale: the SR factor (border crop of the metrics).
    loss: "l1" or "charbonnier".
    charbonnier_eps: epsilon of the Charbonnier loss.
  """

  scale: int = 4
  loss: str = "charbonnier"
  charbonnier_eps: float = 1e-3
  name = "super_resolution"

  def __post_init__(self):
    if self.loss not in LOSSES:
      raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}.")

  def model_input(self, batch: Mapping[str, jax.Array]) -> jax.Array:
    """The LR clips."""
    return batch["lr"]

  def check_batch(self, batch: Mapping[str, Any]) -> None:
    """Raises a clear error if `batch` is not an SR batch of this task's scale."""
    if "lr" not in batch or "hr" not in batch:
      raise ValueError(f"A super-resolution batch needs 'lr' and 'hr', got keys {sorted(batch)}.")
    lr, hr = batch["lr"].shape, batch["hr"].shape
    if hr[-3:] != (lr[-3] * self.scale, lr[-2] * self.scale, 3) or hr[:-3] != lr[:-3]:
      raise ValueError(f"lr {lr} and hr {hr} do not match scale {self.scale}.")

  def loss_and_metrics(self, outputs: jax.Array, batch: Mapping[str, jax.Array]
                       ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The training loss (a scalar) and scalar metrics of one batch.

    Args:
      outputs: the model's `[B, T, H, W, 3]` prediction.
      batch: the batch (its "hr" is the target).

    Returns:
      `(loss, {"loss", "l1", "psnr"})`; `psnr` is RGB, uncropped, on the unclipped output (a cheap
      training signal, not the reported figure).
    """
    hr = batch["hr"].astype(jnp.float32)
    diff = outputs.astype(jnp.float32) - hr
    l1 = jnp.mean(jnp.abs(diff))
    if self.loss == "l1":
      loss = l1
    else:
      loss = jnp.mean(jnp.sqrt(diff * diff + self.charbonnier_eps ** 2))
    mse = jnp.mean(diff * diff)
    return loss, {"loss": loss, "l1": l1, "psnr": -10.0 * jnp.log10(jnp.maximum(mse, 1e-10))}

  def eval_metrics(self, outputs: jax.Array, batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """Per-clip metrics `[B]` (see the module notes); passes `video_id` through when present."""
    sr = jnp.round(jnp.clip(outputs.astype(jnp.float32), 0.0, 1.0) * 255.0) / 255.0
    hr = batch["hr"].astype(jnp.float32)
    bicubic = jnp.round(jnp.clip(bicubic_upsample(batch["lr"].astype(jnp.float32), self.scale),
                                 0.0, 1.0) * 255.0) / 255.0
    frame_axes = tuple(range(1, sr.ndim - 3))  # time, for clips
    mean = lambda m: jnp.mean(m, axis=frame_axes) if frame_axes else m
    crop = self.scale
    out = {
        "psnr": mean(metrics.psnr(sr, hr, crop=crop)),
        "psnr_y": mean(metrics.psnr(sr, hr, crop=crop, y_channel=True)),
        "ssim": mean(metrics.ssim(sr, hr, crop=crop)),
        "ssim_y": mean(metrics.ssim(sr, hr, crop=crop, y_channel=True)),
        "psnr_y_bicubic": mean(metrics.psnr(bicubic, hr, crop=crop, y_channel=True)),
    }
    if "video_id" in batch:
      out["video_id"] = batch["video_id"]
    return out

  def per_video(self, per_clip: Iterable[Mapping[str, Any]]) -> dict[int, dict[str, float]]:
    """Per-video means of `eval_metrics` outputs (clips grouped by `video_id`; padding dropped).

    Without video ids every clip counts as its own video (ids 0, 1, ... in order).
    """
    sums: dict[int, dict[str, float]] = {}
    counts: dict[int, float] = collections.defaultdict(float)
    next_id = 0
    for m in per_clip:
      m = {k: np.asarray(v) for k, v in m.items()}
      weight = m.pop("weight", None)
      n = len(next(iter(m.values())))
      weight = np.ones(n) if weight is None else weight.astype(np.float64)
      ids = m.pop("video_id", None)
      if ids is None:
        ids = np.arange(next_id, next_id + n)
        next_id += n
      for i in range(n):
        if weight[i] <= 0:
          continue
        entry = sums.setdefault(int(ids[i]), collections.defaultdict(float))
        for k, v in m.items():
          entry[k] += float(v[i]) * weight[i]
        counts[int(ids[i])] += weight[i]
    return {vid: {k: v / counts[vid] for k, v in entry.items()} for vid, entry in sorted(sums.items())}

  def aggregate(self, per_clip: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Means over videos of the per-video means (`per_video`), the usual SR report; adds `gain_y`
    (model minus bicubic PSNR on Y) and `num_videos`."""
    videos = self.per_video(per_clip)
    if not videos:
      return {}
    keys = next(iter(videos.values())).keys()
    out = {k: float(np.mean([v[k] for v in videos.values()])) for k in keys}
    if "psnr_y" in out and "psnr_y_bicubic" in out:
      out["gain_y"] = out["psnr_y"] - out["psnr_y_bicubic"]
    out["num_videos"] = float(len(videos))
    return out
