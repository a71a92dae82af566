"""`jaxres convert WEIGHTS OUT --arch ARCH [--from torchvision|pytorchvideo|mmaction2|basicsr]`:
PyTorch weights -> jaxres variables.

`--from torchvision` (the default) reads a torchvision ResNet state_dict, `--from pytorchvideo` a
PyTorchVideo one (or its model-zoo `.pyth`), `--from mmaction2` MMAction2's TSM R50 (`tsm_r50`),
`--from basicsr` a BasicSR checkpoint (`{"params": ...}`) or an mmagic one
(`{"state_dict": {"generator.…": ...}}`) of the SR networks exact to BasicSR (`edsr_baseline`,
`edsr`, `basicvsr`, ...).

OUT is checked before any work (`jaxres.atomic_files.check_output`): never the input, never a
read-only place, and written whole. A `.msgpack` OUT the user names is replaced; a checkpoint
folder OUT is built beside and swapped in, replacing an earlier `jaxres convert` checkpoint, but
a folder holding other things is refused unless --overwrite.

The file is read without torch (`jaxres.convert.read_torch_checkpoint`), and only a state dict is
read, as `torch.load(..., weights_only=True)` would: a whole pickled model would run arbitrary code
when loaded, so it is refused with a line saying to save `model.state_dict()`. PyTorchVideo's
model-zoo `.pyth` checkpoints hold theirs under `model_state`, which is read.
"""

from __future__ import annotations

import argparse
import os
import sys

from jaxres.atomic_files import OutputRefusedError, check_output
from jaxres.commands.help import HelpFormatter
from jaxres.convert import (
  ARCHS,
  ConversionError,
  UnreadableWeightsError,
  basicsr,
  from_mmaction2_tsm,
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
  "mmaction2": (lambda w, arch: (from_mmaction2_tsm(w), {}), ("tsm_r50",)),
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
    metavar="ARCH",
    choices=sorted({a for _, archs in _SOURCES.values() for a in archs}),
    help="jaxres architecture name; by --from: "
    + "; ".join(f"{source}: {', '.join(archs)}" for source, (_, archs) in _SOURCES.items()),
  )
  parser.add_argument(
    "--from",
    dest="source",
    default="torchvision",
    choices=sorted(_SOURCES),
    help="the library whose layout the weights have (default: torchvision)",
  )
  parser.add_argument(
    "--overwrite",
    action="store_true",
    help="replace a folder OUT whole even if it holds other things than a checkpoint",
  )
  args = parser.parse_args(argv)
  convert, archs = _SOURCES[args.source]
  if args.arch not in archs:
    print(
      f"jaxres convert: --from {args.source} converts {', '.join(archs)}; not {args.arch!r}.",
      file=sys.stderr,
    )
    return 1
  try:
    check_output(
      args.out,
      inputs=[args.weights],
      kind="file" if args.out.endswith(".msgpack") else "artefact",
      overwrite=args.overwrite,
      is_artefact=_is_checkpoint,
      option="OUT",
    )
  except OutputRefusedError as error:
    print(f"jaxres convert: {error}", file=sys.stderr)
    return 1
  try:
    state_dict = load_torch_state_dict(args.weights)
  except (FileNotFoundError, UnreadableWeightsError) as error:
    print(f"jaxres convert: {error}", file=sys.stderr)
    return 1
  try:
    variables, fields = convert(state_dict, args.arch)
    path = save_variables(variables, args.out)
  except (ConversionError, OSError) as error:
    print(f"jaxres convert: {args.weights}: {error}", file=sys.stderr)
    return 1
  built = "".join(f" --config.model.{k}={v}" for k, v in fields.items())
  print(f"wrote {args.arch} variables to {path}" + (f" (model fields:{built})" if built else ""))
  return 0


def _is_checkpoint(folder: str) -> bool:
  """Whether `folder` is an orbax checkpoint (what convert writes for OUT that is not .msgpack)."""
  return os.path.isfile(os.path.join(folder, "_CHECKPOINT_METADATA"))
