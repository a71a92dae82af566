"""`jaxres convert WEIGHTS OUT --arch ARCH [--from torchvision|pytorchvideo]`: a PyTorch state dict
-> jaxres variables.

Only a state dict is read (`torch.load(..., weights_only=True)`): a whole pickled model would run
arbitrary code when loaded, so it is refused with a line saying to save `model.state_dict()`.
PyTorchVideo's model-zoo `.pyth` checkpoints hold theirs under `model_state`, which is read.
"""

from __future__ import annotations

import argparse
import sys

from jaxres.convert import (ARCHS, ConversionError, UnreadableWeightsError, from_pytorchvideo,
                            from_torchvision, load_torch_state_dict, pytorchvideo_archs,
                            save_variables)

_SOURCES = {"torchvision": (from_torchvision, ARCHS),
            "pytorchvideo": (from_pytorchvideo, pytorchvideo_archs())}


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(
      prog="jaxres convert",
      description="Convert a torchvision or PyTorchVideo state_dict (.pth, .pyth) to jaxres "
                  "variables: a .msgpack file if OUT ends with .msgpack, otherwise an orbax "
                  "checkpoint folder.")
  parser.add_argument("weights", help="a .pth file holding a state_dict, as written by "
                                      "torch.save(model.state_dict(), PATH), or a checkpoint "
                                      "holding one under 'model_state' (PyTorchVideo's .pyth); a "
                                      "whole pickled model is refused")
  parser.add_argument("out", help="OUT.msgpack or an orbax checkpoint folder")
  parser.add_argument("--arch", required=True, choices=sorted(set(ARCHS) | set(pytorchvideo_archs())),
                      help="jaxres architecture name")
  parser.add_argument("--from", dest="source", default="torchvision", choices=sorted(_SOURCES),
                      help="the library whose layout the weights have (default: torchvision)")
  args = parser.parse_args(argv)
  convert, archs = _SOURCES[args.source]
  if args.arch not in archs:
    print(f"jaxres convert: --from {args.source} converts {', '.join(archs)}; not {args.arch!r}.",
          file=sys.stderr)
    return 1
  try:
    state_dict = load_torch_state_dict(args.weights)
  except ImportError as error:
    print(f"jaxres convert: {error}", file=sys.stderr)
    return 1
  except (FileNotFoundError, UnreadableWeightsError) as error:
    print(f"jaxres convert: {error}", file=sys.stderr)
    return 1
  try:
    variables = convert(state_dict, args.arch)
    path = save_variables(variables, args.out)
  except (ConversionError, FileNotFoundError) as error:
    print(f"jaxres convert: {args.weights}: {error}", file=sys.stderr)
    return 1
  print(f"wrote {args.arch} variables to {path}")
  return 0
