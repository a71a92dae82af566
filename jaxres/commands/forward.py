"""`jaxres forward`: one model, one generated clip (or image), jitted forward; prints prediction and time."""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxres import models
from jaxres.commands.common import check_option, report
from jaxres.commands.help import HelpFormatter


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(
    prog="jaxres forward", description=__doc__, formatter_class=HelpFormatter
  )
  parser.add_argument(
    "--model",
    default="r3d_18",
    choices=models.names(),
    metavar="NAME",
    help="registered model: " + ", ".join(models.names()),
  )
  parser.add_argument("--num-classes", type=int, default=400, help="classifier outputs")
  parser.add_argument("--batch", type=int, default=1, help="clips per forward pass")
  parser.add_argument("--frames", type=int, default=16, help="frames per clip (video models)")
  parser.add_argument("--size", type=int, default=112, help="height and width of the input")
  parser.add_argument(
    "--weights",
    default=None,
    help="variables written by `jaxres convert`, or a training run's folder (None: random)",
  )
  parser.add_argument("--verbose", action="store_true", help="show an error's traceback")
  args = parser.parse_args(argv)
  try:  # every option before any work
    for option, value in (
      ("--num-classes", args.num_classes),
      ("--batch", args.batch),
      ("--frames", args.frames),
      ("--size", args.size),
    ):
      check_option(option, value, value >= 1, ">= 1")
  except ValueError as e:
    return report("jaxres forward", e, args.verbose, 2)

  spec = models.spec(args.model)
  model = models.get(args.model, num_classes=args.num_classes)
  frames = (args.frames,) if spec.input_rank == 5 else ()
  shape = (args.batch, *frames, args.size, args.size, 3)
  x = jax.random.normal(jax.random.key(0), shape)
  if args.weights:
    from jaxres.convert import load_variables

    variables = load_variables(args.weights)
  else:
    variables = jax.jit(lambda x: model.init(jax.random.key(0), x, train=False))(x)
  forward = jax.jit(lambda v, x: model.apply(v, x, train=False))

  start = time.perf_counter()
  logits = forward(variables, x).block_until_ready()
  compiled = time.perf_counter() - start
  start = time.perf_counter()
  logits = forward(variables, x).block_until_ready()
  elapsed = time.perf_counter() - start
  probs = np.asarray(jax.nn.softmax(logits.astype(jnp.float32)))
  print(
    f"{args.model} on {shape} ({jax.default_backend()}): compile+run {compiled:.2f} s, "
    f"run {elapsed * 1e3:.1f} ms"
  )
  for b, p in enumerate(probs):
    print(f"  clip {b}: predicted class {int(p.argmax())} (p={p.max():.3f})")
  return 0
