"""Compiled throughput of jaxres models: forward and train step, compile time, memory, GFLOP/s.

For each model: clips (or images) per second of the jitted forward (eval mode) and train step (see
`benchmarks/harness.py`), compile times, XLA's memory estimate, achieved GFLOP/s (2 x multiply-adds;
3x that for a train step: forward, input gradient and kernel gradient) and its fraction of a matmul
peak measured on the same backend in the same run. Warm-up runs are excluded; figures are medians
of `--reps` repetitions. Writes JSON, a markdown table and a PNG plot.

  python -m benchmarks.run [--models r3d_18,mc3_18,r2plus1d_18] [--batch 4] [--frames 16]
      [--size 112] [--reps 5] [--lowering auto] [--out-dir benchmarks/results]
  python -m benchmarks.run --vs torch     # the same as benchmarks/vs_torch.py

Also `jaxres bench ...` with the same arguments.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time

import numpy as np

from benchmarks import harness
from jaxres import host_memory

DEFAULT_MODELS = "r3d_18,mc3_18,r2plus1d_18"


def matmul_peak(n: int = 2048, reps: int = 5) -> float:
  """GFLOP/s of a float32 n x n matmul on JAX's default backend (median of `reps`)."""
  import jax
  import jax.numpy as jnp

  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
  f = jax.jit(jnp.dot)
  jax.block_until_ready(f(a, b))
  return 2 * n**3 / harness.median_time(lambda: f(a, b), reps) / 1e9


def bench_model(
  name: str,
  batch: int,
  frames: int,
  size: int,
  reps: int,
  lowering: str,
  peak: float,
  num_classes: int = 400,
) -> dict:
  """One model's row of the results (see the module docstring)."""
  import jax

  from jaxres import models
  from jaxres.models.conv import Conv

  shape = harness.input_shape(name, batch, frames, size)
  kwargs = {} if lowering == "auto" else {"conv": functools.partial(Conv, lowering=lowering)}
  bench = harness.jax_bench(name, shape, num_classes, **kwargs)
  fwd_s = harness.median_time(bench.forward, reps)
  train_s = harness.median_time(bench.train, reps)
  flops = 2 * models.count_macs(models.get(name, num_classes=num_classes), shape)
  return {
    "model": name,
    "shape": list(shape),
    "backend": jax.default_backend(),
    "lowering": lowering,
    "forward_s": fwd_s,
    "train_s": train_s,
    "forward_clips_per_s": batch / fwd_s,
    "train_clips_per_s": batch / train_s,
    "compile_forward_s": bench.compile_s["forward"],
    "compile_train_s": bench.compile_s["train"],
    "memory_forward_bytes": harness.peak_bytes(bench.forward_compiled),
    "memory_train_bytes": harness.peak_bytes(bench.train_compiled),
    "forward_gflops": flops / fwd_s / 1e9,
    "train_gflops": 3 * flops / train_s / 1e9,
    "forward_peak_fraction": flops / fwd_s / 1e9 / peak,
    "train_peak_fraction": 3 * flops / train_s / 1e9 / peak,
  }


def markdown(results: list[dict], peak: float) -> str:
  def mib(b):
    return "n/a" if b is None else f"{b / 2**20:.0f}"

  lines = [
    f"matmul peak: {peak:.0f} GFLOP/s",
    "",
    "| model | input | lowering | fwd clips/s | train clips/s | fwd GFLOP/s (of peak) | "
    "train GFLOP/s (of peak) | compile fwd / train s | memory fwd / train MiB |",
    "|---|---|---|---|---|---|---|---|---|",
  ]
  for r in results:
    lines.append(
      f"| {r['model']} | {'x'.join(map(str, r['shape']))} | {r['lowering']} | "
      f"{r['forward_clips_per_s']:.2f} | {r['train_clips_per_s']:.2f} | "
      f"{r['forward_gflops']:.0f} ({r['forward_peak_fraction']:.0%}) | "
      f"{r['train_gflops']:.0f} ({r['train_peak_fraction']:.0%}) | "
      f"{r['compile_forward_s']:.1f} / {r['compile_train_s']:.1f} | "
      f"{mib(r['memory_forward_bytes'])} / {mib(r['memory_train_bytes'])} |"
    )
  return "\n".join(lines)


def plot(results: list[dict], path: str) -> bool:
  """A bar chart of forward and train-step throughput; False if matplotlib is missing."""
  try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
  except ImportError:
    return False
  labels = [f"{r['model']}\n{r['lowering']}" for r in results]
  xs = np.arange(len(results))
  fig, ax = plt.subplots(figsize=(max(4, 1.6 * len(results)), 3.5))
  ax.bar(xs - 0.2, [r["forward_clips_per_s"] for r in results], 0.4, label="forward")
  ax.bar(xs + 0.2, [r["train_clips_per_s"] for r in results], 0.4, label="train step")
  ax.set_xticks(xs, labels, fontsize=8)
  ax.set_ylabel("clips / s")
  ax.set_title(
    f"jaxres on {results[0]['backend']}, input {'x'.join(map(str, results[0]['shape']))}"
  )
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return True


def main(argv=None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  if "--vs" in argv:
    i = argv.index("--vs")
    if argv[i + 1 : i + 2] != ["torch"]:
      print("run: --vs takes one value, torch.", file=sys.stderr)
      return 2
    from benchmarks import vs_torch

    return vs_torch.main(argv[:i] + argv[i + 2 :])
  parser = argparse.ArgumentParser(
    prog="jaxres bench",
    description=__doc__.split("\n")[0],
    formatter_class=argparse.ArgumentDefaultsHelpFormatter,
  )
  parser.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated registry names")
  parser.add_argument("--batch", type=int, default=4, help="clips per step")
  parser.add_argument("--frames", type=int, default=16, help="frames per clip")
  parser.add_argument("--size", type=int, default=112, help="height and width")
  parser.add_argument("--reps", type=int, default=5, help="timed repetitions")
  parser.add_argument("--num-classes", type=int, default=400, help="classifier outputs")
  parser.add_argument(
    "--lowering",
    default="auto",
    help="convolution lowering(s), comma-separated: auto, native, im2col, ...",
  )
  parser.add_argument(
    "--matmul-size",
    type=int,
    default=2048,
    help="size of the matmul that measures the peak GFLOP/s",
  )
  parser.add_argument(
    "--out-dir", default="benchmarks/results", help="folder for bench.json, bench.md and bench.png"
  )
  parser.add_argument("--vs", choices=["torch"], help="compare with torchvision (vs_torch.py)")
  args = parser.parse_args(argv)
  import jax

  peak = matmul_peak(args.matmul_size)
  print(
    f"{jax.default_backend()}: float32 matmul {args.matmul_size}^3 {peak:.0f} GFLOP/s", flush=True
  )
  results = []
  for name in args.models.split(","):
    for lowering in args.lowering.split(","):
      r = bench_model(
        name, args.batch, args.frames, args.size, args.reps, lowering, peak, args.num_classes
      )
      results.append(r)
      print(
        f"{name:12s} {lowering:8s} forward {r['forward_clips_per_s']:7.2f} clips/s "
        f"({r['forward_gflops']:.0f} GFLOP/s)  train {r['train_clips_per_s']:7.2f} clips/s "
        f"({r['train_gflops']:.0f} GFLOP/s)  compile {r['compile_forward_s']:.1f}/"
        f"{r['compile_train_s']:.1f} s",
        flush=True,
      )
  table = markdown(results, peak)
  print("\n" + table)
  os.makedirs(args.out_dir, exist_ok=True)
  meta = {
    "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "backend": jax.default_backend(),
    "devices": [str(d) for d in jax.devices()],
    "cpu": harness.cpu_description(),
    "cores": os.cpu_count(),
    "jax": jax.__version__,
    "reps": args.reps,
    "matmul_peak_gflops": peak,
    "xla_flags": os.environ.get("XLA_FLAGS", ""),
  }
  with open(os.path.join(args.out_dir, "bench.json"), "w") as f:
    json.dump({"meta": meta, "results": results}, f, indent=1)
  with open(os.path.join(args.out_dir, "bench.md"), "w") as f:
    f.write(table + "\n")
  plot(results, os.path.join(args.out_dir, "bench.png"))
  print(f"wrote bench.json, bench.md and bench.png in {os.path.abspath(args.out_dir)}")
  return 0


if __name__ == "__main__":
  host_memory.restart_retaining()
  sys.exit(main())
