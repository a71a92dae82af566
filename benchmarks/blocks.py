"""Where a video ResNet's train step gains or loses against torch: its stem and blocks one by one.

Builds the stem and every distinct residual block of r3d_18 / mc3_18 / r2plus1d_18 (each stage's
first block, which changes width or stride, and one of the blocks after it) at the shapes they see
in the model, in jaxres (the model's own convolution lowering) and in torchvision (eager,
channels-last-3d), and times each one's forward and backward in train mode (BatchNorm with batch
statistics; gradients of the parameters and, except for the stem, of the input), alternated in one
run. Prints milliseconds and the torch/jaxres time ratio per piece (> 1: jaxres is faster), and the
totals with each piece counted as often as the model runs it.

  python -m benchmarks.blocks [--model r2plus1d_18] [--batch 4] [--frames 16] [--size 112]
      [--reps 5] [--only stem,layer1_1] [--threads 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import harness
from jaxres import host_memory, models
from jaxres.models import video


@dataclasses.dataclass
class Piece:
  """One stem or block: its name, how many times the model runs it, and its input shape."""

  name: str
  count: int
  in_shape: tuple[int, ...]
  module: Any  # the jaxres module
  torch_path: str  # attribute path in the torchvision model, e.g. "layer2.0"


def pieces(name: str, shape: tuple[int, ...]) -> list[Piece]:
  """The stem and distinct blocks of torchvision video model `name` at input `shape` [B,T,H,W,C].

  Example:
    >>> [p.name for p in pieces("r2plus1d_18", (4, 16, 112, 112, 3))][:3]
    ['stem', 'layer1_0', 'layer2_0']
  """
  model = models.get(name)
  parts = video.layer_factories(model, train=True)
  stem = model.stem_cls(conv=parts.conv, norm=parts.norm)
  out = [Piece("stem", 1, tuple(shape), stem, "stem")]
  x_shape = jax.eval_shape(
    lambda x: stem.init_with_output(jax.random.key(0), x)[0],
    jax.ShapeDtypeStruct(shape, jnp.float32),
  ).shape
  for stage, num_blocks in enumerate(model.stage_sizes):
    for index in range(min(num_blocks, 2)):
      block = video.residual_block(model, parts, stage, index, x_shape[-1])
      count = 1 if index == 0 else num_blocks - 1
      out.append(
        Piece(
          f"layer{stage + 1}_{index}", count, tuple(x_shape), block, f"layer{stage + 1}.{index}"
        )
      )
      x_shape = jax.eval_shape(
        lambda x, b=block: b.init_with_output(jax.random.key(0), x)[0],
        jax.ShapeDtypeStruct(x_shape, jnp.float32),
      ).shape
  return out


def jax_step(piece: Piece) -> Callable[[], Any]:
  """The piece's compiled train-mode forward and backward (input gradient except for the stem)."""
  x = jax.random.normal(jax.random.key(0), piece.in_shape)
  variables = piece.module.init(jax.random.key(1), x)
  y_shape = jax.eval_shape(
    lambda v, x: piece.module.apply(v, x, mutable=["batch_stats"])[0], variables, x
  ).shape
  dy = jax.random.normal(jax.random.key(2), y_shape)

  def loss(params, x):
    y, updates = piece.module.apply(
      {"params": params, "batch_stats": variables["batch_stats"]}, x, mutable=["batch_stats"]
    )
    return jnp.vdot(y, dy), updates

  argnums = 0 if piece.name == "stem" else (0, 1)
  step = jax.jit(jax.grad(loss, argnums=argnums, has_aux=True))
  jax.block_until_ready(step(variables["params"], x))
  return lambda: step(variables["params"], x)


def torch_step(torch, model, piece: Piece) -> Callable[[], Any]:
  """The torchvision piece's eager train-mode forward and backward, channels-last-3d."""
  module = functools.reduce(
    lambda m, a: m[int(a)] if a.isdigit() else getattr(m, a), piece.torch_path.split("."), model
  )
  module.train()
  b, *spatial, c = piece.in_shape
  fmt = torch.channels_last_3d
  x = torch.randn(b, c, *spatial).contiguous(memory_format=fmt)
  x.requires_grad_(piece.name != "stem")
  with torch.no_grad():
    y = module(x)
  dy = torch.randn_like(y).contiguous(memory_format=fmt)

  def run():
    module.zero_grad(set_to_none=True)
    x.grad = None
    module(x).backward(dy)

  run()
  return run


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="blocks", description=__doc__.split("\n")[0])
  p.add_argument("--model", default="r2plus1d_18", choices=harness.TORCHVISION_VIDEO)
  p.add_argument("--batch", type=int, default=4)
  p.add_argument("--frames", type=int, default=16)
  p.add_argument("--size", type=int, default=112)
  p.add_argument("--reps", type=int, default=5)
  p.add_argument("--only", default="", help="comma-separated piece names (default: all)")
  p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch intra-op threads")
  args = p.parse_args(argv)
  found = harness.import_torch()
  if found is None:
    print("torch is not installed: skipped (pip install -e '.[torch]')")
    return 0
  torch, torchvision = found
  torch.set_num_threads(args.threads)
  tmodel = getattr(torchvision.models.video, args.model)().to(memory_format=torch.channels_last_3d)
  shape = (args.batch, args.frames, args.size, args.size, 3)
  chosen = [q for q in pieces(args.model, shape) if not args.only or q.name in args.only.split(",")]
  print(
    f"{args.model} train-mode forward+backward per piece, batch {args.batch}, "
    f"{args.frames}x{args.size}x{args.size}, medians of {args.reps}"
  )
  totals = {"jaxres": 0.0, "torch": 0.0}
  for piece in chosen:
    runs = {"jaxres": jax_step(piece), "torch": torch_step(torch, tmodel, piece)}
    times = {k: [] for k in runs}
    for _ in range(args.reps):  # alternated, so both see the same machine
      for k, fn in runs.items():
        times[k].append(harness.median_time(fn))
    med = {k: float(np.median(v)) for k, v in times.items()}
    for k in totals:
      totals[k] += piece.count * med[k]
    print(
      f"  {piece.name:9s} x{piece.count}  in {'x'.join(map(str, piece.in_shape)):18s} "
      f"jaxres {1e3 * med['jaxres']:7.1f} ms  torch {1e3 * med['torch']:7.1f} ms  "
      f"torch/jaxres {med['torch'] / med['jaxres']:4.2f}",
      flush=True,
    )
  print(
    f"  total (each piece times its count): jaxres {1e3 * totals['jaxres']:.0f} ms, "
    f"torch {1e3 * totals['torch']:.0f} ms, torch/jaxres {totals['torch'] / totals['jaxres']:.2f}"
  )
  return 0


if __name__ == "__main__":
  host_memory.restart_retaining()
  sys.exit(main())
