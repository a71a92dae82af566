"""Upscaling under a memory budget: peak resident memory and frames/s of `jaxres upscale`'s path.

Writes a random 8-bit video of `--size` LR frames, builds the model with random weights (speed
and memory do not depend on them), and upscales it with `jaxres.sr.upscale.upscale_video` in a
process that retains freed memory as `jaxres` does. `--chunk`/`--tile` unset are chosen from
`--max-memory` (default: this process plus 70% of the available memory). Prints the plan, its
estimate, the peak resident memory (`VmHWM`), seconds per frame and frames/s, and the plan a
long video of the same size would get (estimated first, before the process holds anything else).

  python -m benchmarks.upscale_memory                          # BasicVSR++ x4, 960x540 -> 3840x2160, 2 frames
  python -m benchmarks.upscale_memory --model basicvsr --frames 4 --max-memory 8GiB
  python -m benchmarks.upscale_memory --size 128x72 --frames 3 --json out.json   # seconds
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np


def main(argv: list[str] | None = None) -> dict:
  """Runs the benchmark; returns (and with --json writes) its results."""
  parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument("--model", default="basicvsrpp", help="a registered SR model")
  parser.add_argument("--model-kwargs", default="{}", help="JSON, e.g. '{\"features\": 16}'")
  parser.add_argument("--size", default="960x540", help="LR frame size WxH")
  parser.add_argument("--frames", type=int, default=2, help="frames in the video")
  parser.add_argument("--max-memory", default=None, help="e.g. 16GiB (default: automatic)")
  parser.add_argument("--chunk", type=int, default=None)
  parser.add_argument("--tile", type=int, default=None)
  parser.add_argument("--json", default=None, help="write the results here")
  args = parser.parse_args(argv)

  import jax
  import jax.numpy as jnp

  from jaxres import models
  from jaxres.data import video
  from jaxres.sr import memory_budget, upscale
  from jaxres.train.plan import format_bytes, parse_bytes

  width, height = (int(v) for v in args.size.lower().split("x"))
  model = models.get(args.model, **json.loads(args.model_kwargs))
  clip_model = models.spec(args.model).input_rank == 5
  x = jnp.zeros((1, 2, 16, 16, 3) if clip_model else (1, 16, 16, 3))
  variables = jax.jit(lambda x: model.init(jax.random.key(0), x, train=False))(x)
  max_memory = parse_bytes(args.max_memory) if args.max_memory else None
  options = upscale.UpscaleOptions(chunk=args.chunk, tile=args.tile, max_memory=max_memory)

  long_plan = None
  if options.automatic:  # what a long video of this size gets (estimated before anything runs)
    up = upscale.Upscaler(model, variables, model.scale, clip_model=clip_model, options=options)
    cost = memory_budget.measure_cost(
      up.compile_window, clip_model=clip_model, scale=model.scale, frame_size=(height, width)
    )
    long_plan = memory_budget.choose_options(
      cost, up.requested, (height, width), max_memory or memory_budget.default_max_memory()
    )
    del up
  with tempfile.TemporaryDirectory() as tmp:
    src, out = os.path.join(tmp, "in.mp4"), os.path.join(tmp, "out.mp4")
    rng = np.random.default_rng(0)
    with video.VideoWriter(src, 25.0) as writer:
      for _ in range(args.frames):
        writer.write(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    start = time.perf_counter()
    result = upscale.upscale_video(
      src,
      out,
      model,
      variables,
      scale=model.scale,
      clip_model=clip_model,
      options=options,
      progress=False,
    )
    seconds = time.perf_counter() - start
  peak = memory_budget.peak_resident_bytes()
  plan = result["plan"]
  results = {
    "model": args.model,
    "lr_size": [width, height],
    "scale": model.scale,
    "frames": result["frames"],
    "seconds": seconds,
    "seconds_per_frame": seconds / args.frames,
    "frames_per_s": args.frames / seconds,
    "peak_rss_bytes": peak,
    "plan": plan and plan.describe(),
    "estimate_bytes": plan and plan.estimate_bytes,
    "max_memory": plan and plan.max_memory,
    "long_video_plan": long_plan and long_plan.describe(),
    "cpu": os.cpu_count(),
    "jax": jax.__version__,
  }
  print(
    f"{args.model} x{model.scale}, {width}x{height} -> {width * model.scale}x"
    f"{height * model.scale}, {args.frames} frames: {seconds:.1f} s "
    f"({seconds / args.frames:.1f} s/frame, {args.frames / seconds:.4f} frames/s), "
    f"peak resident {format_bytes(peak)}"
  )
  if plan is not None:
    print(f"plan: {plan.describe()}\nlong video: {long_plan.describe()}")
  if args.json:
    with open(args.json, "w") as f:
      json.dump(results, f, indent=1)
  return results


if __name__ == "__main__":
  from jaxres import host_memory

  host_memory.restart_retaining()  # as `jaxres upscale` runs
  main()
