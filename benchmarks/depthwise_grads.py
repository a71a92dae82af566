"""The kernel gradient of a depthwise 3x3x3 convolution on CPU: one variadic reduction for all 27
taps (`jaxres.models.conv._tap_sums`, what the models use) against a reduction per tap (each tap's
products summed over rows of the last spatial axis times C, then into C), alternated in one run.

Shapes are the output gradients of x3d_m's and csn_r101's depthwise convs at 16x112x112 (the
`vs_torch.py` tables' clips) and of csn_r101's first at its 32x224x224 clip, batch 8.

  python -m benchmarks.depthwise_grads [--only x3d_m_layer2,csn_r101_layer1] [--reps 5]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxres import host_memory
from jaxres.models import conv as convs

# name -> the output gradient's shape [B, T, H, W, C] (stride 1, padding 1: the input's too).
SHAPES = {
  "x3d_m_layer2": (4, 16, 28, 28, 108),
  "x3d_m_layer3": (4, 16, 14, 14, 216),
  "csn_r101_layer1": (2, 16, 28, 28, 64),
  "csn_r101_layer2": (2, 8, 14, 14, 128),
  "csn_r101_layer1_32x224_b8": (8, 32, 56, 56, 64),
}


def per_tap_sums(views, dy):
  """[taps, C]: each tap's sum over positions of view * dy, one reduction per tap."""
  row = dy.shape[-2] * dy.shape[-1]
  return jnp.stack(
    [(view * dy).reshape(-1, row).sum(0).reshape(dy.shape[-2:]).sum(0) for view in views]
  )


def kernel_gradients(shape):
  """(one variadic reduction, a reduction per tap): jitted functions of (padded x, dy)."""

  def run(sums):
    def fn(xp, dy):
      views = [v for _, v in convs._tap_views(xp, (3, 3, 3), (1, 1, 1), shape[1:-1])]
      return sums(views, dy)

    return jax.jit(fn)

  return run(convs._tap_sums), run(per_tap_sums)


def _time(fn, *args):
  start = time.perf_counter()
  jax.block_until_ready(fn(*args))
  return time.perf_counter() - start


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--only", default="", help="comma-separated shape names (default: all)")
  parser.add_argument("--reps", type=int, default=5)
  parser.add_argument(
    "--shape", default="", help="one output gradient shape instead, e.g. 1,4,6,6,8"
  )
  args = parser.parse_args(argv)
  if args.shape:
    shapes = {args.shape: tuple(int(n) for n in args.shape.split(","))}
  else:
    shapes = {name: SHAPES[name] for name in (args.only.split(",") if args.only else SHAPES)}
  print("| dy shape | one variadic reduction ms | a reduction per tap ms | speed-up | rel. diff |")
  print("|---|---|---|---|---|")
  for name, shape in shapes.items():
    keys = jax.random.split(jax.random.key(0))
    b, t, h, w, c = shape
    xp = jax.random.normal(keys[0], (b, t + 2, h + 2, w + 2, c))
    dy = jax.random.normal(keys[1], shape)
    variadic, per_tap = kernel_gradients(shape)
    new, old = np.asarray(variadic(xp, dy)), np.asarray(per_tap(xp, dy))  # compile, warm up
    diff = float(np.abs(new - old).max() / np.abs(old).max())
    times = {"variadic": [], "per_tap": []}
    for _ in range(args.reps):
      times["variadic"].append(_time(variadic, xp, dy))
      times["per_tap"].append(_time(per_tap, xp, dy))
    ms = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
    print(
      f"| {name} {list(shape)} | {ms['variadic']:.1f} | {ms['per_tap']:.1f} | "
      f"{ms['per_tap'] / ms['variadic']:.2f}x | {diff:.1e} |",
      flush=True,
    )


if __name__ == "__main__":
  host_memory.restart_retaining()
  main()
