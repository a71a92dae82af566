"""`jaxres convert WEIGHTS.pth OUT --arch ARCH [--from basicsr]`: PyTorch weights -> jaxres variables.

`--from torchvision` (the default) reads a torchvision ResNet state_dict; `--from basicsr` a BasicSR
checkpoint (`{"params": ...}`) or an mmagic one (`{"state_dict": {"generator.…": ...}}`) of the SR
networks exact to BasicSR (`edsr_baseline`, `edsr`, `basicvsr`, ...).

Only a state_dict is read (`torch.load(..., weights_only=True)`): a whole pickled model would run
arbitrary code when loaded, so it is refused with a line saying to save `model.state_dict()`.
"""

from __future__ import annotations

import argparse
import pickle
import sys

from jaxres.convert import ARCHS, ConversionError, from_torchvision, save_variables
from jaxres.convert import basicsr


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(
      prog="jaxres convert",
      description="Convert a torchvision ResNet state_dict or a BasicSR/mmagic checkpoint (.pth) "
                  "to jaxres variables: a .msgpack file if OUT ends with .msgpack, otherwise an "
                  "orbax checkpoint folder.")
  parser.add_argument("weights", help="a .pth file holding a state_dict, as written by "
                                      "torch.save(model.state_dict(), PATH) (a whole pickled model "
                                      "is refused)")
  parser.add_argument("out", help="OUT.msgpack or an orbax checkpoint folder")
  parser.add_argument("--arch", required=True, choices=sorted(set(ARCHS) | set(basicsr.ARCHS)),
                      help="jaxres architecture name")
  parser.add_argument("--from", dest="source", default="torchvision",
                      choices=("torchvision", "basicsr"),
                      help="the library the weights come from (default torchvision)")
  args = parser.parse_args(argv)
  archs = basicsr.ARCHS if args.source == "basicsr" else ARCHS
  if args.arch not in archs:
    parser.error(f"--arch {args.arch} is not convertible --from {args.source}; choose one of: "
                 f"{', '.join(archs)}")
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
    if args.source == "basicsr":
      if not isinstance(state_dict, dict):
        raise ConversionError("expected a dict of tensors (a BasicSR or mmagic checkpoint).")
      variables = basicsr.from_basicsr(state_dict, args.arch)
      fields = basicsr.model_fields(state_dict, args.arch)
    else:
      variables, fields = from_torchvision(state_dict, args.arch), {}
    path = save_variables(variables, args.out)
  except (ConversionError, FileNotFoundError) as error:
    print(f"jaxres convert: {args.weights}: {error}", file=sys.stderr)
    return 1
  built = "".join(f" --config.model.{k}={v}" for k, v in fields.items())
  print(f"wrote {args.arch} variables to {path}" + (f" (model fields:{built})" if built else ""))
  return 0
