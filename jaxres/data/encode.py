"""Writing uint8 frame stacks as real video files with PyAV (for demo data, tests and benchmarks).

The codec follows the container unless given: `.mp4`/`.mkv`/`.mov` -> h264 (libx264), `.avi` -> mpeg4,
`.webm` -> vp9. Frames with an odd height or width are written in 4:4:4 chroma (4:2:0 needs even
sizes); everything else in 4:2:0, which every player reads.

Example:
  >>> write_video("clip.mp4", np.zeros((8, 64, 64, 3), np.uint8), fps=25)
"""

from __future__ import annotations

import fractions
import os

import av
import numpy as np

_DEFAULT_CODECS = {".mp4": "libx264", ".mkv": "libx264", ".mov": "libx264", ".m4v": "libx264",
                   ".avi": "mpeg4", ".webm": "libvpx-vp9"}


def write_video(path: str, frames: np.ndarray, fps: float, *, codec: str | None = None,
                quality: int = 18, timestamps: np.ndarray | None = None,
                gop: int | None = None) -> str:
  """Encodes `frames` into `path` (written to a temporary name, then renamed into place).

  Args:
    path: output file; its suffix picks the container and, unless `codec` is given, the codec.
    frames: uint8 `[T, H, W, 3]` RGB.
    fps: nominal frame rate.
    codec: an FFmpeg encoder name (`libx264`, `mpeg4`, `libvpx-vp9`, `mjpeg`, ...).
    quality: CRF for h264/vp9 (lower is better), `qscale`-like for mpeg4 (mapped to 2..31).
    timestamps: optional presentation times in seconds, one per frame (variable frame rate).
    gop: keyframe interval in frames (default: the encoder's).

  Returns:
    `path`.

  Example:
    >>> write_video("clip.webm", frames, fps=30, codec="libvpx-vp9")
  """
  frames = np.asarray(frames)
  if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
    raise ValueError(f"Expected uint8 [T, H, W, 3] frames, got {frames.dtype} {frames.shape}.")
  suffix = os.path.splitext(path)[1].lower()
  codec = codec or _DEFAULT_CODECS.get(suffix, "libx264")
  _, height, width, _ = frames.shape
  odd = height % 2 or width % 2
  tmp = os.path.join(os.path.dirname(path) or ".", f".{os.path.basename(path)}.tmp{suffix}")
  rate = fractions.Fraction(fps).limit_denominator(1001)
  with av.open(tmp, "w") as container:
    stream = container.add_stream(codec, rate=rate)
    stream.width, stream.height = width, height
    if codec == "mjpeg":
      stream.pix_fmt = "yuvj444p" if odd else "yuvj420p"
    else:
      stream.pix_fmt = "yuv444p" if odd else "yuv420p"
    options = {}
    if codec in ("libx264", "libvpx-vp9"):
      options["crf"] = str(quality)
      if codec == "libvpx-vp9":
        options.update({"b": "0", "deadline": "realtime", "cpu-used": "8"})
      else:
        options["preset"] = "veryfast"
    elif codec in ("mpeg4", "mjpeg"):
      stream.bit_rate = 8_000_000  # Tests compare decoded frames with what was written.
    if gop:
      stream.codec_context.gop_size = gop
    stream.options = options
    if timestamps is not None:
      stream.time_base = stream.codec_context.time_base = fractions.Fraction(1, 1000)
    for i, image in enumerate(frames):
      frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
      if timestamps is not None:
        frame.pts = int(round(float(timestamps[i]) * 1000))
        frame.time_base = fractions.Fraction(1, 1000)
      for packet in stream.encode(frame):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
  os.replace(tmp, path)
  return path
