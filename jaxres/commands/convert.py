"""`jaxres convert WEIGHTS.pth OUT --arch ARCH`: torchvision state_dict -> jaxres variables.

Only a state_dict is read (`torch.load(..., weights_only=True)`): a whole pickled model would run
arbitrary code when loaded, so it is refused with a line saying to save `model.state_dict()`.
"""

from __future__ import annotations

import argparse
import pickle
import sys

from jaxres.commands.help import HelpFormatter
from jaxres.convert import ARCHS, ConversionError, from_torchvision, save_variables


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(
      prog="jaxres convert", formatter_class=HelpFormatter,
      description="Convert a torchvision ResNet state_dict (.pth) to jaxres variables: a .msgpack "
                  "file if OUT ends with .msgpack, otherwise an orbax checkpoint folder.")
  parser.add_argument("weights", help="a .pth file holding a state_dict, as written by "
                                      "torch.save(model.state_dict(), PATH) (a whole pickled model "
                                      "is refused)")
  parser.add_argument("out", help="OUT.msgpack or an orbax checkpoint folder")
  parser.add_argument("--arch", required=True, choices=ARCHS, help="jaxres architecture name")
  args = parser.parse_args(argv)
  try:
    import torch
  except ImportError:
    print("jaxres convert needs PyTorch to read .pth files: pip install 'jaxres[torch]'.",
          file=sys.stderr)
    return 1
  try:
    state_dict = torch.load(args.weights, map_location="cpu", weights_only=True)
  except FileNotFoundError:
    print(f"jaxres convert: no such file {args.weights!r}.", file=sys.stderr)
    return 1
  except pickle.UnpicklingError:  # what weights_only=True raises for pickled objects
    print(f"jaxres convert: {args.weights!r} holds pickled Python objects (a whole model?), which "
          "are not loaded; save torch.save(model.state_dict(), PATH) and convert that.",
          file=sys.stderr)
    return 1
  except Exception as error:  # torch raises many kinds for non-.pth input
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
    print(f"jaxres convert: cannot read {args.weights!r} as a PyTorch file: {reason}",
          file=sys.stderr)
    return 1
  try:
    variables = from_torchvision(state_dict, args.arch)
    path = save_variables(variables, args.out)
  except (ConversionError, FileNotFoundError) as error:
    print(f"jaxres convert: {args.weights}: {error}", file=sys.stderr)
    return 1
  print(f"wrote {args.arch} variables to {path}")
  return 0
