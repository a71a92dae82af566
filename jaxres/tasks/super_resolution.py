"""The super-resolution task: LR made from HR on device, the loss, and the eval metrics.

The data layer yields HR frames, `{"video": [B, T, H, W, 3]}` in [0, 1] (a data config with mean 0
and std 1); `prepare` makes `"hr"` (the frames, mod-cropped to the scale) and `"lr"` from them with
`jaxres.tasks.degradation` inside the compiled step, the same degradation `jaxres upscale` and
`jaxres.sr.evaluate` use. Batches that already hold `"lr"` and `"hr"` (batches a user builds), or
`"video"` and `"lr"` (paired frame folders, `data.lr_path`: HR is `"video"`), are used as given.
Image models run per frame on the clips.

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

import dataclasses
from typing import Any, Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxres.models.sr import bicubic_upsample
from jaxres.tasks import image_metrics as metrics
from jaxres.tasks.base import mean_by_video
from jaxres.tasks.degradation import Degradation, degrade, mod_crop

LOSSES = ("l1", "charbonnier")


@dataclasses.dataclass(frozen=True)
class SuperResolutionTask:
  """Loss and metrics of residual super-resolution.

  Attributes:
    scale: the SR factor (also the border crop of the metrics).
    loss: "l1" or "charbonnier".
    charbonnier_eps: epsilon of the Charbonnier loss.
    blur_sigma: Gaussian blur of the HR frames before downsampling, in HR pixels (0: none).
    noise_sigma: Gaussian noise added to training LR frames, in [0, 1] units (0: none; eval
      frames get none).
  """

  scale: int = 4
  loss: str = "charbonnier"
  charbonnier_eps: float = 1e-3
  blur_sigma: float = 0.0
  noise_sigma: float = 0.0
  name = "super_resolution"

  def __post_init__(self):
    if self.loss not in LOSSES:
      raise ValueError(f"task.loss must be one of {LOSSES}, got {self.loss!r}.")
    Degradation(self.scale, self.blur_sigma, self.noise_sigma)  # refuses bad values by name

  def prepare(self, batch: Mapping[str, Any], rng: jax.Array | None) -> dict[str, Any]:
    """Adds `"hr"` (`batch["video"]` mod-cropped to the scale) and `"lr"` (its degradation, with
    noise only in training, i.e. when `rng` is given); batches with both are returned as they are,
    and a batch with `"video"` and `"lr"` (paired frames, `data.lr_path`) gets `"hr"` = `"video"`.
    """
    if "lr" in batch and "hr" in batch:
      return dict(batch)
    if "lr" in batch and "video" in batch:  # paired data: the LR frames as read, HR = "video"
      hr, lr = jnp.asarray(batch["video"], jnp.float32), jnp.asarray(batch["lr"], jnp.float32)
      if hr.shape[-3:-1] != tuple(self.scale * n for n in lr.shape[-3:-1]):
        raise ValueError(
          f"The batch's 'lr' {lr.shape} is not 1/{self.scale} of its 'video' "
          f"{hr.shape} (task.scale={self.scale})."
        )
      return dict(batch, hr=hr, lr=lr)
    if "video" not in batch:
      raise ValueError(
        f"A super-resolution batch needs 'video' (HR frames) or 'lr' and 'hr', "
        f"got keys {sorted(batch)}."
      )
    hr = mod_crop(jnp.asarray(batch["video"], jnp.float32), self.scale)
    noise = self.noise_sigma if rng is not None else 0.0
    lr = degrade(hr, Degradation(self.scale, self.blur_sigma, noise), rng=rng)
    return dict(batch, hr=hr, lr=lr)

  def model_input(self, batch: Mapping[str, jax.Array]) -> jax.Array:
    """The LR clips (after `prepare`)."""
    return batch["lr"]

  def check_data(self, data_config: Any) -> None:
    """Refuses data whose frames are not in [0, 1] or whose crops do not divide by the scale."""
    if tuple(data_config.mean) != (0.0, 0.0, 0.0) or tuple(data_config.std) != (1.0, 1.0, 1.0):
      raise ValueError(
        f"Super-resolution needs frames in [0, 1]: set data.mean=(0., 0., 0.) and "
        f"data.std=(1., 1., 1.) (got {tuple(data_config.mean)} and "
        f"{tuple(data_config.std)})."
      )
    if data_config.crop_size % self.scale:
      raise ValueError(
        f"data.crop_size={data_config.crop_size} is not a multiple of the scale "
        f"task.scale={self.scale}; LR and HR patches would not align."
      )

  def loss_and_metrics(
    self, outputs: jax.Array, batch: Mapping[str, jax.Array]
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
      loss = jnp.mean(jnp.sqrt(diff * diff + self.charbonnier_eps**2))
    mse = jnp.mean(diff * diff)
    return loss, {"loss": loss, "l1": l1, "psnr": -10.0 * jnp.log10(jnp.maximum(mse, 1e-10))}

  def eval_metrics(
    self, outputs: jax.Array, batch: Mapping[str, jax.Array]
  ) -> dict[str, jax.Array]:
    """Per-clip metrics `[B]` (see the module notes); passes `video_id` through when present."""
    sr = jnp.round(jnp.clip(outputs.astype(jnp.float32), 0.0, 1.0) * 255.0) / 255.0
    hr = batch["hr"].astype(jnp.float32)
    bicubic = (
      jnp.round(
        jnp.clip(bicubic_upsample(batch["lr"].astype(jnp.float32), self.scale), 0.0, 1.0) * 255.0
      )
      / 255.0
    )
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
    per_clip = [{k: np.asarray(v) for k, v in m.items()} for m in per_clip]
    if not per_clip:
      return {}
    keys = [k for k in per_clip[0] if k not in ("video_id", "weight")]
    ids, means = mean_by_video(per_clip, keys)
    return {int(v): {k: float(means[k][i]) for k in keys} for i, v in enumerate(ids)}

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
