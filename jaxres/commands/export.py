"""`jaxres export --checkpoint RUN --out DIR`: a trained model's inference function, out of JAX.

Writes DIR/model.jax_exported (`jax.export`, StableHLO with the weights inside: load it with
`jax.export.deserialize`, no jaxres or flax needed), DIR/model.json (input shape and dtype, the
normalisation the input needs, class names) and, with --saved-model, DIR/saved_model (a TensorFlow
SavedModel through jax2tf, for TF Serving). See `jaxres.export`.

Example:
  $ jaxres export --checkpoint runs/demo --out exported/demo --polymorphic-batch --saved-model
  $ python -c "import jax; f = jax.export.deserialize(open('exported/demo/model.jax_exported', 'rb').read())"
"""

from __future__ import annotations

import argparse
import os
import sys

from jaxres.commands.help import HelpFormatter


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(prog="jaxres export", description=__doc__,
                                   formatter_class=HelpFormatter)
  parser.add_argument("--checkpoint", required=True, metavar="RUN", help="the `jaxres train` workdir")
  parser.add_argument("--out", required=True, metavar="DIR", help="the export folder (created)")
  parser.add_argument("--step", type=int, default=None, help="checkpoint step (None: the latest)")
  batch = parser.add_mutually_exclusive_group()
  batch.add_argument("--batch", type=int, default=1, help="the batch size the function takes")
  batch.add_argument("--polymorphic-batch", action="store_true",
                     help="a symbolic batch: any batch size at call time")
  parser.add_argument("--dtype", default=None, choices=("float32", "bfloat16", "float16"),
                      help="compute dtype (None: the run's); inputs and outputs stay float32")
  parser.add_argument("--platforms", default="cpu,cuda,tpu",
                      help="comma-separated platforms the artefact is lowered for")
  parser.add_argument("--saved-model", action="store_true",
                      help="also write a TensorFlow SavedModel (jax2tf) for TF Serving")
  parser.add_argument("--labels", default=None, metavar="FILE",
                      help="class names, one per line, for model.json (None: the run's classes.txt)")
  parser.add_argument("--verbose", action="store_true",
                      help="show TensorFlow's start-up lines and tracebacks")
  args = parser.parse_args(argv)

  from jaxres import export  # pylint: disable=import-outside-toplevel
  try:
    names = None
    if args.labels:
      from jaxres.predict import read_labels  # pylint: disable=import-outside-toplevel
      names = read_labels(args.labels)
    paths = export.export_run(
        args.checkpoint, args.out, batch=None if args.polymorphic_batch else args.batch,
        dtype=args.dtype, step=args.step, saved_model=args.saved_model, class_names=names,
        platforms=[p.strip() for p in args.platforms.split(",") if p.strip()])
  except (FileNotFoundError, ValueError, KeyError) as error:
    if args.verbose:
      raise
    print(f"jaxres export: {error}", file=sys.stderr)
    return 1
  batch = "any" if args.polymorphic_batch else args.batch
  print(f"exported {args.checkpoint} (batch {batch}, platforms {args.platforms}); wrote:")
  for path in paths.values():
    print(f"  {os.path.abspath(path)}")
  return 0
