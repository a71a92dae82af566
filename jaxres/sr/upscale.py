"""Upscaling videos of any length: temporal chunks with overlap, spatial tiles, streaming I/O.

How a video is cut (`UpscaleOptions`):

- Time: the model sees windows of `chunk + 2 * overlap` frames and keeps only the frames that have
  `overlap` frames of context on both sides (or the true start/end of the video): the first window
  keeps its first `chunk + overlap` frames, the following ones `chunk` each, and the last window is
  moved back to end at the last frame so that every window has the same length (one compilation).
  Per-frame models (`EDSR`, `VDSR`) need no context: their overlap is 0 and `chunk` is the batch.
- Space: when `tile` is set and a frame is larger, each window is cut into `tile x tile` LR tiles
  overlapping by `tile_overlap` pixels on each side; only the tiles' centres are kept (the last tile
  in a row/column moves back to end at the frame edge). Frames no larger than `tile` are not tiled.
- Memory: at most one window of LR frames, its HR output and the frames waiting to be written are
  held, so memory does not grow with the video's length. It grows with the window's frames and the
  tile's pixels instead: left unset (None), `chunk` and `tile` are chosen to fit `max_memory`
  (`jaxres.sr.memory_budget`), whole frames and 16 kept frames when they fit.
- Time: each output frame is written at its input frame's presentation time, so a variable frame
  rate video keeps its timing and duration.

Exactness: for per-frame models chunking is exact, and tiling is exact (to float rounding) once
`tile_overlap` covers the receptive field (EDSR baseline: 35 LR pixels; VDSR: 20 HR pixels). The
recurrent model's output at a frame depends on the whole clip, so chunks are approximate at their
edges: the error decays with `overlap` as the propagated hidden state forgets, and is zero (< 1e-5)
when a window covers the whole video (`tests/test_sr_upscale.py` checks both). For a trained
recurrent model a few frames of overlap bring the worst pixel within a couple of 8-bit levels
(figures: benchmarks/README.md, "Chunked recurrent upscaling"). Raise `overlap` for more (the cost
is `(chunk + 2 overlap) / chunk`). The same
holds for tiles of the recurrent model (its receptive field grows with every propagation step);
prefer large tiles for it.

Example:
  >>> up = Upscaler(model, variables, scale=4, clip_model=True)
  >>> hr_frames = up.frames(lr_frames)                                      # iterator in, out
  >>> upscale_video("in.mp4", "out.mp4", model, variables, scale=4, clip_model=False)
  >>> upscale_with_checkpoint("in.mp4", "out.mp4", "runs/sr_edsr")          # a trained workdir
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import itertools
import math
import os
import sys
from typing import Any, Iterable, Iterator, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxres.data import video as video_io
from jaxres.models.sr import bicubic_upsample
from jaxres.sr import memory_budget
from jaxres.sr.windows import spans


@dataclasses.dataclass(frozen=True)
class UpscaleOptions:
  """How to cut a video for the model (see the module notes).

  Attributes:
    chunk: frames kept per window (the batch for per-frame models); None: the largest of up to
      16 that fits `max_memory`.
    overlap: context frames on each side of a window (recurrent models only).
    tile: LR tile size in pixels, 0 for whole frames; None: whole frames if they fit `max_memory`,
      else the tile size that fits with the least work thrown away.
    tile_overlap: LR context pixels on each side of a tile.
    max_memory: the process's peak resident memory that automatic sizes must fit, bytes (None:
      `memory_budget.default_max_memory()`, a safe share of the machine's free memory).
  """

  chunk: int | None = None
  overlap: int = 6
  tile: int | None = None
  tile_overlap: int = 16
  max_memory: int | None = None

  def __post_init__(self):
    for option, value, low in (
      ("--chunk", self.chunk, 1),
      ("--overlap", self.overlap, 0),
      ("--tile", self.tile, 0),
      ("--tile-overlap", self.tile_overlap, 0),
    ):
      if value is not None and (not isinstance(value, int) or value < low):
        raise ValueError(f"{option} must be a whole number >= {low}, got {value}.")
    if self.max_memory is not None and self.max_memory <= 0:
      raise ValueError(f"--max-memory must be more than 0 bytes, got {self.max_memory}.")
    if self.tile and self.tile <= 2 * self.tile_overlap:
      raise ValueError(
        f"--tile ({self.tile}) must exceed twice --tile-overlap ({self.tile_overlap}), or be 0 "
        "for whole frames."
      )

  @property
  def automatic(self) -> bool:
    """Whether `chunk` or `tile` is left to the memory budget."""
    return self.chunk is None or self.tile is None


class Upscaler:
  """A model with its variables, compiled once per window shape, applied to tiles and windows.

  Automatic sizes (`UpscaleOptions.automatic`) are chosen when the first frame's size is known
  (`resolve`), from a probe compilation (`memory_budget.measure_cost`); `plan` then holds the
  choice and its memory estimate.

  Args:
    model: an SR module called `model.apply(variables, x, train=False)`.
    variables: its variables.
    scale: the model's factor.
    clip_model: True if the model takes clips `[B, T, h, w, 3]` (recurrent: temporal context
      matters); False for per-frame models (windows become batches, overlap is dropped).
    options: `UpscaleOptions`.
  """

  def __init__(
    self,
    model: nn.Module,
    variables: Any,
    scale: int,
    *,
    clip_model: bool,
    options: UpscaleOptions = UpscaleOptions(),
  ):
    self.scale = scale
    self.clip_model = clip_model
    self.requested = options if clip_model else dataclasses.replace(options, overlap=0)
    self.options = None if self.requested.automatic else self.requested
    self.plan: memory_budget.Plan | None = None
    self.variables = variables
    self._jitted = jax.jit(lambda v, x: model.apply(v, x, train=False))
    self._compiled: dict[tuple[int, ...], Any] = {}

  def compile_window(self, shape: tuple[int, ...]) -> Any:
    """The model compiled for float32 input of `shape` (kept for later calls of that shape)."""
    if shape not in self._compiled:
      x = jax.ShapeDtypeStruct(shape, jnp.float32)
      self._compiled[shape] = self._jitted.lower(self.variables, x).compile()
    return self._compiled[shape]

  def resolve(self, height: int, width: int, num_frames: int | None = None) -> UpscaleOptions:
    """The options for LR frames of `height x width`, choosing automatic sizes on the first call.

    Args:
      height: LR frame height.
      width: LR frame width.
      num_frames: the video's length where known (a short video's window is no longer).

    Returns:
      The resolved options.

    Raises:
      ValueError: nothing fits the memory budget (the message says what to change).
    """
    if self.options is None:
      max_memory = self.requested.max_memory or memory_budget.default_max_memory()
      self.plan = memory_budget.fit(
        self.compile_window,
        self.requested,
        clip_model=self.clip_model,
        scale=self.scale,
        frame_size=(height, width),
        max_memory=max_memory,
        num_frames=num_frames,
      )
      self.options = self.plan.options
    return self.options

  def window(self, lr: np.ndarray) -> np.ndarray:
    """Upscales one window `[T, h, w, 3]` float in [0, 1] (tiled if set) -> `[T, H, W, 3]` float32."""
    t, h, w, _ = lr.shape
    s, o = self.scale, self.resolve(h, w)
    if not o.tile or (h <= o.tile and w <= o.tile):
      return self._run(lr)
    out = np.empty((t, h * s, w * s, 3), np.float32)
    for y0, y1, ky0, ky1 in spans(h, o.tile, o.tile_overlap):
      for x0, x1, kx0, kx1 in spans(w, o.tile, o.tile_overlap):
        tile = self._run(lr[:, y0:y1, x0:x1])
        out[:, ky0 * s : ky1 * s, kx0 * s : kx1 * s] = tile[
          :, (ky0 - y0) * s : (ky1 - y0) * s, (kx0 - x0) * s : (kx1 - x0) * s
        ]
    return out

  def _run(self, lr: np.ndarray) -> np.ndarray:
    x = np.asarray(lr, np.float32)
    x = x[None] if self.clip_model else x
    y = self.compile_window(x.shape)(self.variables, x)
    return np.asarray(y[0] if self.clip_model else y, np.float32)

  def frames(self, lr_frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Upscales a stream of LR frames, in order, holding at most one window.

    Args:
      lr_frames: uint8 `[h, w, 3]` frames (or float in [0, 1]).

    Yields:
      float32 `[H, W, 3]` frames (not clipped), one per input frame.
    """
    it = iter(lr_frames)
    first = next(it, None)
    if first is None:
      return
    o = self.resolve(*first.shape[:2])
    it = itertools.chain([first], it)
    window = o.chunk + 2 * o.overlap
    buffer: collections.deque = collections.deque()  # frames start, start + 1, ...
    start = 0  # index of buffer[0]
    emitted = 0  # frames yielded so far
    done = False
    while True:
      w_start = max(0, emitted - o.overlap)
      # One frame beyond the window tells whether the video goes on.
      while not done and start + len(buffer) <= w_start + window:
        try:
          buffer.append(_to_float(next(it)))
        except StopIteration:
          done = True
      total = start + len(buffer)  # frames read so far (the video's length once done)
      if emitted >= total:
        return
      if total > w_start + window:
        keep_end = w_start + window - o.overlap
      else:  # the last window: moved back to end at the last frame, same length when possible
        w_start = max(0, total - window)
        keep_end = total
      # Keep at least the last `window` frames: the last window may reach back before `w_start`.
      while start < w_start and len(buffer) > window:
        buffer.popleft()
        start += 1
      frames = np.stack([buffer[i - start] for i in range(w_start, min(w_start + window, total))])
      out = self.window(frames)
      for i in range(emitted, keep_end):
        yield out[i - w_start]
      emitted = keep_end


def _to_float(frame: np.ndarray) -> np.ndarray:
  if frame.dtype == np.uint8:
    return frame.astype(np.float32) / 255.0
  return np.asarray(frame, np.float32)


def to_uint8(frame) -> np.ndarray:
  """float in [0, 1] -> uint8, clipped and rounded."""
  return np.clip(np.rint(np.asarray(frame) * 255.0), 0, 255).astype(np.uint8)


def upscale_array(
  model: nn.Module,
  variables: Any,
  lr: np.ndarray,
  *,
  scale: int,
  clip_model: bool,
  options: UpscaleOptions = UpscaleOptions(),
) -> np.ndarray:
  """Upscales a whole clip in memory with the chunking/tiling of `options` (for tests and notebooks).

  Args:
    model: the SR module.
    variables: its variables.
    lr: `[T, h, w, 3]` uint8 or float in [0, 1].
    scale: the model's factor.
    clip_model: whether the model takes clips (see `Upscaler`).
    options: chunking and tiling.

  Returns:
    float32 `[T, H, W, 3]`, not clipped.

  Example:
    >>> hr = upscale_array(model, variables, lr, scale=4, clip_model=True)
  """
  up = Upscaler(model, variables, scale, clip_model=clip_model, options=options)
  return np.stack(list(up.frames(lr)))


def _bicubic_frame(lr: np.ndarray, scale: int) -> np.ndarray:
  return np.asarray(_bicubic_jit(jnp.asarray(_to_float(lr)), scale))


_bicubic_jit = jax.jit(bicubic_upsample, static_argnums=1)


def column_labels(labels: Sequence[str], column_width: int, height: int = 20) -> np.ndarray:
  """A white uint8 `[height, len(labels) * column_width, 3]` row naming each column in black.

  Pillow (which imageio brings) draws the text with its built-in font, so no font file is needed.

  Args:
    labels: one name per column, left to right.
    column_width: pixels per column.
    height: pixels of the row.

  Returns:
    The label row, to put above side-by-side frames.

  Example:
    >>> column_labels(("bicubic", "model x4"), 352).shape
    (20, 704, 3)
  """
  from PIL import Image, ImageDraw

  row = Image.new("RGB", (column_width * len(labels), height), "white")
  draw = ImageDraw.Draw(row)
  for i, label in enumerate(labels):
    draw.text((i * column_width + 4, 3), label, fill="black")
  return np.asarray(row, np.uint8)


def check_range(start: float, duration: float | None) -> None:
  """Raises one line naming `--start` or `--duration` when the part to upscale is not a range.

  Example:
    >>> check_range(12.5, 4.0)
  """
  if not (math.isfinite(start) and start >= 0):
    raise ValueError(f"--start must be a number of seconds >= 0, got {start:g}.")
  if duration is not None and not (math.isfinite(duration) and duration > 0):
    raise ValueError(f"--duration must be a number of seconds > 0, got {duration:g}.")


def check_output(
  in_path: str,
  out_path: str,
  *,
  compare: bool = False,
  codec: str | None = None,
  pix_fmt: str | None = None,
  crf: int | None = None,
) -> bool:
  """Refuses, before any work, an output `upscale_video` cannot write; returns whether it is a
  `--compare` PNG strip.

  Refused in one line: a suffix the output kind does not take (naming every accepted one), a missing
  folder, a folder or a device under that name, the input itself (also through a link), and
  `codec`/`pix_fmt`/`crf` the container or encoder does not take. A symbolic link is written
  through to its target.

  Raises:
    FileNotFoundError: the output folder does not exist.
    ValueError: any other refusal.

  Example:
    >>> check_output("in.mp4", "cmp.png", compare=True)
    True
  """
  suffix = os.path.splitext(out_path)[1].lower()
  png = compare and suffix == ".png"
  if suffix not in video_io.WRITE_SUFFIXES and not png:
    extra = " (a strip of 4 frames)" if compare else " (.png with --compare)"
    raise ValueError(
      f"Output {out_path} must end in one of {', '.join(video_io.WRITE_SUFFIXES)} (a video) or "
      f".png{extra}."
    )
  video_io.check_output_path(out_path, (suffix,))
  if os.path.exists(in_path) and os.path.exists(out_path) and os.path.samefile(in_path, out_path):
    raise ValueError(
      f"The output {out_path} is the input video; write to another file "
      "(the input is still being read while the output is written)."
    )
  if png and (codec or pix_fmt or crf is not None):
    raise ValueError(
      "--codec, --pix-fmt and --crf set the video written; a .png strip is lossless."
    )
  if not png:
    video_io.check_encoding(out_path, codec, pix_fmt, crf)
  return png


def upscale_video(
  in_path: str,
  out_path: str,
  model: nn.Module,
  variables: Any,
  *,
  scale: int,
  clip_model: bool,
  options: UpscaleOptions = UpscaleOptions(),
  compare: bool = False,
  progress: bool = True,
  crf: int | None = None,
  codec: str | None = None,
  pix_fmt: str | None = None,
  start: float = 0.0,
  duration: float | None = None,
) -> dict:
  """Reads a video, upscales it and writes it with the same frame times (or a comparison).

  The output is written under a temporary name and renamed at the end, so an error leaves nothing
  under `out_path` (and leftovers of killed runs for the same output are removed first). Memory
  stays flat whatever the length (frames stream through `Upscaler`). The input's audio is copied
  (trimmed to the part upscaled), with its subtitles and colour description where the container
  holds them (`video_io.OtherStreams`).

  Args:
    in_path: any video FFmpeg (PyAV) reads.
    out_path: `.mp4`/`.mkv`/`.mov`/... for a video; with `compare`, `.png` writes a strip of up to
      4 frames (first, and every `ceil(T/4)`-th by the container's frame count) instead, decoding
      and upscaling only those (with `overlap` frames of context each side for clip models).
    model: the SR module; variables: its variables.
    scale: the model's factor.
    clip_model: whether the model takes clips.
    options: chunking and tiling (`UpscaleOptions`).
    compare: write `bicubic | model` side by side instead of the model's output alone.
    progress: show a tqdm progress bar on stderr.
    crf: quality for libx264/libx265/libvpx-vp9 (lower is better; None: 17).
    codec: the video encoder (None: by suffix, libx264 for .mp4/.mkv/.mov/.m4v).
    pix_fmt: the stored pixel format (None: yuv420p, yuv444p for odd sizes, rgb24 for png).
    start: seconds into the video where the part to upscale begins (frames before it are decoded
      and dropped); the output's times start there.
    duration: seconds to upscale from `start` (None: to the end).

  Returns:
    `{"frames": n, "fps": fps, "size": (H, W), "path": out_path, "partial": bool,
    "header_frames": m, "decoded_frames": k, "options": UpscaleOptions, "plan": Plan | None,
    "copied": [...], "dropped": [...]}` (`fps`: the input's average rate; `partial`: decoding
    stopped well before the `m` frames the input's header lists, after `k` frames of the whole
    video, so only the `n` that decoded were upscaled; `options`: the sizes used; `plan`: how
    automatic sizes were chosen, with the memory estimate; `copied`/`dropped`: the input's other
    streams, e.g. "audio aac 44100 Hz").

  Raises:
    FileNotFoundError: missing input file or output folder.
    ValueError: unreadable input, a bad output (see `check_output`), an empty video, or frames too
      large for `options.max_memory` even in the smallest tiles.
    OutputError: the output could not be written (e.g. no space left); its partial file is removed.

  Example:
    >>> upscale_video("in.mp4", "out.mp4", model, variables, scale=4, clip_model=True)
  """
  check_range(start, duration)
  png = check_output(in_path, out_path, compare=compare, codec=codec, pix_fmt=pix_fmt, crf=crf)
  meta, decoded = video_io.stream_video(in_path)
  if min(meta.height, meta.width) < 1:
    decoded.close()
    raise ValueError(f"{in_path} has empty frames ({meta.width}x{meta.height}).")
  up = Upscaler(model, variables, scale, clip_model=clip_model, options=options)
  expected = max(0, meta.num_frames - round(start * meta.fps))
  if duration is not None:
    expected = min(expected, max(1, round(duration * meta.fps)))
  try:
    up.resolve(meta.height, meta.width, expected or None)
  except BaseException:
    decoded.close()
    raise
  if png:
    decoded.close()
    return _compare_strip(in_path, out_path, meta, up, start, expected, progress)
  times: collections.deque = collections.deque()  # of frames read and not yet written
  end = math.inf if duration is None else start + duration
  tol = 0.25 / meta.fps if meta.fps else 1e-6  # a frame shown at `start` is in the range
  last = {"time": None, "reached_end": False}  # the last frame decoded; whether `end` stopped it

  def lr_images():
    for image, time in decoded:
      last["time"] = time
      if time < start - tol:
        continue
      if time >= end - tol:
        last["reached_end"] = True
        break
      times.append(time - start)
      yield image

  lr_frames, lr_copy = _tee(lr_images()) if compare else (lr_images(), None)
  bar = _progress(expected, progress, os.path.basename(in_path))
  n = 0
  writer = video_io.VideoWriter(
    out_path,
    meta.fps,
    crf=crf,
    codec=codec,
    pix_fmt=pix_fmt,
    other_streams=video_io.OtherStreams(in_path, start, duration),
    colour=meta.colour,
  )
  try:
    for n, sr in enumerate(up.frames(lr_frames), start=1):
      time = times.popleft()
      frame = to_uint8(sr)
      if compare:
        lr = next(lr_copy)
        frame = np.concatenate([to_uint8(_bicubic_frame(lr, scale)), frame], axis=1)
      with _writing(out_path):
        writer.write(frame, time)
      bar.update(1)
  except BaseException:
    writer.close(success=False)
    raise
  finally:
    bar.close()
    decoded.close()
  if n == 0:
    writer.close(success=False)
    where = f" from {start:g} s" if start or duration is not None else ""
    raise ValueError(f"{in_path} has no frames{where} (its duration is {meta.duration:.2f} s).")
  with _writing(out_path):
    writer.close()
  # Frames of the whole video that decoded: the seek to `start` is not a shortfall.
  decoded_frames = meta.num_frames
  if not last["reached_end"] and last["time"] is not None:
    decoded_frames = int(round(last["time"] * meta.fps)) + 1
  return {
    "frames": n,
    "fps": meta.fps,
    "size": (meta.height * scale, meta.width * scale),
    "path": out_path,
    "partial": video_io.is_partial(decoded_frames, meta.num_frames),
    "header_frames": meta.num_frames,
    "decoded_frames": decoded_frames,
    "options": up.options,
    "plan": up.plan,
    "copied": writer.copied,
    "dropped": writer.dropped,
  }


def strip_indices(num_frames: int, rows: int = 4) -> list[int]:
  """The frames a `--compare` PNG strip draws: the first and every `ceil(T / rows)`-th.

  Example:
    >>> strip_indices(10)
    [0, 3, 6, 9]
  """
  every = max(1, -(-max(num_frames, 1) // rows))
  return [k * every for k in range(rows) if k * every < max(num_frames, 1)]


def _compare_strip(
  in_path: str,
  out_path: str,
  meta: video_io.VideoMeta,
  up: Upscaler,
  start: float,
  expected: int,
  progress: bool,
) -> dict:
  """Decodes and upscales only the strip's frames (each with its context) and writes the PNG."""
  first = int(round(start * meta.fps))
  count = max(1, expected)
  context = up.options.overlap if up.clip_model else 0
  span = min(count, 2 * context + 1)
  rows = []
  bar = _progress(len(strip_indices(count)), progress, os.path.basename(in_path))
  try:
    for k in strip_indices(count):
      lo = min(max(0, k - context), count - span)
      lr = video_io.read_frames(in_path, np.arange(first + lo, first + lo + span))
      sr = up.window(lr.astype(np.float32) / 255.0)[k - lo]
      bicubic = _bicubic_frame(lr[k - lo], up.scale)
      rows.append(np.concatenate([to_uint8(bicubic), to_uint8(sr)], axis=1))
      bar.update(1)
  finally:
    bar.close()
  width = rows[0].shape[1] // 2
  header = column_labels(("bicubic", f"model x{up.scale}"), width)
  with _writing(out_path):
    video_io.write_png_atomic(out_path, np.concatenate([header, *rows], axis=0))
  return {
    "frames": count,
    "drawn": len(rows),
    "fps": meta.fps,
    "size": (meta.height * up.scale, meta.width * up.scale),
    "path": out_path,
    "partial": False,
    "header_frames": meta.num_frames,
    "decoded_frames": None,
    "options": up.options,
    "plan": up.plan,
    "copied": [],
    "dropped": [],
  }


class OutputError(OSError):
  """The output could not be written (full disk, read-only folder, ...); nothing was left behind."""


@contextlib.contextmanager
def _writing(out_path: str):
  try:
    yield
  except OSError as error:
    reason = error.strerror or str(error)
    raise OutputError(
      error.errno,
      f"Cannot write {out_path}: {reason}; nothing was written "
      "(free some space or choose a writable folder).",
    ) from error


def upscale_with_checkpoint(
  in_path: str,
  out_path: str,
  workdir: str,
  *,
  config: Any = None,
  expect_model: str | None = None,
  expect_scale: int | None = None,
  step: int | None = None,
  options: UpscaleOptions = UpscaleOptions(),
  compare: bool = False,
  progress: bool = True,
  crf: int | None = None,
  codec: str | None = None,
  pix_fmt: str | None = None,
  start: float = 0.0,
  duration: float | None = None,
) -> dict:
  """`jaxres upscale --checkpoint` as a function: rebuilds the model of a training workdir and
  upscales a video, with every option of the command (the command calls this).

  The part to upscale and the output (suffix, folder, codec, pixel format, quality) are checked
  before the checkpoint is read, as the command does.

  Args:
    in_path: input video.
    out_path: output video (or `.png` strip with `compare`).
    workdir: the `jaxres train` workdir.
    config: the run's config when the workdir holds no `config.json`.
    expect_model: refuse a checkpoint of another architecture (`--model`).
    expect_scale: refuse a checkpoint of another scale (`--scale`).
    step: checkpoint step (`--step`; default: the latest).
    options: chunking and tiling.
    compare: write `bicubic | model`.
    progress: show a progress bar.
    crf: quality for libx264/libx265/libvpx-vp9 (`--crf`; lower is better; None: 17).
    codec: the video encoder (`--codec`; None: by suffix).
    pix_fmt: the stored pixel format (`--pix-fmt`; None: yuv420p, yuv444p for odd sizes).
    start: seconds into the video where the part to upscale begins (`--start`).
    duration: seconds to upscale from `start` (`--duration`; None: to the end).

  Returns:
    What `upscale_video` returns, plus `"loaded"`: the `checkpoint.LoadedModel` used.

  Raises:
    What `check_output`, `checkpoint.load_sr_model` and `upscale_video` raise.

  Example:
    >>> upscale_with_checkpoint("in.mp4", "out.mkv", "runs/sr_edsr", expect_scale=2,
    ...                         codec="libx265", crf=20, start=12.5, duration=4)
  """
  from jaxres.sr import checkpoint  # pylint: disable=import-outside-toplevel

  check_range(start, duration)
  check_output(in_path, out_path, compare=compare, codec=codec, pix_fmt=pix_fmt, crf=crf)
  loaded = checkpoint.load_sr_model(
    workdir, config=config, expect_model=expect_model, expect_scale=expect_scale, step=step
  )
  result = upscale_video(
    in_path,
    out_path,
    loaded.model,
    loaded.variables,
    scale=loaded.scale,
    clip_model=loaded.clip_model,
    options=options,
    compare=compare,
    progress=progress,
    crf=crf,
    codec=codec,
    pix_fmt=pix_fmt,
    start=start,
    duration=duration,
  )
  return {**result, "loaded": loaded}


def _tee(frames: Iterator[np.ndarray]) -> tuple[Iterator[np.ndarray], Iterator[np.ndarray]]:
  """Two iterators over `frames`; holds only the frames one has read and the other has not yet."""
  queue: collections.deque = collections.deque()

  def first():
    for f in frames:
      queue.append(f)
      yield f

  def second():
    while True:
      yield queue.popleft()

  return first(), second()


def _progress(total: int | None, enabled: bool, desc: str):
  from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel

  return tqdm(total=total, unit="frame", desc=desc, disable=not enabled, file=sys.stderr)
