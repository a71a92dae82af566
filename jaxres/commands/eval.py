"""`jaxres eval`: evaluate a run's checkpoint (latest, or --step) on its config's eval data.

jaxres eval --config NAME|FILE.py --workdir DIR [--step N] [--config.key=value ...]
"""

from __future__ import annotations

import argparse
import json

from jaxres.commands.common import add_common_arguments, report, setup
from jaxres.commands.help import HelpFormatter
from jaxres.train.config import split_overrides


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(
    prog="jaxres eval", description=__doc__, formatter_class=HelpFormatter
  )
  add_common_arguments(parser)
  parser.add_argument("--step", type=int, default=None, help="checkpoint step (None: the latest)")
  args, overrides = split_overrides(argv)
  args = parser.parse_args(args)
  try:
    config, workdir = setup(args, overrides)
  except (KeyError, ValueError, FileNotFoundError) as e:
    return report("jaxres eval", e, args.verbose, 2)

  import jax

  from jaxres.train.loop import evaluate_checkpoint

  try:
    metrics = evaluate_checkpoint(config, workdir, step=args.step)
  except Exception as e:  # pylint: disable=broad-except  # no such step, a damaged checkpoint...
    return report("jaxres eval", e, args.verbose, 1)
  if jax.process_index() == 0:
    print(json.dumps(metrics, indent=2))
  return 0
