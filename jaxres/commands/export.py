"""`jaxres export --checkpoint RUN | --weights NAME --out DIR`: a model's inference function,
out of JAX: a training run's, or published weights by name (`jaxres weights list`).

Writes DIR/model.jax_exported (`jax.export`, StableHLO with the weights inside: load it with
`jax.export.deserialize`, no jaxres or flax needed), DIR/model.json (input shape and dtype, the
normalisation the input needs, class names) and, with --saved-model, DIR/saved_model (a TensorFlow
SavedModel through jax2tf, for TF Serving). See `jaxres.export`.

DIR is written whole: an earlier export there is replaced entirely (built beside it and swapped
in, so an interrupted export leaves the old one); a folder holding anything else is refused
unless --overwrite. The options and DIR are checked before any work.

Example:
  $ jaxres export --checkpoint runs/demo --out exported/demo --polymorphic-batch --saved-model
  $ jaxres export --weights x3d_m.kinetics400 --out exported/x3d_m
  $ python -c "import jax; f = jax.export.deserialize(open('exported/demo/model.jax_exported', 'rb').read())"
"""

from __future__ import annotations

import argparse
import os
import sys

from jaxres.commands.common import report
from jaxres.commands.help import HelpFormatter


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(
    prog="jaxres export", description=__doc__, formatter_class=HelpFormatter
  )
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument("--checkpoint", metavar="RUN", help="the `jaxres train` workdir")
  source.add_argument(
    "--weights", metavar="NAME", help="published weights by name (`jaxres weights list`)"
  )
  parser.add_argument(
    "--out",
    required=True,
    metavar="DIR",
    help="the export folder (created; an earlier export there is replaced whole)",
  )
  parser.add_argument(
    "--overwrite",
    action="store_true",
    help="replace DIR whole even if it holds other things than an earlier export",
  )
  parser.add_argument("--step", type=int, default=None, help="checkpoint step (None: the latest)")
  batch = parser.add_mutually_exclusive_group()
  batch.add_argument("--batch", type=int, default=1, help="the batch size the function takes")
  batch.add_argument(
    "--polymorphic-batch", action="store_true", help="a symbolic batch: any batch size at call time"
  )
  parser.add_argument(
    "--dtype",
    default=None,
    choices=("float32", "bfloat16", "float16"),
    help="compute dtype (None: the run's); inputs and outputs stay float32",
  )
  parser.add_argument(
    "--platforms",
    default="cpu,cuda,tpu",
    help="comma-separated platforms the artefact is lowered for (of cpu, cuda, rocm, tpu)",
  )
  parser.add_argument(
    "--saved-model",
    action="store_true",
    help="also write a TensorFlow SavedModel (jax2tf) for TF Serving",
  )
  parser.add_argument(
    "--labels",
    default=None,
    metavar="FILE",
    help="class names, one per line, for model.json (None: the run's classes.txt)",
  )
  parser.add_argument(
    "--verbose", action="store_true", help="show TensorFlow's start-up lines and tracebacks"
  )
  args = parser.parse_args(argv)

  from jaxres import export  # pylint: disable=import-outside-toplevel
  from jaxres.weights import WeightsError  # pylint: disable=import-outside-toplevel

  if args.weights and args.step is not None:
    parser.error("--step belongs to --checkpoint, not --weights")
  if not args.polymorphic_batch and args.batch < 1:
    parser.error(f"--batch must be >= 1 (or --polymorphic-batch), got {args.batch}")
  platforms = [p.strip() for p in args.platforms.split(",") if p.strip()]
  unknown = [p for p in platforms if p not in export.KNOWN_PLATFORMS]
  if unknown or not platforms:
    parser.error(
      f"--platforms takes some of {', '.join(export.KNOWN_PLATFORMS)}, comma-separated; not "
      f"{', '.join(unknown) or repr(args.platforms)}"
    )
  batch = None if args.polymorphic_batch else args.batch
  try:
    export.check_export_options(
      args.out,
      batch=batch,
      platforms=platforms,
      inputs=[p for p in (args.checkpoint, args.labels) if p],
      overwrite=args.overwrite,
      option="--out",
    )
  except (ValueError, OSError) as error:
    return report("jaxres export", error, args.verbose, 2)
  try:
    names = None
    if args.labels:
      from jaxres.predict import read_labels  # pylint: disable=import-outside-toplevel

      names = read_labels(args.labels)
    common = dict(
      batch=batch,
      dtype=args.dtype,
      saved_model=args.saved_model,
      class_names=names,
      platforms=platforms,
      overwrite=args.overwrite,
    )
    if args.weights:
      paths = export.export_weights(args.weights, args.out, **common)
    else:
      paths = export.export_run(args.checkpoint, args.out, step=args.step, **common)
  except (OSError, ValueError, WeightsError) as error:
    if args.verbose:
      raise
    print(f"jaxres export: {error}", file=sys.stderr)
    return 1
  except KeyError as error:
    if args.verbose:
      raise
    print(f"jaxres export: {error.args[0]}", file=sys.stderr)
    return 1
  batch = "any" if args.polymorphic_batch else args.batch
  print(
    f"exported {args.weights or args.checkpoint} (batch {batch}, platforms {args.platforms}); wrote:"
  )
  for path in paths.values():
    print(f"  {os.path.abspath(path)}")
  return 0
