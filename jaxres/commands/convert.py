"""`jaxres convert WEIGHTS OUT --arch ARCH [--from torchvision|pytorchvideo|basicsr]`: PyTorch
weights -> jaxres variables.

`--from torchvision` (the default) reads a torchvision ResNet state_dict, `--from pytorchvideo` a
PyTorchVideo one (or its model-zoo `.pyth`), `--from basicsr` a BasicSR checkpoint
(`{"params": ...}`) or an mmagic one (`{"state_dict": {"generator.…": ...}}`) of the SR networks
exact to BasicSR (`edsr_baseline`, `edsr`, `basicvsr`, ...).

The file is read without torch (`jaxres.convert.read_torch_checkpoint`), and only a state dict is
read, as `torch.load(..., weights_only=True)` would: a whole pickled model would run arbitrary code
when loaded, so it is refused with a line saying to save `model.state_dict()`. PyTorchVideo's
model-zoo `.pyth` checkpoints hold theirs under `model_state`, which is read.
"""

from __future__ import annotations

import argparse
import os
import sys

from jaxres.commands.help import HelpFormatter
from jaxres.convert import (
  ARCHS,
  ConversionError,
  UnreadableWeightsError,
  basicsr,
  from_pytorchvideo,
  from_torchvision,
  load_torch_state_dict,
  pytorchvideo_archs,
  save_variables,
)


def _from_basicsr(checkpoint, arch):
  if not isinstance(checkpoint, dict):
    raise ConversionError("expected a dict of tensors (a BasicSR or mmagic checkpoint).")
  return basicsr.from_basicsr(checkpoint, arch), basicsr.model_fields(checkpoint, arch)


# --from NAME -> (convert(weights, arch) -> (variables, model fields to rebuild with), its archs)
_SOURCES = {
  "torchvision": (lambda w, arch: (from_torchvision(w, arch), {}), ARCHS),
  "pytorchvideo": (lambda w, arch: (from_pytorchvideo(w, arch), {}), pytorchvideo_archs()),
  "basicsr": (_from_basicsr, basicsr.ARCHS),
}


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(
    prog="jaxres convert",
    formatter_class=HelpFormatter,
    description="Convert a torchvision, PyTorchVideo (.pth, .pyth) or BasicSR/mmagic state_dict "
    "to jaxres variables: a .msgpack file if OUT ends with .msgpack, otherwise an "
    "orbax checkpoint folder.",
  )
  parser.add_argument(
    "weights",
    help="a .pth file holding a state_dict, as written by "
    "torch.save(model.state_dict(), PATH), or a checkpoint "
    "holding one under 'model_state' (PyTorchVideo's .pyth), "
    "'params' (BasicSR) or 'state_dict' (mmagic); a "
    "whole pickled model is refused; torch is not needed",
  )
  parser.add_argument("out", help="OUT.msgpack or an orbax checkpoint folder")
  parser.add_argument(
    "--arch",
    required=True,
    choices=sorted({a for _, archs in _SOURCES.values() for a in archs}),
    help="jaxres architecture name",
  )
  parser.add_argument(
    "--from",
    dest="source",
    default="torchvision",
    choices=sorted(_SOURCES),
    help="the library whose layout the weights have (default: torchvision)",
  )
  args = parser.parse_args(argv)
  convert, archs = _SOURCES[args.source]
  if args.arch not in archs:
    print(
      f"jaxres convert: --from {args.source} converts {', '.join(archs)}; not {args.arch!r}.",
      file=sys.stderr,
    )
    return 1
  refused = _refused_output(args.weights, args.out)
  if refused:
    print(f"jaxres convert: {refused}", file=sys.stderr)
    return 1
  try:
    state_dict = load_torch_state_dict(args.weights)
  except (FileNotFoundError, UnreadableWeightsError) as error:
    print(f"jaxres convert: {error}", file=sys.stderr)
    return 1
  try:
    variables, fields = convert(state_dict, args.arch)
    path = save_variables(variables, args.out)
  except (ConversionError, FileNotFoundError) as error:
    print(f"jaxres convert: {args.weights}: {error}", file=sys.stderr)
    return 1
  built = "".join(f" --config.model.{k}={v}" for k, v in fields.items())
  print(f"wrote {args.arch} variables to {path}" + (f" (model fields:{built})" if built else ""))
  return 0


def _refused_output(weights: str, out: str) -> str | None:
  """Why `out` must not be written, or None: it is the input, or something convert did not write.

  A `.msgpack` file the user names is replaced (atomically); a folder is replaced only when it is
  an orbax checkpoint (what convert writes for other names), never another folder or file.
  """
  if os.path.exists(out) and os.path.exists(weights) and os.path.samefile(out, weights):
    return f"OUT {out} is the input weights file; choose another name."
  if out.endswith(".msgpack"):
    if os.path.isdir(out):
      return f"OUT {out} is a folder; name a .msgpack file or a new folder."
    return None
  if os.path.isfile(out) or (os.path.exists(out) and not os.path.isdir(out)):
    return (
      f"OUT {out} is an existing file, not a checkpoint folder; name a new folder, or a "
      ".msgpack file."
    )
  if (
    os.path.isdir(out)
    and os.listdir(out)
    and not os.path.isfile(os.path.join(out, "_CHECKPOINT_METADATA"))
  ):
    return (
      f"OUT {out} is a folder that holds other files, not a checkpoint written by "
      "`jaxres convert`; name a new folder (nothing was written)."
    )
  return None
