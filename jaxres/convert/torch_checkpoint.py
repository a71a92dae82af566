"""Reads the files `torch.save` writes, without torch: tensors come back as numpy arrays.

Published weights (torchvision, PyTorchVideo, BasicSR, ...) are PyTorch checkpoints; reading them
here lets `jaxres convert` and `load_torch_state_dict` work where torch is not installed.

A checkpoint is a pickle of the saved object in which every tensor is a call
`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` and every storage a
persistent id `('storage', storage_type, key, location, numel)` whose bytes lie outside the pickle.
`torch.save` writes one of two layouts:

- a zip archive (torch >= 1.6): `<top>/data.pkl` is the pickle, `<top>/data/<key>` each storage's
  raw bytes and `<top>/byteorder` their byte order (`<top>` varies, often `archive`);
- a legacy stream (`_use_new_zipfile_serialization=False`, and older releases): pickles of a magic
  number, the protocol version 1001 and a `sys_info` dict, then the object's pickle (whose storage
  ids carry a sixth entry, a view or None), then the sorted list of storage keys, then for each key
  an int64 element count and the storage's raw bytes.

Unpickling is restricted as `torch.load(path, weights_only=True)` restricts it: only containers,
tensors, storages, dtypes and `torch.Size` resolve, so a pickled object that would run code when
loaded (a whole model, or a malicious file) raises `UnsafeCheckpointError` before any of it runs.

Example:
  >>> checkpoint = read_torch_checkpoint("SLOW_8x8_R50.pyth")
  >>> checkpoint["model_state"]["blocks.0.conv.weight"].shape
  (64, 3, 1, 7, 7)
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import struct
import zipfile
from typing import Any, Callable

import ml_dtypes
import numpy as np


class UnreadableWeightsError(ValueError):
  """A weights file could not be read as a PyTorch state dict; the message says why and what to do."""


class UnsafeCheckpointError(UnreadableWeightsError):
  """A checkpoint names a global that a weights file does not need (a pickled model or class, or
  code); nothing of it was run."""


_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
_PROTOCOL_VERSION = 1001

# torch's legacy storage classes (torch.FloatStorage, also torch.cuda.FloatStorage) -> element type.
_STORAGE_DTYPES = {
  "DoubleStorage": np.float64,
  "FloatStorage": np.float32,
  "HalfStorage": np.float16,
  "BFloat16Storage": ml_dtypes.bfloat16,
  "LongStorage": np.int64,
  "IntStorage": np.int32,
  "ShortStorage": np.int16,
  "CharStorage": np.int8,
  "ByteStorage": np.uint8,
  "BoolStorage": np.bool_,
  "ComplexFloatStorage": np.complex64,
  "ComplexDoubleStorage": np.complex128,
  "UntypedStorage": np.uint8,
}

# `torch.<name>` dtypes: the arguments of `_rebuild_tensor_v3`, which saves the dtypes without a
# legacy storage class (uint16, float8 ...) on an UntypedStorage.
_TORCH_DTYPES = {
  "float64": np.float64,
  "float32": np.float32,
  "float16": np.float16,
  "bfloat16": ml_dtypes.bfloat16,
  "int64": np.int64,
  "int32": np.int32,
  "int16": np.int16,
  "int8": np.int8,
  "uint8": np.uint8,
  "bool": np.bool_,
  "complex64": np.complex64,
  "complex128": np.complex128,
  "uint16": np.uint16,
  "uint32": np.uint32,
  "uint64": np.uint64,
  "float8_e5m2": ml_dtypes.float8_e5m2,
  "float8_e4m3fn": ml_dtypes.float8_e4m3fn,
  "float8_e5m2fnuz": ml_dtypes.float8_e5m2fnuz,
  "float8_e4m3fnuz": ml_dtypes.float8_e4m3fnuz,
}

# Globals torch's weights-only unpickler allows that are not read here: quantized, sparse, nested
# and device tensors.
_UNSUPPORTED_TORCH = {
  "_rebuild_qtensor",
  "_rebuild_sparse_tensor",
  "_rebuild_meta_tensor_no_storage",
  "_rebuild_nested_tensor",
  "_rebuild_wrapper_subclass",
  "_rebuild_device_tensor_from_numpy",
  "_rebuild_device_tensor_from_cpu_tensor",
  "_get_layout",
  "device",
}


class _Frozen(tuple):
  """What an allowed global that is not a plain type unpickles to: a tuple holding it, so that
  the pickle's BUILD opcode cannot change it (no `__dict__`, no slot to set) and one file cannot
  alter how later files load."""

  __slots__ = ()


class _Call(_Frozen):
  """An allowed function: `_Call((function,))(*args)` calls it."""

  __slots__ = ()

  def __call__(self, *args: Any) -> Any:
    return self[0](*args)


class _StorageType(_Frozen):
  """What `torch.FloatStorage` and the like unpickle to: `(element type,)`."""

  __slots__ = ()


class _Dtype(_Frozen):
  """What a `torch.<dtype>` unpickles to: `(numpy dtype,)`."""

  __slots__ = ()


class _Storage(_Frozen):
  """What a storage's persistent id loads to: `(raw bytes as a uint8 array, element type)`."""

  __slots__ = ()


class _TensorType(_Frozen):
  """What `torch.Tensor` and `torch.nn.Parameter` unpickle to (the `new_type` of
  `_rebuild_from_type_v2`); tensors are rebuilt as numpy arrays whichever it is."""

  __slots__ = ()


def _encode(text: str, encoding: str) -> bytes:
  """`_codecs.encode` as protocol-2 pickles of `bytes` call it (latin-1 only)."""
  if encoding not in ("latin1", "latin-1"):
    raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}")
  return text.encode("latin-1")


class _Unpickler(pickle.Unpickler):
  """Unpickles a checkpoint's object: only allowed globals resolve, storages come from
  `load_storage(key, dtype, numel)` (raw bytes as a uint8 array), tensors are numpy arrays (None
  when `build` is False: the legacy layout's first pass, before the storages are read)."""

  def __init__(
    self, file: Any, path: str, load_storage: Callable[..., np.ndarray], *, build: bool = True
  ):
    super().__init__(file, encoding="utf-8")
    self._path = path
    self._load_storage = load_storage
    self._build = build

  def find_class(self, module: str, name: str) -> Any:
    module = {"__builtin__": "builtins", "torch.tensor": "torch._tensor"}.get(module, module)
    if (module, name) == ("collections", "OrderedDict"):
      return collections.OrderedDict
    if (module, name) == ("collections", "Counter"):
      return collections.Counter
    if module == "builtins" and name in ("set", "bytearray", "complex"):
      return {"set": set, "bytearray": bytearray, "complex": complex}[name]
    if (module, name) == ("_codecs", "encode"):
      return _Call((_encode,))
    if module in ("torch", "torch.cuda", "torch.storage") and name in _STORAGE_DTYPES:
      return _StorageType((np.dtype(_STORAGE_DTYPES[name]),))
    if module == "torch" and name in _TORCH_DTYPES:
      return _Dtype((np.dtype(_TORCH_DTYPES[name]),))
    if (module, name) == ("torch", "Size"):
      return tuple
    if (module, name) in (
      ("torch", "Tensor"),
      ("torch._tensor", "Tensor"),
      ("torch.nn.parameter", "Parameter"),
    ):
      return _TensorType()
    if module == "torch._utils" and name in (
      "_rebuild_tensor",
      "_rebuild_tensor_v2",
      "_rebuild_tensor_v3",
      "_rebuild_parameter",
      "_rebuild_parameter_with_state",
    ):
      return _Call((getattr(self, name),))
    if (module, name) == ("torch._tensor", "_rebuild_from_type_v2"):
      return _Call((self._rebuild_from_type_v2,))
    if module in ("torch", "torch._utils", "torch.serialization") and name in _UNSUPPORTED_TORCH:
      raise UnreadableWeightsError(
        f"{self._path}: holds a quantized, sparse, nested or device tensor ('{module}.{name}'), "
        "which is not read; save the dense tensors' state dict and convert that."
      )
    raise UnsafeCheckpointError(
      f"{self._path}: refusing to load global '{module}.{name}': a weights file only needs "
      "tensors and containers; if it holds a whole pickled model, save "
      "torch.save(model.state_dict(), PATH) and convert that."
    )

  def persistent_load(self, pid: Any) -> Any:
    if not (
      isinstance(pid, tuple)
      and len(pid) in (5, 6)
      and _ascii(pid[0]) == "storage"
      and isinstance(pid[1], _StorageType)
      and isinstance(pid[4], int)
    ):
      raise UnreadableWeightsError(f"{self._path}: unknown persistent id {pid!r:.80}.")
    dtype, key, numel = pid[1][0], _ascii(pid[2]), pid[4]
    data = self._load_storage(key, dtype, numel)
    view = pid[5] if len(pid) == 6 else None
    if view is not None:  # an old legacy view: (view key, offset, numel) in elements
      data = data[view[1] * dtype.itemsize : (view[1] + view[2]) * dtype.itemsize]
    return _Storage((data, dtype))

  def _tensor(self, storage, storage_offset, size, stride, dtype=None):
    if not isinstance(storage, _Storage):
      raise UnreadableWeightsError(f"{self._path}: a tensor without a storage.")
    if not self._build:
      return None
    data, storage_dtype = storage
    return _strided(
      self._path,
      data,
      storage_dtype if dtype is None else dtype,
      int(storage_offset),
      tuple(map(int, size)),
      tuple(map(int, stride)),
    )

  def _rebuild_tensor(self, storage, storage_offset, size, stride):
    return self._tensor(storage, storage_offset, size, stride)

  def _rebuild_tensor_v2(
    self,
    storage,
    storage_offset,
    size,
    stride,
    requires_grad=False,
    backward_hooks=None,
    metadata=None,
  ):
    if metadata:  # conjugate or negative bits
      raise UnreadableWeightsError(
        f"{self._path}: holds a tensor with view bits {metadata}, "
        "which are not read; save tensor.resolve_conj().resolve_neg()."
      )
    return self._tensor(storage, storage_offset, size, stride)

  def _rebuild_tensor_v3(
    self, storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None
  ):
    if not isinstance(dtype, _Dtype):
      raise UnreadableWeightsError(f"{self._path}: a tensor of unknown dtype {dtype!r:.40}.")
    if metadata:
      return self._rebuild_tensor_v2(storage, storage_offset, size, stride, metadata=metadata)
    return self._tensor(storage, storage_offset, size, stride, dtype[0])

  def _rebuild_parameter(self, data, requires_grad, backward_hooks):
    return data

  def _rebuild_parameter_with_state(self, data, requires_grad, backward_hooks, state):
    return data

  def _rebuild_from_type_v2(self, func, new_type, args, state):
    if not isinstance(new_type, _TensorType):
      raise UnsafeCheckpointError(f"{self._path}: refusing a tensor of type {new_type!r:.60}.")
    return func(*args)


def _ascii(value: Any) -> Any:
  return value.decode("ascii") if isinstance(value, bytes) else value


def _strided(
  path: str,
  data: np.ndarray,
  dtype: np.dtype,
  offset: int,
  size: tuple[int, ...],
  stride: tuple[int, ...],
) -> np.ndarray:
  """The tensor `size`/`stride` from element `offset` of the storage bytes `data`: a view of them
  when it is contiguous (so tensors sharing a storage share memory), else a copy."""
  if len(size) != len(stride) or min((offset, *size, *stride)) < 0 or data.nbytes % dtype.itemsize:
    raise UnreadableWeightsError(
      f"{path}: a tensor of size {size}, stride {stride} and offset "
      f"{offset} does not fit its {dtype} storage."
    )
  elements = data.view(dtype)
  numel = math.prod(size)
  if numel == 0:
    return np.zeros(size, dtype)
  if offset + sum((n - 1) * s for n, s in zip(size, stride)) >= elements.size:
    raise UnreadableWeightsError(
      f"{path}: a tensor of size {size} and stride {stride} reaches "
      f"past its storage of {elements.size} elements."
    )
  contiguous = [math.prod(size[i + 1 :]) for i in range(len(size))]
  if all(n == 1 or s == c for n, s, c in zip(size, stride, contiguous)):
    return elements[offset : offset + numel].reshape(size)
  return np.lib.stride_tricks.as_strided(
    elements[offset:], size, [s * dtype.itemsize for s in stride], writeable=False
  ).copy()


def _plain_load(path: str, file: Any) -> Any:
  """One pickle of plain values (the legacy header, its storage keys): no global resolves."""
  return _Unpickler(file, path, lambda *_: None).load()


def _read_into(file: Any, buffer: np.ndarray) -> None:
  view = memoryview(buffer).cast("B")
  done = 0
  while done < len(view):
    count = file.readinto(view[done:])
    if not count:
      raise EOFError(f"a storage ends after {done} of its {len(view)} bytes")
    done += count


def _check_size(path: str, nbytes: int, available: int) -> None:
  if not 0 <= nbytes <= available:
    raise UnreadableWeightsError(
      f"{path}: a storage of {nbytes} bytes does not fit in the file (truncated?)."
    )


def _read_zip(path: str, file: Any) -> Any:
  archive = zipfile.ZipFile(file)
  names = archive.namelist()
  top = names[0].split("/")[0] if names else ""
  if f"{top}/data.pkl" not in names:
    kind = (
      "a TorchScript archive (torch.jit.save)"
      if f"{top}/constants.pkl" in names
      else ("a zip archive without data.pkl")
    )
    raise UnreadableWeightsError(f"{path}: not a torch.save checkpoint but {kind}.")
  if f"{top}/byteorder" in names and archive.read(f"{top}/byteorder") != b"little":
    raise UnreadableWeightsError(
      f"{path}: written on a big-endian machine ({archive.read(f'{top}/byteorder')!r}); only "
      "little-endian checkpoints are read: load it with torch and save it again here."
    )
  storages: dict[str, np.ndarray] = {}

  def load_storage(key: str, dtype: np.dtype, numel: int) -> np.ndarray:
    if key not in storages:
      info = archive.getinfo(f"{top}/data/{key}")
      nbytes = numel * dtype.itemsize
      if info.file_size != nbytes:
        raise UnreadableWeightsError(
          f"{path}: storage {key} holds {info.file_size} bytes, not the {nbytes} its tensors need."
        )
      storages[key] = np.empty(nbytes, np.uint8)
      with archive.open(info) as record:
        _read_into(record, storages[key])
    return storages[key]

  return _Unpickler(io.BytesIO(archive.read(f"{top}/data.pkl")), path, load_storage).load()


def _read_legacy(path: str, file: Any) -> Any:
  try:
    magic, version, sys_info = (_plain_load(path, file) for _ in range(3))
  except Exception:  # any pickle error here means another kind of file
    magic = None
  if magic != _MAGIC_NUMBER or version != _PROTOCOL_VERSION or not isinstance(sys_info, dict):
    raise UnreadableWeightsError(
      f"{path}: not a PyTorch checkpoint (neither a zip archive nor a pickle stream starting "
      "with torch's magic number)."
    )
  if not sys_info.get("little_endian", True):
    raise UnreadableWeightsError(
      f"{path}: written on a big-endian machine; only little-endian checkpoints are read: load "
      "it with torch and save it again here."
    )
  file_size = os.fstat(file.fileno()).st_size
  storages: dict[str, np.ndarray] = {}
  itemsizes: dict[str, int] = {}

  def load_storage(key: str, dtype: np.dtype, numel: int) -> np.ndarray:
    if key not in storages:
      _check_size(path, numel * dtype.itemsize, file_size)
      storages[key], itemsizes[key] = np.empty(numel * dtype.itemsize, np.uint8), dtype.itemsize
    return storages[key]

  # The storages' bytes follow the object's pickle: a first pass finds them, a second builds.
  start = file.tell()
  _Unpickler(file, path, load_storage, build=False).load()
  for key in map(_ascii, _plain_load(path, file)):
    (numel,) = struct.unpack("<q", file.read(8))
    if numel * itemsizes[key] != storages[key].nbytes:
      raise UnreadableWeightsError(
        f"{path}: storage {key} has {numel} elements in the file, not "
        f"the {storages[key].nbytes // itemsizes[key]} its tensors "
        "need."
      )
    _read_into(file, storages[key])
  file.seek(start)
  return _Unpickler(file, path, load_storage).load()


def read_torch_checkpoint(path: str | os.PathLike) -> Any:
  """Reads a file written by `torch.save`, as `torch.load(path, weights_only=True)` would, without
  torch.

  Args:
    path: the file: a zip archive (torch >= 1.6) or a legacy pickle stream.

  Returns:
    The saved object with a numpy array for each tensor (bfloat16 as `ml_dtypes.bfloat16`):
    dicts, OrderedDicts, lists, tuples and plain values as saved, `torch.Size` as a tuple.
    Contiguous tensors viewing one storage share memory.

  Raises:
    FileNotFoundError: no file at `path`.
    UnsafeCheckpointError: the file names a global a weights file does not need (a whole pickled
      model, or code); nothing of it ran.
    UnreadableWeightsError: not a PyTorch checkpoint, truncated, big-endian, or holding a tensor
      kind not read (quantized, sparse).

  Example:
    >>> state_dict = read_torch_checkpoint("r3d_18-b3b3357e.pth")
    >>> state_dict["fc.weight"].dtype
    dtype('float32')
  """
  path = os.fspath(path)
  with open(path, "rb") as file:
    try:
      if file.read(4) == b"PK\x03\x04":
        file.seek(0)
        return _read_zip(path, file)
      file.seek(0)
      return _read_legacy(path, file)
    except UnreadableWeightsError:
      raise
    except Exception as error:  # corrupt input raises many kinds
      reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
      raise UnreadableWeightsError(
        f"{path}: not a readable PyTorch checkpoint (truncated or corrupt?): {reason}"
      ) from None
