"""jaxres against torchvision on the same machine: throughput ratios for inference and a train step.

The same video models, batch and clip size in both: torchvision eager float32 in its faster memory
format (channels-first or channels-last-3d, probed), jaxres jitted float32 with its default
convolution lowering. After one untimed round, every repetition times each of the four
(torch/jaxres x forward/train) once, alternated, so load from other processes hits both alike; the
table reports medians and the jaxres/torch throughput ratio (> 1: jaxres is faster). Each model is
compared in a fresh process, so the heap one model's programs leave cannot slow the next (in one
process r2plus1d_18's jaxres train step once took 9.3-9.5 s after r3d_18 and mc3_18, against
5.0 s alone; how the heap lies after torch's calls still varies between runs, see
benchmarks/README.md). The script
restarts itself with `jaxres.host_memory`'s malloc settings, as the `jaxres` command does; they
apply to torch in the same process too (JAXRES_RETAIN_MEMORY=0 keeps glibc's defaults).

  python benchmarks/vs_torch.py [--models r3d_18,mc3_18,r2plus1d_18] [--batch 4] [--frames 16]
      [--size 112] [--reps 5] [--threads 2] [--out results/vs_torch.json]

Also `jaxres bench --vs torch`. Exits 0 with a message when torch is not installed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import sys
import time

import numpy as np

try:
  from benchmarks import harness
except ImportError:  # run as a script: python benchmarks/vs_torch.py
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from benchmarks import harness

from jaxres import host_memory


def compare(name: str, shape, reps: int, threads: int, num_classes: int = 400) -> dict:
  """Times torch and jaxres alternately; returns medians (seconds) and ratios for one model."""
  import jax
  torch_b = harness.torch_bench(name, shape, num_classes, threads=threads)
  jax_b = harness.jax_bench(name, shape, num_classes)
  runs = {"torch_forward": torch_b.forward, "jaxres_forward": jax_b.forward,
          "torch_train": torch_b.train, "jaxres_train": jax_b.train}
  times = {k: [] for k in runs}
  # One untimed round first: each program's first call after the other's grows the process's heap
  # (with `host_memory`'s retained memory, r2plus1d_18's train step once took 11.7 s, then 6.5 s).
  for fn in runs.values():
    harness.median_time(fn)
  for _ in range(reps):
    for k, fn in runs.items():
      times[k].append(harness.median_time(fn))
  med = {k: float(np.median(v)) for k, v in times.items()}
  return {
      "model": name, "shape": list(shape), "backend": jax.default_backend(),
      "torch_memory_format": torch_b.memory_format, "seconds": med,
      "all_seconds": times, "compile_s": jax_b.compile_s,
      "forward_ratio": med["torch_forward"] / med["jaxres_forward"],
      "train_ratio": med["torch_train"] / med["jaxres_train"],
  }


def markdown(results: list[dict]) -> str:
  batch = results[0]["shape"][0]
  lines = ["| model | torch fwd clips/s | jaxres fwd clips/s | fwd ratio | torch train clips/s | "
           "jaxres train clips/s | train ratio |", "|---|---|---|---|---|---|---|"]
  for r in results:
    s = r["seconds"]
    lines.append(f"| {r['model']} ({r['torch_memory_format']}) | {batch / s['torch_forward']:.2f} | "
                 f"{batch / s['jaxres_forward']:.2f} | **{r['forward_ratio']:.2f}** | "
                 f"{batch / s['torch_train']:.2f} | {batch / s['jaxres_train']:.2f} | "
                 f"**{r['train_ratio']:.2f}** |")
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
  parser.add_argument("--out", default="benchmarks/results/vs_torch.json",
                      help="JSON results; a .md table is written beside it")
  args = parser.parse_args(argv)
  if harness.import_torch() is None:
    print("vs_torch: skipped, PyTorch/torchvision are not installed (pip install 'jaxres[torch]').")
    return 0
  results = []
  for name in args.models.split(","):
    shape = harness.input_shape(name, args.batch, args.frames, args.size)
    # "spawn": a fresh interpreter, which also re-reads the malloc settings from the environment.
    with concurrent.futures.ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context("spawn")) as worker:
      r = worker.submit(compare, name, shape, args.reps, args.threads, args.num_classes).result()
    results.append(r)
    print(f"{name:12s} {tuple(shape)}  inference jaxres/torch {r['forward_ratio']:.2f}x  "
          f"train step jaxres/torch {r['train_ratio']:.2f}x   (torch {r['torch_memory_format']}; "
          f"s: {', '.join(f'{k} {v:.3f}' for k, v in r['seconds'].items())})", flush=True)
  table = markdown(results)
  print("\n" + table)
  if args.out:
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    meta = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "cpu": harness.cpu_description(), "cores": os.cpu_count(), "reps": args.reps,
            "threads": args.threads, "malloc_retains_freed_memory": host_memory.retaining()}
    with open(args.out, "w") as f:
      json.dump({"meta": meta, "results": results}, f, indent=1)
    with open(os.path.splitext(args.out)[0] + ".md", "w") as f:
      f.write(f"{meta['time']}, {meta['cpu']}, {meta['cores']} cores, medians of {args.reps}\n\n"
              + table + "\n")
  return 0


if __name__ == "__main__":
  host_memory.restart_retaining()
  sys.exit(main())
