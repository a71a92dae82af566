"""Depthwise 3x3x3 convolutions (CSN's conv_b) on CPU: XLA's grouped convolution against the
`depthwise` lowering (a per-channel multiply-add of strided views, one per tap), with torch's
grouped conv3d alongside; forward and forward+backward, alternated in one run.

This is the measurement behind `jaxres.models.conv.choose_grouped_lowering`. Shapes are those of
csn_r101's stages at its default 32x224x224 clip (batch 1 by default).

  python -m benchmarks.grouped_convs [--only layer1,layer2_down] [--reps 3] [--batch 1]
"""

from __future__ import annotations

import argparse
import functools
import time

import jax
import numpy as np

from jaxres import host_memory
from jaxres.models import conv as convs

P1 = ((1, 1),) * 3
# name -> (input [T, H, W, C], strides): csn_r101's depthwise 3x3x3 convs at 32x224x224.
CONVS = {
  "layer1": ((32, 56, 56, 64), (1, 1, 1)),
  "layer2_down": ((32, 56, 56, 128), (2, 2, 2)),
  "layer2": ((16, 28, 28, 128), (1, 1, 1)),
  "layer3_down": ((16, 28, 28, 256), (2, 2, 2)),
  "layer3": ((8, 14, 14, 256), (1, 1, 1)),
  "layer4_down": ((8, 14, 14, 512), (2, 2, 2)),
  "layer4": ((4, 7, 7, 512), (1, 1, 1)),
}


def _time(fn):
  start = time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - start


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--only", default="", help="comma-separated conv names (default: all)")
  parser.add_argument("--batch", type=int, default=1)
  parser.add_argument("--reps", type=int, default=3)
  parser.add_argument("--no-torch", action="store_true")
  args = parser.parse_args(argv)
  torch = None
  if not args.no_torch:
    try:
      import torch

      torch.set_num_threads(2)
    except ImportError:
      torch = None
  rows = []
  for name in args.only.split(",") if args.only else list(CONVS):
    shape, strides = CONVS[name]
    c = shape[-1]
    x = jax.random.normal(jax.random.key(0), (args.batch, *shape))
    w = jax.random.normal(jax.random.key(1), (3, 3, 3, 1, c)) * 0.2
    out_shape = convs._output_shape(x.shape, (3, 3, 3), strides, P1)
    dy = jax.random.normal(jax.random.key(2), (args.batch, *out_shape, c))
    runs = {}
    for lowering in ("native", "depthwise"):
      f = functools.partial(
        convs.conv, strides=strides, padding=P1, lowering=lowering, feature_group_count=c
      )
      fwd = jax.jit(f)
      bwd = jax.jit(lambda x, w, dy, f=f: (lambda y, vjp: (y, vjp(dy)))(*jax.vjp(f, x, w)))
      jax.block_until_ready((fwd(x, w), bwd(x, w, dy)))
      runs[lowering] = (lambda fwd=fwd: fwd(x, w), lambda bwd=bwd: bwd(x, w, dy))
    if torch is not None:
      tx = torch.randn(args.batch, c, *shape[:-1])
      tw = torch.randn(c, 1, 3, 3, 3) * 0.2
      txr, twr = tx.clone().requires_grad_(), tw.clone().requires_grad_()

      def torch_fwd():
        with torch.no_grad():
          return torch.nn.functional.conv3d(tx, tw, stride=strides, padding=1, groups=c)

      def torch_bwd():
        y = torch.nn.functional.conv3d(txr, twr, stride=strides, padding=1, groups=c)
        y.backward(torch.ones_like(y))

      torch_fwd(), torch_bwd()
      runs["torch"] = (torch_fwd, torch_bwd)
    times = {k: ([], []) for k in runs}
    for _ in range(args.reps):  # alternate the candidates within each repetition
      for k, (f, b) in runs.items():
        times[k][0].append(_time(f))
        times[k][1].append(_time(b))
    med = {k: (float(np.median(a)), float(np.median(b))) for k, (a, b) in times.items()}
    print(f"{name}: x {tuple(x.shape)} depthwise 3x3x3 s {strides}", flush=True)
    for k, (f, b) in med.items():
      print(f"  {k:10s} fwd {f * 1e3:8.2f} ms   fwd+bwd {b * 1e3:8.2f} ms", flush=True)
    rows.append((name, med))
  return rows


if __name__ == "__main__":
  host_memory.restart_retaining()
  main()
