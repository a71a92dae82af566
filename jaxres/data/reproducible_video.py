"""H.264 files whose bytes depend only on the frames: the writer of the generated datasets.

`jaxres.data.video.write_video` hands RGB frames to FFmpeg, whose RGB -> YUV conversion (swscale)
and x264's encoder both pick code paths by the CPU's instruction sets and thread count, so the
same frames gave files that differed by up to 12 levels from one machine to another. Here the
conversion is integer arithmetic in numpy (BT.601, limited range, 4:2:0 chroma from the mean of
each 2x2 block, as decoders read files that name no colour space) and x264 runs its portable C
code on one thread: the same frames give the same bytes on any x86-64 or ARM machine with the
pinned PyAV (`requirements/constraints.txt`; another libx264 may encode differently). The demo
datasets (`demo`, `photo_demo`, `footage`) write through it, so a seed names the same data
everywhere.

Example:
  >>> write_reproducible_video("clip.mp4", np.zeros((8, 64, 64, 3), np.uint8), fps=25)
"""

from __future__ import annotations

import fractions

import av
import numpy as np

from jaxres.atomic_files import atomic_path
from jaxres.data.video_write import check_output_path

# x264's options that make its output a function of its input alone: its portable C code (no
# assembly chosen by CPU features) and one thread (frame threads change its decisions).
X264_DETERMINISTIC = "threads=1:asm=0"


def rgb_to_yuv(frame: np.ndarray) -> tuple[np.ndarray, str]:
  """One uint8 `[H, W, 3]` RGB frame as YUV planes in the layout PyAV reads, and their format.

  BT.601 limited range in integer arithmetic (ITU-R BT.601's 8-bit formulas, as FFmpeg's
  `RGB2YUV`); even sizes store chroma at half resolution (4:2:0), converted from the rounded mean
  RGB of each 2x2 block, odd ones at full resolution (4:4:4). Integer maths gives the same planes
  on every machine.

  Args:
    frame: uint8 `[H, W, 3]` RGB.

  Returns:
    `(planes, pix_fmt)`: uint8 `[H * 3 // 2, W]` (Y, then U and V stacked) and `"yuv420p"` for
    even H and W, else uint8 `[3, H, W]` and `"yuv444p"`.

  Example:
    >>> planes, pix_fmt = rgb_to_yuv(np.full((2, 2, 3), 255, np.uint8))
    >>> planes[:2].tolist(), pix_fmt
    ([[235, 235], [235, 235]], 'yuv420p')
  """
  h, w = frame.shape[:2]
  rgb = frame.astype(np.int32)
  y = _luma(rgb)
  if h % 2 or w % 2:
    u, v = _chroma(rgb)
    return np.stack([y, u, v]).astype(np.uint8), "yuv444p"
  u, v = _chroma((rgb.reshape(h // 2, 2, w // 2, 2, 3).sum(axis=(1, 3)) + 2) >> 2)
  planes = np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)])
  return planes.astype(np.uint8).reshape(h * 3 // 2, w), "yuv420p"


def _luma(rgb: np.ndarray) -> np.ndarray:
  r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
  return ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16


def _chroma(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
  u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128
  v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128
  return u, v


def write_reproducible_video(path: str, frames: np.ndarray, fps: float, *, crf: int = 17) -> str:
  """Encodes uint8 `[T, H, W, 3]` RGB frames as H.264 into `path`, byte-reproducibly.

  Written to a temporary file renamed at the end (`jaxres.atomic_files`), like `write_video`.

  Args:
    path: an `.mp4`, `.mkv`, `.mov` or `.m4v` file; its folder must exist.
    frames: uint8 `[T, H, W, 3]` RGB (4:2:0 for even H and W, else 4:4:4; see `rgb_to_yuv`).
    fps: frame rate.
    crf: x264's constant rate factor (lower is closer to the frames; 17 is visually lossless).

  Returns:
    `path`.

  Example:
    >>> write_reproducible_video("up.mp4", clip, 25.0, crf=10)
  """
  frames = np.asarray(frames)
  if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
    raise ValueError(
      f"Expected uint8 [T, H, W, 3] frames for {path}, got {frames.dtype} {frames.shape}."
    )
  check_output_path(path, (".mp4", ".mkv", ".mov", ".m4v"))
  with atomic_path(path) as tmp:
    container = av.open(tmp, "w", format=_container_format(path))
    try:
      stream = container.add_stream("libx264", rate=fractions.Fraction(fps).limit_denominator(1001))
      stream.height, stream.width = frames.shape[1:3]
      stream.pix_fmt = _pix_fmt(frames.shape)
      stream.options = {"crf": str(crf), "preset": "veryfast", "x264-params": X264_DETERMINISTIC}
      for frame in frames:
        image = av.VideoFrame.from_ndarray(*rgb_to_yuv(frame))
        for packet in stream.encode(image):
          container.mux(packet)
      for packet in stream.encode():
        container.mux(packet)
    finally:
      container.close()
  return path


def _pix_fmt(shape: tuple[int, ...]) -> str:
  return "yuv444p" if shape[1] % 2 or shape[2] % 2 else "yuv420p"


def _container_format(path: str) -> str:
  suffix = path.rsplit(".", 1)[-1].lower()
  return {"mkv": "matroska", "m4v": "mp4"}.get(suffix, suffix)
