"""Per-video PSNR/SSIM of an SR model against bicubic on whole held-out videos or frame folders.

Unlike the training engine's eval (patches of the eval split), this runs whole frames through the
same chunked path as `jaxres upscale` (`jaxres.sr.upscale.Upscaler`), so it measures what a user
gets. HR videos are degraded with `jaxres.tasks.degradation` (mod-crop, antialiased bicubic), or
their LR frames are given (Vid4 `BIx4`, REDS `train_sharp_bicubic/X4`); the output is clipped and
rounded to 8 bits; metrics crop `crop` (default: the scale) pixels at the borders.

On frame folders it gives the table SR papers print for Vid4 and REDS4: per sequence the mean over
its frames of PSNR/SSIM on BT.601 Y (and on RGB), then the mean over sequences. The metrics follow
BasicSR's `calculate_psnr` / `calculate_ssim` (`test_y_channel=True`; checked against BasicSR
1.4.2 and scikit-image in `tests/test_sr_evaluate.py`). Recurrent models see each sequence whole
(`--chunk 0`, the default on frames; `options=None` in Python), as the papers run them. MMagic's
BasicVSR/BasicVSR++ test configs set `crop_border=0`: pass `--crop 0` to reproduce their numbers.

`evaluate_run` measures a training run: by default its own held-out videos (its data config's
eval split, e.g. the `sr_edsr_demo` pans over photographs it never trained on; for a `frames`
source its eval sequences, with their paired LR frames when it has them), whole; generated footage
from a seed never used for training instead; or any frame folders. `jaxres evaluate` is its
command line (`python -m jaxres.sr.evaluate` runs the same command):

  $ jaxres evaluate --checkpoint runs/sr_edsr
  $ jaxres evaluate --checkpoint runs/basicvsr --hr /data/Vid4/GT --lr /data/Vid4/BIx4

Example:
  >>> table = evaluate_videos(model, variables, hr_videos, scale=2, clip_model=False)
  >>> rows = evaluate_frames(model, variables, "/data/Vid4/GT", scale=4, clip_model=True,
  ...                        lr_root="/data/Vid4/BIx4")
  >>> print(format_table(rows))
  >>> print(evaluate_run("runs/sr_edsr").text())
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import os
import sys
from typing import Any, Iterable, Mapping, Sequence

import jax
import numpy as np

from jaxres.data import frames as frames_io
from jaxres.data import sequences as sequences_lib
from jaxres.data.skips import SKIPPED, SkipCounter
from jaxres.models.sr import bicubic_upsample
from jaxres.sr import footage, upscale
from jaxres.tasks import degradation
from jaxres.tasks import image_metrics as metrics

HELD_OUT_SEED = 20261122  # footage seed never used for training data
METRICS = ("psnr", "psnr_y", "ssim", "ssim_y")


@functools.lru_cache(maxsize=None)
def _metrics_fn(crop: int):
  """Jitted `(pred, hr) -> [PSNR, PSNR-Y, SSIM, SSIM-Y]` of one frame pair, for this border crop."""

  @jax.jit
  def fn(pred, hr):
    return [
      metrics.psnr(pred, hr, crop=crop),
      metrics.psnr(pred, hr, crop=crop, y_channel=True),
      metrics.ssim(pred, hr, crop=crop),
      metrics.ssim(pred, hr, crop=crop, y_channel=True),
    ]

  return fn


_bicubic = jax.jit(bicubic_upsample, static_argnums=1)


def _evaluate_one(
  up: upscale.Upscaler, hr: np.ndarray, lr: np.ndarray, scale: int, crop: int
) -> dict:
  """Metrics of one video, frame by frame (uint8 `hr [T, H, W, 3]`, float `lr [T, h, w, 3]`)."""
  fn = _metrics_fn(crop)
  sums = {f"{p}{k}": [] for p in ("", "bicubic_") for k in METRICS}
  for i, sr in enumerate(up.frames(lr)):
    bic = upscale.to_uint8(np.asarray(_bicubic(lr[i], scale)))
    for prefix, pred in (("", upscale.to_uint8(sr)), ("bicubic_", bic)):
      for k, v in zip(METRICS, fn(pred, hr[i])):
        sums[prefix + k].append(float(v))
  return {k: float(np.mean(v)) for k, v in sums.items()}


def _whole(options: upscale.UpscaleOptions | None, length: int) -> upscale.UpscaleOptions:
  return upscale.UpscaleOptions(chunk=length, overlap=0) if options is None else options


def evaluate_videos(
  model: Any,
  variables: Any,
  hr_videos: Sequence[np.ndarray],
  *,
  scale: int,
  clip_model: bool,
  degrade: degradation.Degradation | None = None,
  options: upscale.UpscaleOptions | None = upscale.UpscaleOptions(),
  lr_videos: Sequence[np.ndarray] | None = None,
  crop: int | None = None,
) -> list[dict]:
  """PSNR/SSIM (RGB and Y) of the model and of bicubic, per video.

  Args:
    model: the SR module; variables: its variables.
    hr_videos: uint8 `[T, H, W, 3]` HR videos.
    scale: the model's factor.
    clip_model: whether the model takes clips.
    degrade: how LR frames are made (default: bicubic x `scale`, quantised).
    options: chunking/tiling of the upscale (None: each video in one window).
    lr_videos: the LR frames as given (uint8 `[T, H/scale, W/scale, 3]`), instead of `degrade`.
    crop: border pixels left out of the metrics (default: `scale`).

  Returns:
    One dict per video: `psnr`, `psnr_y`, `ssim`, `ssim_y` and the same with a `bicubic_` prefix,
    each the mean over the video's frames.

  Example:
    >>> rows = evaluate_videos(model, variables, [video], scale=2, clip_model=True)
  """
  degrade = degrade or degradation.Degradation(scale)
  crop = scale if crop is None else crop
  rows = []
  for i, video in enumerate(hr_videos):
    if lr_videos is not None:
      hr, lr = np.asarray(video), np.asarray(lr_videos[i]).astype(np.float32) / 255.0
      if hr.shape[1:3] != (lr.shape[1] * scale, lr.shape[2] * scale) or len(hr) != len(lr):
        raise ValueError(f"Video {i}: LR {lr.shape} is not 1/{scale} of HR {hr.shape}.")
    else:
      hr = np.asarray(degradation.mod_crop(np.asarray(video), scale))
      lr = np.asarray(degradation.degrade(hr.astype(np.float32) / 255.0, degrade))
    up = upscale.Upscaler(
      model, variables, scale, clip_model=clip_model, options=_whole(options, len(hr))
    )
    rows.append(_evaluate_one(up, hr, lr, scale, crop))
  return rows


def evaluate_frames(
  model: Any,
  variables: Any,
  hr_root: str,
  *,
  scale: int,
  clip_model: bool,
  lr_root: str = "",
  sequences: Sequence[str] = (),
  layout: str = "sequences",
  split_list: str = "",
  crop: int | None = None,
  options: upscale.UpscaleOptions | None = None,
  pattern: str = "*",
  expected: Mapping[str, int] | None = None,
  skips: SkipCounter = SKIPPED,
) -> list[dict]:
  """Per-sequence PSNR/SSIM of the model and bicubic on frame folders (Vid4, REDS4, Vimeo test).

  Sequences are read one at a time (whole, as papers evaluate them), so memory holds one. A
  sequence training would skip (an image that does not decode, a missing or mismatched LR frame,
  fewer frames than its list says) is skipped and counted in `skips` by the same reader and rule
  (`jaxres.data.frames.read_frames` with the list's frame count and `pattern`), not scored.

  Args:
    model: the SR module; variables: its variables.
    hr_root: the HR frame folders (`data.path` of a `frames` source, e.g. `Vid4/GT`).
    scale: the model's factor.
    clip_model: whether the model takes clips.
    lr_root: LR folders mirroring `hr_root` (e.g. `Vid4/BIx4`); empty: bicubic degradation of HR.
    sequences: only these sequences (relative to `hr_root`), e.g. REDS4 `000 011 015 020`.
    layout: how `hr_root` is laid out (`jaxres.data.sequences.LAYOUTS`).
    split_list: a sequence list instead (e.g. Vimeo's `sep_testlist.txt`).
    crop: border pixels left out of the metrics (default: `scale`).
    options: chunking/tiling (None: each sequence in one window).
    pattern: only images matching this glob are frames (`data.frame_pattern`).
    expected: frames each of `sequences` should hold, by name (a list's count; else 0: any).
    skips: where skipped sequences are counted.

  Returns:
    One dict per sequence read: `name` (relative to `hr_root`), `frames`, and
    `evaluate_videos`' keys.

  Raises:
    FileNotFoundError: no such folders or sequences.
    ValueError: every sequence was skipped (one line naming the folder and the reasons).

  Example:
    >>> rows = evaluate_frames(model, variables, "Vid4/GT", lr_root="Vid4/BIx4", scale=4,
    ...                        clip_model=True)
  """
  if sequences:
    folders = [os.path.join(hr_root, s) for s in sequences]
    absent = [f for f in folders if not os.path.isdir(f)]
    if absent:
      raise FileNotFoundError(f"No such sequence folder(s): {absent}.")
    counts = [(expected or {}).get(s, 0) for s in sequences]
  else:
    split = "eval" if layout == "vimeo" else "train"  # (vimeo: sep_testlist.txt by default)
    entries = sequences_lib.frame_sequences(hr_root, layout, split_list, split=split).entries
    folders, counts = [e.path for e in entries], [e.num_frames for e in entries]
  rows = []
  root = os.path.abspath(hr_root)
  for folder, count in zip(folders, counts):
    name = os.path.relpath(os.path.abspath(folder), root)
    whole = lambda meta: np.arange(meta.num_frames)
    try:  # the rule training skips sequences by
      if lr_root:
        hr, lr = frames_io.read_paired(
          folder, os.path.join(lr_root, name), whole, scale=scale, pattern=pattern, expected=count
        )
      else:
        hr = frames_io.read_frames(folder, whole, pattern=pattern, expected=count)
    except frames_io.FrameError as e:
      skips.record(folder, e.reason, e.detail if e.path == folder else f"{e.path}: {e.detail}")
      continue
    if lr_root:
      row = evaluate_videos(
        model,
        variables,
        [hr],
        scale=scale,
        clip_model=clip_model,
        options=options,
        lr_videos=[lr],
        crop=crop,
      )[0]
    else:
      row = evaluate_videos(
        model, variables, [hr], scale=scale, clip_model=clip_model, options=options, crop=crop
      )[0]
    rows.append({"name": name, "frames": len(hr), **row})
  if folders and not rows:
    raise skips.nothing_usable(
      len(folders), "frame sequences", hr_root, "fix or remove them, or evaluate other folders."
    )
  return rows


def held_out_videos(data_config: Any, skips: SkipCounter = SKIPPED) -> list[tuple[str, np.ndarray]]:
  """The whole videos of a data config's eval split (folder or built-in demo sources).

  A video training would skip (not a video, corrupt, truncated, no decodable frame, vanished after
  listing) is skipped and counted in `skips` by the same rule and reasons, not returned.

  Args:
    data_config: a run's `config.data` (the demo data are written first if missing).
    skips: where skipped videos are counted.

  Returns:
    `(file name, uint8 [T, H, W, 3])` per video read, in the split's order.

  Raises:
    ValueError: the source is not a folder of videos ("folder" or "demo"); frame folders are read
      by `held_out_sequences` / `evaluate_frames`. Or every video was skipped (one line naming the
      folder and the reasons).

  Example:
    >>> videos = held_out_videos(read_config("runs/sr_edsr").data)
  """
  if data_config.source not in ("demo", "folder"):
    raise ValueError(
      f"data.source={data_config.source!r}: only folder and demo eval splits are "
      "read as whole videos here; use --footage generated."
    )
  from jaxres.data import catalog, video  # pylint: disable=import-outside-toplevel

  catalog.ensure_demo_data(data_config)
  paths = [e.path for e in catalog.video_list(data_config, "eval").entries]
  videos = []
  for path in paths:
    try:  # the reasons training's reader skips a video for (jaxres.data.clips.raw_decoder)
      videos.append((os.path.basename(path), video.read_video(path).frames))
    except video.DecodeError as e:
      skips.record(path, e.reason, e.detail)
    except FileNotFoundError:
      skips.record(path, "missing", "file vanished after listing")
    except Exception as e:  # noqa: BLE001 - one bad file must not stop the evaluation.
      skips.record(path, "corrupt", repr(e))
  if paths and not videos:
    raise skips.nothing_usable(
      len(paths),
      "videos",
      data_config.path or "the demo data",
      "fix or remove them (the reasons say what is wrong), or evaluate other videos.",
    )
  return videos


def held_out_sequences(data_config: Any) -> list[str]:
  """The eval sequences of a `frames` data config, relative to `data.path` (its layout, lists,
  `holdout_sequences`), for `evaluate_frames(..., sequences=...)`.

  Example:
    >>> held_out_sequences(config.data)        # REDS with holdout_sequences REDS4
    ['000', '011', '015', '020']
  """
  from jaxres.data import catalog  # pylint: disable=import-outside-toplevel

  root = os.path.abspath(data_config.path)
  return [os.path.relpath(e.path, root) for e in catalog.video_list(data_config, "eval").entries]


def _held_out_frame_counts(data_config: Any) -> list[int]:
  """The frames each of `held_out_sequences` should hold (its list's count; 0: any)."""
  from jaxres.data import catalog  # pylint: disable=import-outside-toplevel

  return [e.num_frames for e in catalog.video_list(data_config, "eval").entries]


def mean_row(rows: Iterable[dict]) -> dict:
  """The mean over videos of every metric (the "average" line of a paper's table)."""
  rows = list(rows)
  return {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k not in ("name", "frames")}


def format_table(rows: list[dict], names: Sequence[str] | None = None) -> str:
  """A plain-text table of `evaluate_videos` / `evaluate_frames` rows plus their mean; rows are
  named by `names`, else by their `"name"`, else numbered."""
  if names is None:
    names = [r.get("name", i) for i, r in enumerate(rows)]
  named = [(str(n), r) for n, r in zip(names, rows)]
  width = max([6] + [len(n) for n, _ in named])
  head = (
    f"{'video':>{width}}  {'PSNR-Y':>7} {'bicubic':>7} {'gain':>6}  {'SSIM-Y':>6} "
    f"{'bicubic':>7}  {'PSNR':>6} {'bicubic':>7}  {'SSIM':>6}"
  )
  lines = [head]
  for name, r in named + [("mean", mean_row(rows))]:
    lines.append(
      f"{name:>{width}}  {r['psnr_y']:7.2f} {r['bicubic_psnr_y']:7.2f} "
      f"{r['psnr_y'] - r['bicubic_psnr_y']:+6.2f}  {r['ssim_y']:6.4f} "
      f"{r['bicubic_ssim_y']:7.4f}  {r['psnr']:6.2f} {r['bicubic_psnr']:7.2f}  "
      f"{r['ssim']:6.4f}"
    )
  return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class RunEvaluation:
  """What `evaluate_run` measured.

  Attributes:
    loaded: the run's model (`jaxres.sr.checkpoint.LoadedModel`: name, scale, step...).
    rows: `evaluate_videos` / `evaluate_frames` rows, one per video or sequence.
    names: the videos' file names (held-out videos of a folder or demo split), else None: the
      rows are named by their `"name"` or numbered.
    what: what the rows were measured on, in words.
    skipped: sequences left out per reason, as training skips them (`{"corrupt": 1}`).
  """

  loaded: Any
  rows: list[dict]
  names: Sequence[str] | None
  what: str
  skipped: Mapping[str, int] = dataclasses.field(default_factory=dict)

  def text(self) -> str:
    """A title line (model, scale, step, footage) and `format_table` of the rows."""
    loaded = self.loaded
    return (
      f"{loaded.name} x{loaded.scale} (step {loaded.step}) on {self.what}:\n"
      f"{format_table(self.rows, self.names)}"
    )


def evaluate_run(
  workdir: str,
  *,
  config: Any = None,
  footage_source: str = "eval-split",
  hr_root: str = "",
  lr_root: str = "",
  sequences: Sequence[str] = (),
  layout: str = "sequences",
  split_list: str = "",
  crop: int | None = None,
  videos: int = 4,
  frames: int = 16,
  size: int = 96,
  seed: int = HELD_OUT_SEED,
  chunk: int | None = None,
  overlap: int = 6,
) -> RunEvaluation:
  """PSNR/SSIM of a trained SR run against bicubic, on whole videos or sequences.

  What is measured, in this order: the frame folders `hr_root` when given; else the run's eval
  split (`footage_source="eval-split"`: the sequences of a `frames` source with their paired LR
  frames, else the videos of a folder or demo source); else (`"generated"`) generated footage
  from `seed`, a seed never used for training data.

  Args:
    workdir: the `jaxres train` run folder.
    config: the run's config, if not the one saved in `workdir`.
    footage_source: "eval-split" or "generated" (when `hr_root` is empty).
    hr_root, lr_root, sequences, layout, split_list: frame folders, as `evaluate_frames` takes.
    crop: border pixels left out of the metrics (default: the scale).
    videos, frames, size: how many generated videos, their frames and frame height and width.
    seed: the generated footage's seed.
    chunk: frames per window (0: whole videos; None: 0 on frame folders, else 16).
    overlap: context frames on each side of a window.

  Returns:
    A `RunEvaluation`; `.text()` is the table `jaxres evaluate` prints.

  Raises:
    FileNotFoundError: no such run, checkpoint or folders.
    ValueError: not an SR run, or an eval split that is not read as whole videos.

  Example:
    >>> result = evaluate_run("runs/basicvsr", hr_root="/data/Vid4/GT", lr_root="/data/Vid4/BIx4")
    >>> result.rows[0]["psnr_y"]
  """
  from jaxres.sr import checkpoint  # pylint: disable=import-outside-toplevel

  if config is None and not hr_root:
    from jaxres.train import run  # pylint: disable=import-outside-toplevel

    config = run.read_config(workdir)
  loaded = checkpoint.load_sr_model(workdir, config=config)
  whole_sequences = bool(hr_root) or (
    footage_source == "eval-split" and config.data.source == "frames"
  )
  chunk = chunk if chunk is not None else (0 if whole_sequences else 16)
  options = upscale.UpscaleOptions(chunk=chunk, overlap=overlap) if chunk else None
  crop = loaded.scale if crop is None else crop
  model, variables = loaded.model, loaded.variables
  kwargs = dict(scale=loaded.scale, clip_model=loaded.clip_model, crop=crop, options=options)
  names = None
  skips = SkipCounter()  # sequences skipped here, by the rule training skips them by
  if hr_root:
    rows = evaluate_frames(
      model,
      variables,
      hr_root,
      lr_root=lr_root,
      sequences=sequences,
      layout=layout,
      split_list=split_list,
      skips=skips,
      **kwargs,
    )
    where = hr_root + (f" (LR {lr_root})" if lr_root else " (LR: bicubic of HR)")
    what = f"{len(rows)} sequences of {where}, border crop {crop}"
  elif whole_sequences:
    data = config.data
    names_held_out = held_out_sequences(data)
    rows = evaluate_frames(
      model,
      variables,
      data.path,
      lr_root=data.lr_path,
      sequences=names_held_out,
      pattern=data.frame_pattern,
      expected=dict(zip(names_held_out, _held_out_frame_counts(data))),
      skips=skips,
      **kwargs,
    )
    what = f"the {len(rows)} held-out sequences of its eval split, border crop {crop}"
  else:
    if footage_source == "eval-split":
      names, clips = zip(*held_out_videos(config.data, skips))
      what = (
        f"whole frames of the {len(clips)} held-out videos of its eval split (the figure "
        f"training ends with is on {config.data.crop_size}x{config.data.crop_size} crops of them)"
      )
    else:
      clips = footage.generate_clips(seed, videos, frames, size, size)
      what = f"{videos} held-out generated videos of {frames}x{size}x{size} (seed {seed})"
    rows = evaluate_videos(model, variables, list(clips), **kwargs)
  if skips.total():
    what += f", {skips.total()} skipped as training skips them ({skips.counts()})"
  return RunEvaluation(loaded=loaded, rows=rows, names=names, what=what, skipped=skips.counts())


if __name__ == "__main__":
  # `python -m jaxres.sr.evaluate ARGS` is `jaxres evaluate ARGS`. The command sits above this
  # module (jaxres.commands imports jaxres.sr), so the script looks it up by name at run time.
  sys.exit(importlib.import_module("jaxres.cli").main(["evaluate", *sys.argv[1:]]))
