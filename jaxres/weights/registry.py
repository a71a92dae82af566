"""The weights registry: one `WeightsEntry` per published checkpoint, named `ARCH.TAG`.

An entry says where the publisher's file is (URL and, where the publisher gives one, its
sha256 or the hash prefix in its file name), which jaxres model it fits (`arch` plus
constructor arguments) and which converter reads it, and what a user needs to run it as the
publisher evaluated it: class names, preprocessing and the published figures with their source.
The shipped entries are in `jaxres.weights.catalog`; `register` adds a user's own.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import re
from typing import Any, Mapping, Optional, Sequence

# Converter names -> what reads the publisher's state dict (see `jaxres.weights.load`).
CONVERTERS = ("torchvision", "pytorchvideo", "mmaction2", "basicsr", "jaxres")

# Class-name lists shipped as package data (`jaxres/weights/classes/NAME.txt`).
CLASS_LISTS = ("kinetics400", "imagenet1k")

_NAME = re.compile(r"^[a-z0-9_+]+\.[a-z0-9_.+-]+$")


@dataclasses.dataclass(frozen=True)
class WeightsEntry:
  """A published checkpoint and how to use it.

  Attributes:
    name: `ARCH.TAG`, e.g. `"r3d_18.kinetics400"`.
    url: the publisher's URL of the file.
    arch: the jaxres model name (`jaxres.models.get`).
    converter: one of `CONVERTERS` (`"jaxres"`: a `.msgpack` of jaxres variables).
    sha256: the file's sha256 in hex, or the prefix the publisher puts in the file name
      (torchvision, mmagic); None: the hash is recorded the first time the file is read, and a
      file that later differs is refused.
    model_kwargs: constructor arguments (`num_classes`, `scale`, ...).
    classes: a shipped class list's name (`CLASS_LISTS`), or the names themselves; None for
      models without classes (super-resolution).
    preprocessing: what the publisher evaluates with, in data-config keys (`num_frames`,
      `frame_stride`, `resize` (short side), `crop_size`, `mean`, `std`, `eval_clips`,
      `eval_crops`; `input_range` for super-resolution).
    metrics: published figures, e.g. `{"kinetics400_top1": 63.2}`.
    source: where the figures (and the file) are published.
  """

  name: str
  url: str
  arch: str
  converter: str
  sha256: Optional[str] = None
  model_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  classes: Optional[str | tuple[str, ...]] = None
  preprocessing: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  metrics: Mapping[str, float] = dataclasses.field(default_factory=dict)
  source: str = ""

  @property
  def file_name(self) -> str:
    """The file's name, the last part of its URL (what a mirror serves it as)."""
    return self.url.rstrip("/").rsplit("/", 1)[-1].split("?")[0]

  def class_names(self) -> Optional[tuple[str, ...]]:
    """The class names (label -> name), or None.

    Example:
      >>> get("r3d_18.kinetics400").class_names()[:2]
      ('abseiling', 'air drumming')
    """
    if self.classes is None:
      return None
    if isinstance(self.classes, str):
      return read_class_list(self.classes)
    return tuple(self.classes)


_ENTRIES: dict[str, WeightsEntry] = {}


def register(
  name: str,
  *,
  url: str,
  arch: str,
  converter: str,
  sha256: Optional[str] = None,
  model_kwargs: Optional[Mapping[str, Any]] = None,
  classes: Optional[str | Sequence[str]] = None,
  preprocessing: Optional[Mapping[str, Any]] = None,
  metrics: Optional[Mapping[str, float]] = None,
  source: str = "",
  overwrite: bool = False,
) -> WeightsEntry:
  """Adds an entry to the registry (a user's own checkpoint, or a mirror's copy under a new name).

  Args:
    name: `ARCH.TAG` (lower case; the part before the dot is free, `arch` is the model).
    url: where the file is (`http(s)://` or `file://`).
    arch: a jaxres model name.
    converter: one of `CONVERTERS`.
    sha256: the file's sha256 (hex) or a prefix of it; None records it on first download.
    model_kwargs, classes, preprocessing, metrics, source: see `WeightsEntry`.
    overwrite: replace an entry of the same name (otherwise an error).

  Returns:
    The entry.

  Raises:
    ValueError: a malformed name, an unknown converter or model, a malformed hash, or a name
      already taken.

  Example:
    >>> register("r3d_18.my_finetune", url="https://example.org/r3d_ucf.pth", arch="r3d_18",
    ...          converter="torchvision", model_kwargs={"num_classes": 101})
  """
  from jaxres import models  # pylint: disable=import-outside-toplevel

  if not _NAME.match(name):
    raise ValueError(f"Weights name {name!r} must be ARCH.TAG in lower case, e.g. 'r3d_18.ucf101'.")
  if name in _ENTRIES and not overwrite:
    raise ValueError(f"Weights {name!r} are already registered (pass overwrite=True to replace).")
  if converter not in CONVERTERS:
    raise ValueError(f"Weights {name!r}: converter {converter!r} is not one of {CONVERTERS}.")
  if arch not in models.names():
    raise ValueError(f"Weights {name!r}: no model {arch!r} in jaxres.models.")
  if sha256 is not None and not re.fullmatch(r"[0-9a-f]{8,64}", sha256):
    raise ValueError(
      f"Weights {name!r}: sha256 must be 8 to 64 lower-case hex digits, got {sha256!r}."
    )
  if isinstance(classes, str) and classes not in CLASS_LISTS:
    raise ValueError(
      f"Weights {name!r}: classes {classes!r} is not a shipped list "
      f"{CLASS_LISTS}; pass the names themselves."
    )
  entry = WeightsEntry(
    name=name,
    url=url,
    arch=arch,
    converter=converter,
    sha256=sha256,
    model_kwargs=dict(model_kwargs or {}),
    classes=classes if classes is None or isinstance(classes, str) else tuple(classes),
    preprocessing=dict(preprocessing or {}),
    metrics=dict(metrics or {}),
    source=source,
  )
  _ENTRIES[name] = entry
  return entry


def get(name: str) -> WeightsEntry:
  """The entry called `name`.

  Raises:
    KeyError: no such entry (the message names the closest ones).

  Example:
    >>> get("x3d_m.kinetics400").arch
    'x3d_m'
  """
  _load_catalog()
  if name not in _ENTRIES:
    import difflib  # pylint: disable=import-outside-toplevel

    close = difflib.get_close_matches(name, list(_ENTRIES), n=3, cutoff=0.5)
    raise KeyError(
      f"No weights named {name!r}"
      + (f"; did you mean {', '.join(close)}?" if close else "")
      + " (`jaxres weights list` shows them all)."
    )
  return _ENTRIES[name]


def names() -> list[str]:
  """Every registered name, sorted.

  Example:
    >>> "r3d_18.kinetics400" in names()
    True
  """
  _load_catalog()
  return sorted(_ENTRIES)


def read_class_list(list_name: str) -> tuple[str, ...]:
  """A class list shipped with jaxres (`CLASS_LISTS`), one name per label.

  Example:
    >>> len(read_class_list("kinetics400"))
    400
  """
  if list_name not in CLASS_LISTS:
    raise KeyError(f"No shipped class list {list_name!r}; they are {CLASS_LISTS}.")
  text = (
    importlib.resources.files("jaxres.weights")
    .joinpath("classes", f"{list_name}.txt")
    .read_text(encoding="utf-8")
  )
  return tuple(line for line in text.splitlines() if line)


def _load_catalog() -> None:
  from jaxres.weights import catalog  # pylint: disable=import-outside-toplevel

  catalog.register_all()
