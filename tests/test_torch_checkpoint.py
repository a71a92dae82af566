"""`read_torch_checkpoint`: torch.save files read without torch, as torch.load(weights_only=True)."""

import collections
import io
import json
import os
import pickle
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from jaxres.convert import (  # noqa: E402
  UnreadableWeightsError,
  UnsafeCheckpointError,
  load_torch_state_dict,
  read_torch_checkpoint,
)

FORMATS = {"zip": True, "legacy": False}  # name -> torch.save's _use_new_zipfile_serialization


def _save(obj, path, fmt):
  torch.save(obj, path, _use_new_zipfile_serialization=FORMATS[fmt])
  return str(path)


def _assert_same(ours, theirs, where="root"):
  """`ours` is `theirs` (torch.load's) with numpy arrays for tensors, bit for bit."""
  if isinstance(theirs, torch.Tensor):
    assert isinstance(ours, np.ndarray), where
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch."), where
    assert ours.shape == tuple(theirs.shape), where
    theirs = theirs.detach()
    expected = (theirs.view(torch.int16) if theirs.dtype == torch.bfloat16 else theirs).numpy()
    assert ours.tobytes() == expected.tobytes(), where
  elif isinstance(theirs, dict):
    assert type(ours) is type(theirs) and list(ours) == list(theirs), where
    for key in theirs:
      _assert_same(ours[key], theirs[key], f"{where}[{key!r}]")
  elif isinstance(theirs, (list, tuple)):  # torch.Size comes back as a tuple
    assert type(ours) is (tuple if isinstance(theirs, torch.Size) else type(theirs)), where
    assert len(ours) == len(theirs), where
    for i, (a, b) in enumerate(zip(ours, theirs)):
      _assert_same(a, b, f"{where}[{i}]")
  else:
    assert type(ours) is type(theirs) and ours == theirs, where


def _every_dtype():
  g = torch.Generator().manual_seed(0)
  floats = {
    d: torch.randn(3, 5, generator=g).to(d)
    for d in (torch.float32, torch.float64, torch.float16, torch.bfloat16)
  }
  ints = {
    d: torch.randint(-100, 100, (4, 2), generator=g).to(d)
    for d in (torch.int64, torch.int32, torch.int16, torch.int8)
  }
  return {
    **{str(d): t for d, t in {**floats, **ints}.items()},
    "torch.uint8": torch.randint(0, 256, (7,), generator=g).to(torch.uint8),
    "torch.bool": torch.rand(6, generator=g) > 0.5,
  }


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_dtype_layout_and_value_reads_as_torch_load_does(tmp_path, fmt):
  base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
  checkpoint = {
    "model_state": collections.OrderedDict(_every_dtype()),
    "views": {"transposed": base.t(), "offset_and_step": base[1:, ::2], "row": base[2]},
    "zero_size": torch.zeros(0, 3),
    "scalar": torch.tensor(2.5, dtype=torch.float64),
    "parameter": torch.nn.Parameter(torch.ones(2, 2)),
    "epoch": 3,
    "arch": "r3d_18",
    "lr": 0.1,
    "milestones": [30, 60],
    "nothing": None,
    "shape": torch.Size([2, 3]),
    "pair": (1, "a"),
    "flags": {True, False},
    "big": 2**70,
  }
  path = _save(checkpoint, tmp_path / "every.pth", fmt)
  _assert_same(read_torch_checkpoint(path), torch.load(path, weights_only=True))


@pytest.mark.parametrize("fmt", FORMATS)
def test_tensors_sharing_a_storage_share_it(tmp_path, fmt):
  base = torch.arange(12, dtype=torch.int64)
  path = _save(
    {"a": base[2:8], "b": base[4:10].view(2, 3), "c": base.view(3, 4).t()},
    tmp_path / "shared.pth",
    fmt,
  )
  ours = read_torch_checkpoint(path)
  _assert_same(ours, torch.load(path, weights_only=True))
  assert np.shares_memory(ours["a"], ours["b"])
  ours["a"][2] = -1  # element 4 of the storage
  assert ours["b"][0, 0] == -1


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_modules_state_dict_reads_with_its_metadata(tmp_path, fmt):
  torch.manual_seed(0)
  model = torch.nn.Sequential(torch.nn.Conv3d(3, 4, 3), torch.nn.BatchNorm3d(4))
  model(torch.randn(2, 3, 4, 5, 5))  # moves the running statistics and num_batches_tracked
  path = _save(model.state_dict(), tmp_path / "model.pth", fmt)
  theirs, ours = torch.load(path, weights_only=True), read_torch_checkpoint(path)
  _assert_same(ours, theirs)
  assert ours["1.num_batches_tracked"].dtype == np.int64 and ours["1.num_batches_tracked"] == 1
  assert ours._metadata == theirs._metadata


def test_load_torch_state_dict_unwraps_a_pyth_to_numpy_arrays(tmp_path):
  state_dict = {
    "blocks.0.conv.weight": torch.randn(2, 3, 1, 1, 1),
    "blocks.0.norm.bias": torch.ones(2),
  }
  torch.save({"model_state": state_dict, "epoch": 3, "cfg": "TRAIN: ..."}, tmp_path / "m.pyth")
  loaded = load_torch_state_dict(str(tmp_path / "m.pyth"))
  assert list(loaded) == list(state_dict)
  for key, tensor in state_dict.items():
    assert isinstance(loaded[key], np.ndarray)
    np.testing.assert_array_equal(loaded[key], tensor.numpy())


@pytest.mark.slow  # a fresh interpreter imports jax and jaxres
def test_reading_and_converting_need_no_torch(tmp_path):
  torch.manual_seed(0)
  model = torch.nn.Sequential(torch.nn.Conv3d(3, 4, 3), torch.nn.BatchNorm3d(4))
  expected = {k: v.numpy() for k, v in model.state_dict().items()}
  for fmt in FORMATS:
    _save({"model_state": model.state_dict(), "epoch": 3}, tmp_path / f"{fmt}.pyth", fmt)
  script = f"""
import contextlib, io, json, sys
sys.modules["torch"] = None  # `import torch` now raises ImportError
from jaxres import cli
from jaxres.convert import load_torch_state_dict
folder = {str(tmp_path)!r}
loaded = {{fmt: {{k: v.tolist() for k, v in load_torch_state_dict(f"{{folder}}/{{fmt}}.pyth").items()}}
          for fmt in ("zip", "legacy")}}
err = io.StringIO()
with contextlib.redirect_stderr(err):
  code = cli.main(["convert", f"{{folder}}/zip.pyth", f"{{folder}}/x.msgpack", "--arch", "r3d_18"])
imported = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
print(json.dumps({{"loaded": loaded, "code": code, "err": err.getvalue(), "torch": imported,
                  "torch_is_none": sys.modules["torch"] is None}}))
"""
  run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
  assert run.returncode == 0, run.stderr
  result = json.loads(run.stdout.strip().splitlines()[-1])
  assert result["torch"] == ["torch"] and result["torch_is_none"]
  for fmt in FORMATS:
    assert list(result["loaded"][fmt]) == list(expected)
    for key, value in expected.items():
      np.testing.assert_array_equal(np.asarray(result["loaded"][fmt][key]), value)
  # The file was read and went on to the converter, which says these are not r3d_18's weights.
  assert result["code"] == 1 and result["err"].startswith(f"jaxres convert: {tmp_path}/zip.pyth: ")
  assert "PyTorch" not in result["err"] and "Import" not in result["err"], result["err"]


class _Evil:
  def __init__(self, sentinel):
    self.sentinel = sentinel

  def __reduce__(self):
    return os.system, (f"touch {self.sentinel}",)


def _torch_like_zip(path, payload):
  with zipfile.ZipFile(path, "w") as archive:
    archive.writestr("archive/data.pkl", payload)
    archive.writestr("archive/byteorder", "little")
    archive.writestr("archive/version", "3\n")
  return str(path)


@pytest.mark.parametrize("how", ["zip", "legacy", "raw_zip"])
def test_a_malicious_pickle_is_refused_before_anything_runs(tmp_path, how):
  sentinel = tmp_path / "SENTINEL"
  obj = {"weight": torch.ones(2), "evil": _Evil(sentinel)}
  if how == "raw_zip":
    path = _torch_like_zip(tmp_path / "evil.pth", pickle.dumps(_Evil(sentinel), protocol=2))
  else:
    path = _save(obj, tmp_path / "evil.pth", how)
  with pytest.raises(UnsafeCheckpointError) as error:
    read_torch_checkpoint(path)
  message = str(error.value)
  assert len(message.splitlines()) == 1
  assert path in message and f"'{os.system.__module__}.system'" in message, message
  assert not sentinel.exists()
  assert isinstance(error.value, UnreadableWeightsError)


def test_a_pickled_model_and_builtins_eval_are_refused(tmp_path):
  torch.save(torch.nn.Linear(2, 3), tmp_path / "model.pth")
  with pytest.raises(
    UnsafeCheckpointError,
    match=r"'torch\.nn\.modules\.linear\.Linear'.*"
    r"model\.state_dict\(\)",
  ):
    read_torch_checkpoint(tmp_path / "model.pth")

  class Eval:
    def __reduce__(self):
      return eval, ("1 + 1",)

  path = _torch_like_zip(tmp_path / "eval.pth", pickle.dumps(Eval(), protocol=2))
  with pytest.raises(UnsafeCheckpointError, match=r"eval\.pth.*'builtins\.eval'"):
    read_torch_checkpoint(path)


def test_garbage_truncated_and_big_endian_files_are_unreadable(tmp_path):
  rng = np.random.default_rng(0)
  valid = {
    fmt: open(_save({"w": torch.randn(64, 64)}, tmp_path / f"{fmt}.pth", fmt), "rb").read()
    for fmt in FORMATS
  }
  cases = {
    "random.pth": rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
    "text.pth": b"config:\n  lr: 0.1\n",
    "empty.pth": b"",
    "cut_zip.pth": valid["zip"][: len(valid["zip"]) // 2],
    "cut_zip_data.pth": valid["zip"][: len(valid["zip"]) - 2000],
    "cut_legacy.pth": valid["legacy"][: len(valid["legacy"]) - 100],
    "cut_legacy_pickle.pth": valid["legacy"][:200],
  }
  for name, data in cases.items():
    (tmp_path / name).write_bytes(data)
    with pytest.raises(UnreadableWeightsError, match=re.escape(str(tmp_path / name))) as error:
      read_torch_checkpoint(tmp_path / name)
    assert not isinstance(error.value, UnsafeCheckpointError), name
  # The same archive with its byteorder record saying big-endian.
  with (
    zipfile.ZipFile(tmp_path / "zip.pth") as source,
    zipfile.ZipFile(tmp_path / "big.pth", "w") as target,
  ):
    for info in source.infolist():
      data = source.read(info)
      target.writestr(info, b"big" if info.filename.endswith("/byteorder") else data)
  with pytest.raises(UnreadableWeightsError, match=r"big\.pth.*big-endian"):
    read_torch_checkpoint(tmp_path / "big.pth")
  # A legacy stream whose sys_info says big-endian.
  stream = io.BytesIO(valid["legacy"])
  magic, version, sys_info = (pickle.load(stream) for _ in range(3))
  header = b"".join(
    pickle.dumps(v, protocol=2) for v in (magic, version, {**sys_info, "little_endian": False})
  )
  (tmp_path / "big_legacy.pth").write_bytes(header + valid["legacy"][stream.tell() :])
  with pytest.raises(UnreadableWeightsError, match=r"big_legacy\.pth.*big-endian"):
    read_torch_checkpoint(tmp_path / "big_legacy.pth")
  with pytest.raises(FileNotFoundError):
    read_torch_checkpoint(tmp_path / "nope.pth")
