"""jaxres against torchvision on the same machine: throughput ratios for inference and a train step.

X3D models (`--models x3d_m`) are compared with PyTorchVideo's `create_x3d` built for the clip,
`csn_r101`, `slowfast_r50`, `slow_r50` and `r2plus1d_r50` with PyTorchVideo's `create_csn`,
`create_slowfast`, `create_resnet` and `create_r2plus1d` (the hub models' builders) with head
pools sized for the clip (`harness.pytorchvideo_resnet`); SlowFast's
torch peer gets the [slow, fast] pathways PyTorchVideo's `PackPathway` makes, jaxres the clip.

The same video models, batch and clip size in both: torchvision eager float32 in both memory
formats (channels-first and channels-last-3d, each its own model copy, its faster one counting for
each task), jaxres jitted float32 with its default convolution lowering. After one untimed round,
every repetition times each program once, alternated (torch forward in each format, jaxres
forward, torch train steps, jaxres train step), so load from other processes hits both alike; the
table reports medians and the jaxres/torch throughput ratio (> 1: jaxres is faster). Until
2026-12-02 a one-call probe chose torch's format up front, and picked channels-first for
r2plus1d_18's train step in a run where channels-last was faster in others.

Each library runs in its own fresh process per model (spawned, as in `vs_basicsr`), so neither
allocates into a heap that the other's calls have split, and a user's process, which holds one
library, is what is timed. The script restarts itself with `jaxres.host_memory`'s malloc
settings, as the `jaxres` command does; both workers inherit them (JAXRES_RETAIN_MEMORY=0 keeps
glibc's defaults).

  python -m benchmarks.vs_torch [--models r3d_18,mc3_18,r2plus1d_18] [--batch 4] [--frames 16]
      [--size 112] [--reps 5] [--threads 2] [--torch-formats channels_first,channels_last]
      [--out results/vs_torch.json]

Also `jaxres bench --vs torch`. Exits 0 with a message when torch is not installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time

import numpy as np

from benchmarks import harness
from jaxres import host_memory

# The programs a worker process times, by run name ("jaxres_train", "torch_forward/channels_last").
_RUNS: dict = {}


def _jaxres_setup(name: str, shape, num_classes: int) -> dict:
  """(In the jaxres worker) compiles and warms up the forward and train step."""
  import jax

  bench = harness.jax_bench(name, shape, num_classes)
  _RUNS.update(jaxres_forward=bench.forward, jaxres_train=bench.train)
  return {"compile_s": bench.compile_s, "backend": jax.default_backend()}


def _torch_setup(name: str, shape, num_classes: int, threads: int, formats) -> None:
  """(In the torch worker) builds and warms up each memory format's forward and train step."""
  for fmt, bench in harness.torch_benches(name, shape, num_classes, threads, formats).items():
    _RUNS[f"torch_forward/{fmt}"] = bench.forward
    _RUNS[f"torch_train/{fmt}"] = bench.train


def _timed(run: str) -> float:
  """(In a worker) seconds of one call of `run`."""
  return harness.median_time(_RUNS[run])


def compare(
  name: str,
  shape,
  reps: int,
  threads: int,
  num_classes: int = 400,
  torch_formats=harness.TORCH_MEMORY_FORMATS,
) -> dict:
  """Times torch (each memory format) and jaxres alternately, each library in its own process.

  Torch's figure for each task is its faster memory format's median, chosen after the timing.

  Args:
    name: the model, e.g. "r3d_18".
    shape: jaxres' input shape, e.g. (4, 16, 112, 112, 3).
    reps: timed rounds (after one untimed round).
    threads: torch's intra-op threads.
    num_classes: classifier width.
    torch_formats: a subset of `harness.TORCH_MEMORY_FORMATS`.

  Returns:
    Medians (seconds), every round's seconds, compile times and the jaxres/torch ratios.

  Example:
    >>> compare("r3d_18", (4, 16, 112, 112, 3), reps=3, threads=2)["train_ratio"]
  """
  with contextlib.ExitStack() as stack:
    ref = stack.enter_context(harness.spawn_worker())
    jx = stack.enter_context(harness.spawn_worker())
    setup = jx.submit(_jaxres_setup, name, shape, num_classes).result()
    ref.submit(_torch_setup, name, shape, num_classes, threads, tuple(torch_formats)).result()
    # In timing order: torch forward (each format), jaxres forward, then the train steps.
    order = [
      run
      for task in ("forward", "train")
      for run in [f"torch_{task}/{fmt}" for fmt in torch_formats] + [f"jaxres_{task}"]
    ]
    times = {run: [] for run in order}
    for rep in range(reps + 1):  # the first round untimed
      for run in order:
        seconds = (jx if run.startswith("jaxres") else ref).submit(_timed, run).result()
        if rep:
          times[run].append(seconds)
  all_med = {k: float(np.median(v)) for k, v in times.items()}
  med, formats = {}, {}
  for task in ("forward", "train"):
    med[f"jaxres_{task}"] = all_med[f"jaxres_{task}"]
    formats[task] = min(torch_formats, key=lambda f: all_med[f"torch_{task}/{f}"])
    med[f"torch_{task}"] = all_med[f"torch_{task}/{formats[task]}"]
  return {
    "model": name,
    "shape": list(shape),
    "backend": setup["backend"],
    "torch_memory_format": formats,
    "seconds": med,
    "medians": all_med,
    "all_seconds": times,
    "compile_s": setup["compile_s"],
    "forward_ratio": med["torch_forward"] / med["jaxres_forward"],
    "train_ratio": med["torch_train"] / med["jaxres_train"],
  }


def markdown(results: list[dict]) -> str:
  batch = results[0]["shape"][0]
  lines = [
    "| model | torch fwd clips/s | jaxres fwd clips/s | fwd ratio | torch train clips/s | "
    "jaxres train clips/s | train ratio |",
    "|---|---|---|---|---|---|---|",
  ]
  for r in results:
    s, fmt = r["seconds"], r["torch_memory_format"]
    lines.append(
      f"| {r['model']} | {batch / s['torch_forward']:.2f} ({fmt['forward']}) | "
      f"{batch / s['jaxres_forward']:.2f} | **{r['forward_ratio']:.2f}** | "
      f"{batch / s['torch_train']:.2f} ({fmt['train']}) | "
      f"{batch / s['jaxres_train']:.2f} | **{r['train_ratio']:.2f}** |"
    )
  return "\n".join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="vs_torch", description=__doc__.split("\n")[0])
  parser.add_argument("--models", default=",".join(harness.TORCHVISION_VIDEO))
  parser.add_argument("--batch", type=int, default=4)
  parser.add_argument("--frames", type=int, default=16)
  parser.add_argument("--size", type=int, default=112)
  parser.add_argument("--reps", type=int, default=5)
  parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch intra-op threads")
  parser.add_argument("--num-classes", type=int, default=400)
  parser.add_argument(
    "--torch-formats",
    default=",".join(harness.TORCH_MEMORY_FORMATS),
    help="torch memory formats to time; torch's faster one counts",
  )
  parser.add_argument(
    "--out",
    default="benchmarks/results/vs_torch.json",
    help="JSON results; a .md table is written beside it",
  )
  args = parser.parse_args(argv)
  unknown = set(args.torch_formats.split(",")) - set(harness.TORCH_MEMORY_FORMATS)
  if unknown:
    parser.error(
      f"--torch-formats: unknown {sorted(unknown)}; choose from "
      f"{','.join(harness.TORCH_MEMORY_FORMATS)}"
    )
  if harness.import_torch() is None:
    print("vs_torch: skipped, PyTorch/torchvision are not installed (pip install 'jaxres[torch]').")
    return 0
  results = []
  for name in args.models.split(","):
    shape = harness.input_shape(name, args.batch, args.frames, args.size)
    r = compare(
      name, shape, args.reps, args.threads, args.num_classes, tuple(args.torch_formats.split(","))
    )
    results.append(r)
    print(
      f"{name:12s} {tuple(shape)}  inference jaxres/torch {r['forward_ratio']:.2f}x  "
      f"train step jaxres/torch {r['train_ratio']:.2f}x   (torch {r['torch_memory_format']}; "
      f"s: {', '.join(f'{k} {v:.3f}' for k, v in r['seconds'].items())})",
      flush=True,
    )
  table = markdown(results)
  print("\n" + table)
  if args.out:
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    meta = {
      "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
      "cpu": harness.cpu_description(),
      "cores": os.cpu_count(),
      "reps": args.reps,
      "threads": args.threads,
      "malloc_retains_freed_memory": host_memory.retaining(),
    }
    with open(args.out, "w") as f:
      json.dump({"meta": meta, "results": results}, f, indent=1)
    with open(os.path.splitext(args.out)[0] + ".md", "w") as f:
      f.write(
        f"{meta['time']}, {meta['cpu']}, {meta['cores']} cores, medians of {args.reps}\n\n"
        + table
        + "\n"
      )
  return 0


if __name__ == "__main__":
  host_memory.restart_retaining()
  sys.exit(main())
