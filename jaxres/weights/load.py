"""A registry entry's jaxres variables: fetched, converted once, then read from the cache.

The first load downloads the publisher's file (`download.fetch`), reads it without torch
(`jaxres.convert.read_torch_checkpoint`), converts it with the entry's converter and keeps the
result as `converted/NAME-SHA.msgpack` in the cache, keyed by the file's verified sha256; later
loads read that file alone, with no network and no conversion.
"""

from __future__ import annotations

import os
from typing import Any

from jaxres import convert, models
from jaxres.convert import files
from jaxres.weights import download
from jaxres.weights.registry import CONVERTERS, WeightsEntry, get


def load_variables(entry: WeightsEntry | str, *, progress: bool = True) -> dict[str, Any]:
  """The jaxres variables of a published checkpoint (numpy arrays).

  Args:
    entry: a registry entry or its name (`"r3d_18.kinetics400"`).
    progress: show a progress bar while downloading.

  Returns:
    `{"params", "batch_stats"}` for `jaxres.models.get(entry.arch, **entry.model_kwargs)`.

  Raises:
    KeyError: no such entry.
    jaxres.weights.WeightsError: the file cannot be downloaded or does not check out.
    jaxres.convert.ConversionError: the file does not fit the entry's architecture.

  Example:
    >>> variables = load_variables("x3d_m.kinetics400")
  """
  entry = get(entry) if isinstance(entry, str) else entry
  converted = _converted_path(entry)
  if converted is not None and os.path.isfile(converted):
    return files.load_variables(converted)
  path = download.fetch(entry, progress=progress)
  variables = convert_file(entry, path)
  converted = _converted_path(entry)
  os.makedirs(os.path.dirname(converted), exist_ok=True)
  files.save_variables(variables, converted)
  return variables


def convert_file(entry: WeightsEntry, path: str) -> dict[str, Any]:
  """Converts the publisher's file at `path` with the entry's converter.

  Example:
    >>> convert_file(get("r3d_18.kinetics400"), "r3d_18-b3b3357e.pth")["params"]["fc"]["kernel"].shape
    (512, 400)
  """
  return convert_path(path, entry.converter, entry.arch)


def convert_path(path: str, converter: str, arch: str) -> dict[str, Any]:
  """Reads the file at `path` and converts it for `arch` with `converter` (`CONVERTERS`).

  Raises:
    ValueError: an unknown converter.

  Example:
    >>> convert_path("X3D_M.pyth", "pytorchvideo", "x3d_m")["params"]["head"]["fc"]["kernel"].shape
    (192, 400)
  """
  if converter == "jaxres":
    return files.load_variables(path)
  if converter == "basicsr":  # takes the whole checkpoint: BasicSR and mmagic wrap it
    return convert.from_basicsr(convert.read_torch_checkpoint(path), arch)
  if converter not in ("torchvision", "pytorchvideo", "mmaction2"):
    raise ValueError(f"Unknown converter {converter!r}; converters: {', '.join(CONVERTERS)}.")
  state_dict = files.load_torch_state_dict(path)
  if converter == "torchvision":
    return convert.from_torchvision(state_dict, arch)
  if converter == "pytorchvideo":
    return convert.from_pytorchvideo(state_dict, arch)
  return convert.from_mmaction2_tsm(state_dict)


def converter_for(arch: str) -> str | None:
  """The converter that reads the reference library's PyTorch files for `arch`, or None.

  Example:
    >>> converter_for("x3d_m")
    'pytorchvideo'
  """
  if arch in convert.ARCHS:
    return "torchvision"
  if arch in convert.pytorchvideo_archs():
    return "pytorchvideo"
  if arch == "tsm_r50":
    return "mmaction2"
  if models.spec(arch).task == "super_resolution":
    return "basicsr"
  return None


def _converted_path(entry: WeightsEntry) -> str | None:
  digest = download.recorded_sha256(entry)
  if digest is None:
    return None
  return os.path.join(download.cache_dir(), "converted", f"{entry.name}-{digest[:16]}.msgpack")
