"""Single convolutions of the video ResNets under each lowering, with torch alongside.

For every kind of convolution in r3d_18, mc3_18 and r2plus1d_18 (batch 4, 16x112x112 clips) it times
the forward and the forward+backward (gradients of input and kernel) of each `jaxres.models.conv`
lowering that applies, and torch's conv3d (channels-last-3d, 2 threads), alternated in one run.
Prints one row per (conv, lowering) with milliseconds, GFLOP/s and the speed relative to torch.

  python -m benchmarks.convs [--only r3d_layer1,stem_r3d] [--reps 3] [--batch 4]
      [--lowerings auto,native,im2col,winograd,winograd4,pointwise]
"""

from __future__ import annotations

import argparse
import functools
import time

import jax
import numpy as np

from jaxres import host_memory
from jaxres.models import conv as convs

# name -> (input [T,H,W,C], kernel (t,h,w), out channels, strides, padding)
CONVS = {
  "stem_r3d": ((16, 112, 112, 3), (3, 7, 7), 64, (1, 2, 2), ((1, 1), (3, 3), (3, 3))),
  "stem_r21d_spatial": ((16, 112, 112, 3), (1, 7, 7), 45, (1, 2, 2), ((0, 0), (3, 3), (3, 3))),
  "stem_r21d_temporal": ((16, 56, 56, 45), (3, 1, 1), 64, (1, 1, 1), ((1, 1), (0, 0), (0, 0))),
  "r3d_layer1": ((16, 56, 56, 64), (3, 3, 3), 64, (1, 1, 1), ((1, 1),) * 3),
  "r3d_layer2_down": ((16, 56, 56, 64), (3, 3, 3), 128, (2, 2, 2), ((1, 1),) * 3),
  "r3d_layer2": ((8, 28, 28, 128), (3, 3, 3), 128, (1, 1, 1), ((1, 1),) * 3),
  "r3d_layer3": ((4, 14, 14, 256), (3, 3, 3), 256, (1, 1, 1), ((1, 1),) * 3),
  "r3d_layer4": ((2, 7, 7, 512), (3, 3, 3), 512, (1, 1, 1), ((1, 1),) * 3),
  "shortcut_s2": ((16, 56, 56, 64), (1, 1, 1), 128, (2, 2, 2), ((0, 0),) * 3),
  "mc3_layer2_down": ((16, 56, 56, 64), (1, 3, 3), 128, (1, 2, 2), ((0, 0), (1, 1), (1, 1))),
  "mc3_layer2": ((16, 28, 28, 128), (1, 3, 3), 128, (1, 1, 1), ((0, 0), (1, 1), (1, 1))),
  "mc3_layer4": ((16, 7, 7, 512), (1, 3, 3), 512, (1, 1, 1), ((0, 0), (1, 1), (1, 1))),
  "r21d_layer1_spatial": ((16, 56, 56, 64), (1, 3, 3), 144, (1, 1, 1), ((0, 0), (1, 1), (1, 1))),
  "r21d_layer1_temporal": ((16, 56, 56, 144), (3, 1, 1), 64, (1, 1, 1), ((1, 1), (0, 0), (0, 0))),
  "r21d_layer2_temporal_down": (
    (16, 28, 28, 230),
    (3, 1, 1),
    128,
    (2, 1, 1),
    ((1, 1), (0, 0), (0, 0)),
  ),
  "r21d_layer3_spatial": ((4, 14, 14, 256), (1, 3, 3), 576, (1, 1, 1), ((0, 0), (1, 1), (1, 1))),
  # The rest of r2plus1d_18's kinds: with the ones above, every convolution it runs.
  "r21d_layer2_spatial_down": (
    (16, 56, 56, 64),
    (1, 3, 3),
    230,
    (1, 2, 2),
    ((0, 0), (1, 1), (1, 1)),
  ),
  "r21d_layer2_spatial": ((8, 28, 28, 128), (1, 3, 3), 288, (1, 1, 1), ((0, 0), (1, 1), (1, 1))),
  "r21d_layer2_temporal": ((8, 28, 28, 288), (3, 1, 1), 128, (1, 1, 1), ((1, 1), (0, 0), (0, 0))),
  "r21d_layer3_spatial_down": (
    (8, 28, 28, 128),
    (1, 3, 3),
    460,
    (1, 2, 2),
    ((0, 0), (1, 1), (1, 1)),
  ),
  "r21d_layer3_temporal_down": (
    (8, 14, 14, 460),
    (3, 1, 1),
    256,
    (2, 1, 1),
    ((1, 1), (0, 0), (0, 0)),
  ),
  "r21d_layer3_temporal": ((4, 14, 14, 576), (3, 1, 1), 256, (1, 1, 1), ((1, 1), (0, 0), (0, 0))),
  "r21d_layer4_spatial_down": (
    (4, 14, 14, 256),
    (1, 3, 3),
    921,
    (1, 2, 2),
    ((0, 0), (1, 1), (1, 1)),
  ),
  "r21d_layer4_temporal_down": (
    (4, 7, 7, 921),
    (3, 1, 1),
    512,
    (2, 1, 1),
    ((1, 1), (0, 0), (0, 0)),
  ),
  "r21d_layer4_spatial": ((2, 7, 7, 512), (1, 3, 3), 1152, (1, 1, 1), ((0, 0), (1, 1), (1, 1))),
  "r21d_layer4_temporal": ((2, 7, 7, 1152), (3, 1, 1), 512, (1, 1, 1), ((1, 1), (0, 0), (0, 0))),
}


def _median_time(fn, reps):
  times = []
  for _ in range(reps):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--only", default="", help="comma-separated conv names (default: all)")
  parser.add_argument(
    "--lowerings",
    default="native,im2col,winograd,winograd4,pointwise",
    help="comma-separated; also 'auto', what the models use",
  )
  parser.add_argument("--batch", type=int, default=4)
  parser.add_argument("--reps", type=int, default=3)
  parser.add_argument("--no-torch", action="store_true")
  args = parser.parse_args(argv)
  try:
    import torch

    torch.set_num_threads(2)
  except ImportError:
    torch = None
  torch = None if args.no_torch else torch
  names = args.only.split(",") if args.only else list(CONVS)
  for name in names:
    shape, kernel_size, out, strides, padding = CONVS[name]
    x = jax.random.normal(jax.random.key(0), (args.batch, *shape))
    w = jax.random.normal(jax.random.key(1), (*kernel_size, shape[-1], out)) * 0.05
    out_shape = convs._output_shape(x.shape, kernel_size, strides, padding)
    flops = 2 * args.batch * np.prod(out_shape) * out * shape[-1] * np.prod(kernel_size)
    dy = jax.random.normal(jax.random.key(2), (args.batch, *out_shape, out))
    runs = {}
    for lowering in args.lowerings.split(","):
      # "winograd" is F(2, 3) on every axis; "winograd4" F(4, 3); "winograd244" one tile per axis.
      base = "winograd" if lowering.startswith("winograd") else lowering
      digits = lowering[len("winograd") :] if base == "winograd" else ""
      tile = tuple(int(d) for d in digits) if len(digits) > 1 else int(digits or 2)
      axes = convs.winograd_axes(kernel_size, strides, padding)
      if base == "winograd" and (
        axes is None or (isinstance(tile, tuple) and len(tile) != len(axes))
      ):
        continue
      if base == "pointwise" and any(k != 1 for k in kernel_size):
        continue
      if base == "auto":
        fn = functools.partial(convs.conv, lowering="auto")
      elif base == "winograd":
        fn = functools.partial(convs.winograd_conv, tile=tile)
      else:
        fn = convs._LOWERED[base]
      f = functools.partial(fn, strides=strides, padding=padding)
      fwd = jax.jit(f)
      # Returns the output too, so the forward is not dead code (as in a train step).
      bwd = jax.jit(lambda x, w, dy, f=f: (lambda y, vjp: (y, vjp(dy)))(*jax.vjp(f, x, w)))
      jax.block_until_ready((fwd(x, w), bwd(x, w, dy)))
      runs[lowering] = (lambda fwd=fwd: fwd(x, w), lambda bwd=bwd: bwd(x, w, dy))
    if torch is not None:
      tx = torch.randn(args.batch, shape[-1], *shape[:-1]).contiguous(
        memory_format=torch.channels_last_3d
      )
      tw = (torch.randn(out, shape[-1], *kernel_size) * 0.05).contiguous(
        memory_format=torch.channels_last_3d
      )
      tpad = tuple(p[0] for p in padding)
      txr, twr = tx.clone().requires_grad_(), tw.clone().requires_grad_()

      def torch_fwd():
        with torch.no_grad():
          return torch.nn.functional.conv3d(tx, tw, stride=strides, padding=tpad)

      def torch_bwd():
        y = torch.nn.functional.conv3d(txr, twr, stride=strides, padding=tpad)
        y.backward(torch.ones_like(y))

      torch_fwd(), torch_bwd()
      runs["torch"] = (torch_fwd, torch_bwd)
    times = {k: ([], []) for k in runs}
    for _ in range(args.reps):  # alternate every candidate within each repetition
      for k, (f, b) in runs.items():
        times[k][0].append(_median_time(f, 1))
        times[k][1].append(_median_time(b, 1))
    med = {k: (np.median(a), np.median(b)) for k, (a, b) in times.items()}
    ref = med.get("torch")
    print(
      f"{name}: x {tuple(x.shape)} k {kernel_size} -> {out} s {strides}  "
      f"{flops / 1e9:.1f} GFLOP fwd",
      flush=True,
    )
    for k, (f, b) in med.items():
      vs = f"  vs torch fwd {ref[0] / f:4.2f}x fwd+bwd {ref[1] / b:4.2f}x" if ref else ""
      print(
        f"  {k:10s} fwd {f * 1e3:7.1f} ms {flops / f / 1e9:5.0f} GF/s   fwd+bwd {b * 1e3:7.1f} ms "
        f"{3 * flops / b / 1e9:5.0f} GF/s{vs}",
        flush=True,
      )


if __name__ == "__main__":
  host_memory.restart_retaining()
  main()
