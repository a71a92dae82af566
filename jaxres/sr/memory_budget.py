"""What upscaling a video costs in memory, and the window and tile sizes that fit a budget.

Beyond what the process holds before it starts (the runtime, the model's variables), the peak
resident memory of `jaxres.sr.upscale` is:

- the compiled model called on one window: XLA's temporaries, its input and its output
  (`compiled.memory_analysis()`). They are proportional to frames x LR pixels of the window's tile:
  BasicVSR++ (64 features) takes 8,384 bytes per LR pixel and frame at 3 x 64 x 64, 3 x 96 x 96,
  3 x 128 x 128 and 6 x 64 x 64 alike. Running it takes more than XLA's count (convolution
  scratch outside XLA's buffers, allocator slack): 1.35x to 1.7x for one call of BasicVSR++, and
  about 2.2x over a whole upscale of tiled windows with glibc retaining freed memory (as `jaxres`
  runs: one heap, fragmented as windows come and go), so the estimate counts `EXECUTION_FACTOR`
  = 3 times XLA's bytes;
- compiling it: the recurrent models unroll their propagation over the window's frames, so their
  program, and the memory its compilation keeps, grow with the window's length (BasicVSR++: about
  50 MB a frame);
- the frames held on the host: the LR window and its float32 HR output, whole frames even when
  tiled.

`measure_cost` compiles the model once on a probe window (3 frames, at most 64 x 64) and scales
from it. `choose_options` then takes, among windows of up to `MAX_AUTO_CHUNK` kept frames and tiles
from whole frames down to 64 LR pixels, the one that fits the budget and computes the least that
is thrown away (overlap frames and tile borders), preferring fewer, larger calls on ties.

Example:
  >>> budget = default_max_memory()            # this process + 70% of what the machine has free
  >>> cost = measure_cost(compile_fn, clip_model=True, scale=4, frame_size=(540, 960))
  >>> plan = choose_options(cost, UpscaleOptions(), (540, 960), budget)
  >>> plan.options.tile, plan.estimate_bytes
"""

from __future__ import annotations

import dataclasses
import math
import os
import resource
import sys
from typing import Any, Callable

from jaxres.sr.windows import spans
from jaxres.train.plan import format_bytes

EXECUTION_FACTOR = 3.0
PROBE_FRAMES = 3
PROBE_SIZE = 64
TILE_SIZES = (1024, 768, 512, 384, 256, 192, 128, 96, 64)
CHUNK_SIZES = (16, 12, 8, 6, 4, 2, 1)
MAX_AUTO_CHUNK = CHUNK_SIZES[0]
DEFAULT_SHARE = 0.7


def _max_rss_bytes() -> int:
  """`ru_maxrss` in bytes (kilobytes on Linux, bytes on macOS)."""
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return peak if sys.platform == "darwin" else peak * 1024


def resident_bytes() -> int:
  """This process's resident memory now (Linux), or its peak so far elsewhere."""
  try:
    with open("/proc/self/statm") as f:
      return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
  except (OSError, ValueError, IndexError):
    return _max_rss_bytes()


def peak_resident_bytes() -> int:
  """This process's peak resident memory: `VmHWM` on Linux, else `ru_maxrss`.

  `ru_maxrss` is not this program's own on Linux: it survives `execve`, so a process started from
  a large one (a test worker, a notebook) reports its parent's peak. `VmHWM` belongs to the
  process's own address space.
  """
  try:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith("VmHWM:"):
          return int(line.split()[1]) * 1024
  except (OSError, ValueError, IndexError):
    pass
  return _max_rss_bytes()


def available_bytes() -> int:
  """Memory the machine can still give: `MemAvailable`, capped by a cgroup's limit if lower.

  Returns:
    Bytes; half the physical memory where neither can be read.
  """
  available = None
  try:
    with open("/proc/meminfo") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          available = int(line.split()[1]) * 1024
  except (OSError, ValueError):
    pass
  if available is None:
    available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
  try:
    with open("/sys/fs/cgroup/memory.max") as f:
      limit = f.read().strip()
    with open("/sys/fs/cgroup/memory.current") as f:
      used = int(f.read().strip())
    if limit != "max":
      available = min(available, int(limit) - used)
  except (OSError, ValueError):
    pass
  return max(0, available)


def default_max_memory() -> int:
  """The default budget: what this process holds now plus `DEFAULT_SHARE` of what is available."""
  return resident_bytes() + int(DEFAULT_SHARE * available_bytes())


@dataclasses.dataclass(frozen=True)
class WindowCost:
  """How upscaling's memory grows with the window (see the module notes).

  Attributes:
    base_bytes: resident before the first window (runtime, variables, the probe's compilation).
    fixed_xla_bytes: XLA bytes that do not grow with the window (the variables passed in).
    xla_bytes_per_pixel_frame: XLA temporaries + input + output per LR pixel and frame.
    compile_bytes: memory kept by compiling the probe's program.
    probe_frames: frames (clip models) or batch (per-frame models) of the probe.
    clip_model: whether the program, and its compilation, grow with the window's frames.
    scale: the model's factor.
  """

  base_bytes: int
  fixed_xla_bytes: int
  xla_bytes_per_pixel_frame: float
  compile_bytes: int
  probe_frames: int
  clip_model: bool
  scale: int

  def estimate(self, frames: int, tile_size: tuple[int, int], frame_size: tuple[int, int]) -> int:
    """Peak resident bytes when windows of `frames` run on `tile_size` tiles of `frame_size` frames.

    Args:
      frames: frames per window (clip models) or per batch (per-frame models).
      tile_size: `(height, width)` of one call's LR tile.
      frame_size: `(height, width)` of the LR frames.

    Returns:
      The estimated peak resident memory of the process, in bytes.
    """
    tile_pixels = tile_size[0] * tile_size[1]
    frame_pixels = frame_size[0] * frame_size[1]
    xla = self.fixed_xla_bytes + self.xla_bytes_per_pixel_frame * frames * tile_pixels
    compiling = self.compile_bytes * (frames / self.probe_frames if self.clip_model else 1.0)
    # The LR frames buffered and stacked, the HR window assembled from tiles, one tile's HR copy.
    host = 4 * 3 * frames * (2 * frame_pixels + self.scale**2 * (frame_pixels + tile_pixels))
    return int(self.base_bytes + compiling + EXECUTION_FACTOR * xla + host)


def measure_cost(
  compile_window: Callable[[tuple[int, ...]], Any],
  *,
  clip_model: bool,
  scale: int,
  frame_size: tuple[int, int],
) -> WindowCost:
  """Compiles the model on a probe window and reads how its memory will grow.

  Args:
    compile_window: compiles the model for an input shape (`[1, T, h, w, 3]` for clip models,
      `[B, h, w, 3]` otherwise) and returns the compiled program (`memory_analysis()` is read).
    clip_model: whether the model takes clips.
    scale: the model's factor.
    frame_size: `(height, width)` of the LR frames (the probe is no larger).

  Returns:
    The `WindowCost`.

  Example:
    >>> cost = measure_cost(upscaler.compile_window, clip_model=True, scale=4,
    ...                     frame_size=(540, 960))
  """
  h, w = (min(PROBE_SIZE, n) for n in frame_size)
  shape = (1, PROBE_FRAMES, h, w, 3) if clip_model else (PROBE_FRAMES, h, w, 3)
  before = resident_bytes()
  analysis = compile_window(shape).memory_analysis()
  after = resident_bytes()
  input_bytes = 4 * math.prod(shape)
  grows = analysis.temp_size_in_bytes + analysis.output_size_in_bytes + input_bytes
  return WindowCost(
    base_bytes=after,
    fixed_xla_bytes=max(0, analysis.argument_size_in_bytes - input_bytes),
    xla_bytes_per_pixel_frame=grows / (PROBE_FRAMES * h * w),
    compile_bytes=max(0, after - before),
    probe_frames=PROBE_FRAMES,
    clip_model=clip_model,
    scale=scale,
  )


@dataclasses.dataclass(frozen=True)
class Plan:
  """The sizes chosen for a budget.

  Attributes:
    options: the resolved `UpscaleOptions` (chunk and tile set).
    estimate_bytes: estimated peak resident memory with them.
    max_memory: the budget.
    window_frames: frames per call (shorter than `chunk + 2 * overlap` for a short video).
  """

  options: Any
  estimate_bytes: int
  max_memory: int
  window_frames: int

  def describe(self) -> str:
    """One line: window, tiles and the estimate against the budget."""
    o = self.options
    frames = o.chunk + 2 * o.overlap
    if self.window_frames < frames:
      window = f"{self.window_frames} frames (the whole video)"
    else:
      window = f"{o.chunk} + 2 x {o.overlap} frames" if o.overlap else f"{o.chunk} frames"
    tiles = f"{o.tile} px tiles" if o.tile else "whole frames"
    return (
      f"windows of {window}, {tiles}: about {format_bytes(self.estimate_bytes)} "
      f"of --max-memory {format_bytes(self.max_memory)}"
    )


def window_shape(
  options: Any, frame_size: tuple[int, int], clip_model: bool, num_frames: int | None = None
) -> tuple[int, ...]:
  """The model's input shape for one call under resolved `options` (`[1, T, h, w, 3]` or
  `[B, h, w, 3]`), no longer than `num_frames` where given."""
  h, w = frame_size
  th, tw = (min(options.tile, h), min(options.tile, w)) if options.tile else (h, w)
  frames = min(options.chunk + 2 * (options.overlap if clip_model else 0), num_frames or math.inf)
  return (1, frames, th, tw, 3) if clip_model else (frames, th, tw, 3)


def fit(
  compile_window: Callable[[tuple[int, ...]], Any],
  options: Any,
  *,
  clip_model: bool,
  scale: int,
  frame_size: tuple[int, int],
  max_memory: int,
  num_frames: int | None = None,
) -> Plan:
  """Measures the cost (`measure_cost`), chooses sizes (`choose_options`) and checks them compiled.

  Compiling the chosen window shows what its compilation really keeps (the probe's is scaled,
  and less exact than XLA's own count): when that is more than the probe predicted, the choice is
  made again with the corrected cost (up to three times) and kept if it stays the same.

  Args:
    compile_window: as for `measure_cost`; the chosen shape's program stays compiled.
    options: `UpscaleOptions` with `chunk` and/or `tile` left None.
    clip_model: whether the model takes clips.
    scale: the model's factor.
    frame_size: `(height, width)` of the LR frames.
    max_memory: the budget, bytes.
    num_frames: the video's length where known (see `choose_options`).

  Returns:
    The `Plan`.

  Raises:
    ValueError: nothing fits.

  Example:
    >>> plan = fit(upscaler.compile_window, UpscaleOptions(), clip_model=True, scale=4,
    ...            frame_size=(540, 960), max_memory=16 * 2**30)
  """
  cost = measure_cost(compile_window, clip_model=clip_model, scale=scale, frame_size=frame_size)
  for _ in range(3):
    plan = choose_options(cost, options, frame_size, max_memory, num_frames)
    shape = window_shape(plan.options, frame_size, clip_model, num_frames)
    compile_window(shape)
    kept = resident_bytes() - cost.base_bytes  # what compiling the chosen window kept
    frames = shape[1] if clip_model else shape[0]
    per_probe = kept * (cost.probe_frames / frames if clip_model else 1.0)
    if per_probe <= cost.compile_bytes:
      return plan
    cost = dataclasses.replace(cost, compile_bytes=int(per_probe))
    checked = choose_options(cost, options, frame_size, max_memory, num_frames)
    if checked.options == plan.options:
      return checked
  return plan


def _covered_fraction(frame_size: tuple[int, int], tile: int, tile_overlap: int) -> float:
  """LR pixels computed per pixel of the frame when tiling (1 for whole frames)."""
  if not tile:
    return 1.0
  work = 1.0
  for n in frame_size:
    work *= sum(end - start for start, end, _, _ in spans(n, tile, tile_overlap)) / n
  return work


def choose_options(
  cost: WindowCost,
  options: Any,
  frame_size: tuple[int, int],
  max_memory: int,
  num_frames: int | None = None,
) -> Plan:
  """Resolves the automatic (None) `chunk` and `tile` of `options` to fit `max_memory`.

  Args:
    cost: from `measure_cost`.
    options: `UpscaleOptions`; a `chunk` or `tile` that is set is kept as it is.
    frame_size: `(height, width)` of the LR frames.
    max_memory: the budget for the whole process's resident memory, bytes.
    num_frames: the video's length where known: windows are no longer (a clip model's short
      video is one window).

  Returns:
    The `Plan` that throws away the least computation among those that fit (its estimate may
    exceed `max_memory` only where both sizes were given).

  Raises:
    ValueError: nothing fits; the message gives the smallest estimate and what to change.

  Example:
    >>> plan = choose_options(cost, UpscaleOptions(), (540, 960), 16 * 2**30)
  """
  h, w = frame_size
  length = num_frames or math.inf
  overlap = options.overlap if cost.clip_model else 0
  if options.chunk:
    chunks = [options.chunk]
  else:  # the longest window (the whole of a short video), and those shorter than the video
    chunks = [MAX_AUTO_CHUNK] + [c for c in CHUNK_SIZES[1:] if c + 2 * overlap < length]
  if options.tile is not None:
    tiles = [options.tile]
  else:
    tiles = [0] + [t for t in TILE_SIZES if 2 * options.tile_overlap < t < max(h, w)]
  best, smallest = None, None
  for chunk in chunks:
    frames = min(chunk + 2 * overlap, length)
    for tile in tiles:
      tile_size = (min(tile, h), min(tile, w)) if tile else (h, w)
      estimate = cost.estimate(frames, tile_size, frame_size)
      resolved = dataclasses.replace(options, chunk=chunk, tile=tile)
      if smallest is None or estimate < smallest.estimate_bytes:
        smallest = Plan(resolved, estimate, max_memory, frames)
      if estimate > max_memory:
        continue
      repeated = frames / chunk if frames < length else 1.0  # one window: no overlap frames
      waste = repeated * _covered_fraction(frame_size, tile, options.tile_overlap)
      key = (round(waste, 3), -chunk, -(tile or max(h, w)))
      if best is None or key < best[0]:
        best = (key, Plan(resolved, estimate, max_memory, frames))
  if best is not None:
    return best[1]
  if options.chunk and options.tile is not None:
    return smallest
  raise ValueError(
    f"Upscaling {w}x{h} frames needs about {format_bytes(smallest.estimate_bytes)} even in "
    f"windows of {smallest.options.chunk} frames and {smallest.options.tile or 'whole-frame'} "
    f"px tiles, more than --max-memory {format_bytes(max_memory)}; raise --max-memory, "
    "or lower --overlap or --tile-overlap."
  )
