"""Does asking swscale for exact rounding make RGB frames the same on every CPU, and what does it cost?

`jaxres.data.video` converts decoded frames to RGB with FFmpeg's swscale (through PyAV), whose SIMD
code paths round differently from its C code, so the same file gives slightly different training
pixels on CPUs with different SIMD. PyAV's `VideoReformatter.reformat(interpolation=...)` takes
swscale's flags (`av.video.reformatter.Interpolation`, an IntFlag with `ACCURATE_RND` and
`BITEXACT`). This decodes the first frames of some videos with each setting below, in fresh
processes with FFmpeg's SIMD on and off (`av_force_cpu_flags(0)`, as tests/test_demo.py does),
and prints, per setting: whether the bytes are the same with and without SIMD, the conversion's
CPU ms per frame (SIMD on), whether they are the bytes the default flags give without SIMD (the C
code: "= C code"), and how far they are from today's (the default flags, SIMD on).

  python -m benchmarks.swscale_exact [VIDEO ...] [--frames 40] [--json out.json]

With no videos it writes two small ones (MPEG-4 .avi and H.264 .mp4, 320x240).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

SETTINGS = {
  "default (today)": None,
  "BITEXACT": ("BILINEAR", "BITEXACT"),
  "ACCURATE_RND": ("BILINEAR", "ACCURATE_RND"),
  "ACCURATE_RND|BITEXACT": ("BILINEAR", "ACCURATE_RND", "BITEXACT"),
  "POINT|ACCURATE_RND|BITEXACT": ("POINT", "ACCURATE_RND", "BITEXACT"),
}

_CHILD = """
import ctypes, glob, json, os, sys, time
import av, numpy as np
simd, names, out, frames = sys.argv[1] == "simd", json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4])
if not simd:  # FFmpeg as on a CPU without SSE/AVX (its C code paths)
  libs = os.path.join(os.path.dirname(av.__file__), "..", "av.libs", "libavutil-*")
  ctypes.CDLL(glob.glob(libs)[0]).av_force_cpu_flags(0)
from av.video.reformatter import Interpolation, VideoReformatter
flags = None
if names:
  flags = Interpolation[names[0]]
  for name in names[1:]:
    flags |= Interpolation[name]
converter, cpu, arrays = VideoReformatter(), 0.0, {}
for i, path in enumerate(sys.argv[5:]):
  kept = []
  with av.open(path) as container:
    stream = container.streams.video[0]
    stream.thread_type = "NONE"
    for frame in container.decode(stream):
      if len(kept) == frames:
        break
      start = time.process_time()
      rgb = converter.reformat(frame, format="rgb24", interpolation=flags, threads=1).to_ndarray()
      cpu += time.process_time() - start
      kept.append(rgb.copy())
  arrays[f"v{i}"] = np.stack(kept)
np.savez(out, **arrays)
print(json.dumps({"ms_per_frame": 1e3 * cpu / sum(len(a) for a in arrays.values())}))
"""


def convert(videos, names, simd: bool, frames: int, out: str) -> tuple[dict, float]:
  """RGB frames of `videos` with swscale flags `names` in a fresh process; (arrays, ms/frame)."""
  done = subprocess.run(
    [sys.executable, "-c", _CHILD, "simd" if simd else "no-simd", json.dumps(names), out]
    + [str(frames), *videos],
    capture_output=True,
    text=True,
    check=True,
  )
  with np.load(out) as arrays:
    return dict(arrays), json.loads(done.stdout.strip().splitlines()[-1])["ms_per_frame"]


def main() -> None:
  parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument("videos", nargs="*")
  parser.add_argument("--frames", type=int, default=40, help="frames per video")
  parser.add_argument("--json", default=None, help="write the results here")
  args = parser.parse_args()
  work = tempfile.mkdtemp(prefix="jaxres-swscale-")
  videos = args.videos
  if not videos:
    from benchmarks.input_pipeline import write_videos

    for suffix in (".avi", ".mp4"):
      write_videos(os.path.join(work, suffix[1:]), 1, args.frames, 240, 320, suffix, None)
    videos = sorted(
      os.path.join(folder, name)
      for folder, _, names in os.walk(work)
      for name in names
      if name.endswith((".avi", ".mp4"))
    )
  today, _ = convert(videos, SETTINGS["default (today)"], True, args.frames, f"{work}/t.npz")
  c_code, _ = convert(videos, SETTINGS["default (today)"], False, args.frames, f"{work}/c.npz")
  rows = {}
  print(f"{len(videos)} videos, {args.frames} frames each")
  print(
    f"{'swscale flags':<30}{'same without SIMD':>18}{'= C code':>10}{'ms/frame':>10}"
    f"{'max |diff| to today (share of bytes)':>38}"
  )
  for label, names in SETTINGS.items():
    with_simd, ms = convert(videos, names, True, args.frames, f"{work}/a.npz")
    without, _ = convert(videos, names, False, args.frames, f"{work}/b.npz")
    same = all(np.array_equal(with_simd[k], without[k]) for k in with_simd)
    as_c = all(np.array_equal(with_simd[k], c_code[k]) for k in with_simd)
    diff = max(int(np.abs(with_simd[k].astype(int) - today[k]).max()) for k in today)
    share = float(np.mean([np.mean(with_simd[k] != today[k]) for k in today]))
    rows[label] = {
      "same_without_simd": same,
      "equals_default_without_simd": as_c,
      "ms_per_frame": ms,
      "max_diff_to_today": diff,
      "share_of_bytes_differing": share,
    }
    print(f"{label:<30}{str(same):>18}{str(as_c):>10}{ms:>10.3f}{diff:>30d} ({share:.0%})")
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"videos": videos, "frames": args.frames, "settings": rows}, f, indent=1)


if __name__ == "__main__":
  main()
