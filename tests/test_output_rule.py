"""Every command's output option through the one write rule (`jaxres.atomic_files`).

For each output option (convert OUT, export --out, predict --json, prepare OUT, upscale OUT, train
--workdir): an output that is the input is refused; a folder where a file is meant (or a file
where a folder is meant) is refused; a read-only destination is refused in one line; a FIFO is
never renamed over; a symlink is written through (the link stays a link); nothing the command did
not create is deleted. The refusals come before any work, so these runs stop early.

Read-only: as root, permission bits do not stop a write (only a read-only filesystem does, which
`os.access` reports), so there the tests make `os.access` say "read-only" for the folder; as
another user they chmod it 555.
"""

import contextlib
import dataclasses
import os
import select
import stat
import threading
import time
from typing import Callable, Optional

import jax
import numpy as np
import pytest
from model_init import init_variables

from jaxres import atomic_files, cli, models

AS_ROOT = os.geteuid() == 0
WEIGHTS_NAME = "r3d_tiny.output_rule"


@dataclasses.dataclass(frozen=True)
class Output:
  """One command's output option: `argv(out, inputs)`, what it must be and what it reads."""

  name: str
  kind: str  # "file" or "folder"
  argv: Callable[[str, dict], list[str]]
  input: str  # the key in `inputs` of the path the command reads
  suffix: str = ""  # the output's file name ends so (the format is chosen by it)
  succeeds: Optional[Callable[[str, dict], list[str]]] = None  # a cheap run that writes


OUTPUTS = [
  Output(
    "convert OUT.msgpack",
    "file",
    lambda out, i: ["convert", i["weights"], out, "--arch", "resnet18"],
    "weights",
    ".msgpack",
    succeeds=lambda out, i: ["convert", i["weights"], out, "--arch", "resnet18"],
  ),
  Output(
    "convert OUT folder",
    "folder",
    lambda out, i: ["convert", i["weights"], out, "--arch", "resnet18"],
    "weights",
    succeeds=lambda out, i: ["convert", i["weights"], out, "--arch", "resnet18"],
  ),
  Output(
    "export --out",
    "folder",
    lambda out, i: ["export", "--checkpoint", i["run"], "--out", out, "--platforms", "cpu"],
    "run",
    succeeds=lambda out, i: [
      "export",
      "--weights",
      WEIGHTS_NAME,
      "--out",
      out,
      "--platforms",
      "cpu",
    ],
  ),
  Output(
    "predict --json",
    "file",
    lambda out, i: ["predict", i["video"], "--weights", "no.such_weights", "--json", out],
    "video",
    ".json",
    succeeds=lambda out, i: ["predict", i["video"], "--weights", WEIGHTS_NAME, "--json", out],
  ),
  Output("prepare OUT", "folder", lambda out, i: ["prepare", i["src"], out], "src"),
  Output(
    "upscale OUT",
    "file",
    lambda out, i: ["upscale", i["video"], out, "--weights", "no.such_weights"],
    "video",
    ".mp4",
  ),
]
TRAIN = Output("train --workdir", "folder", lambda out, i: ["train", "--workdir", out], "")


def _params(outputs):
  """One pytest param per output, named for it (mark one xfail(strict=True) while its command
  does not yet follow the rule, with the reason)."""
  return [pytest.param(o, id=o.name) for o in outputs]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
  """What the commands read: torchvision resnet18 weights, a "video", a class folder, a run."""
  torch = pytest.importorskip("torch")
  torchvision = pytest.importorskip("torchvision")
  folder = tmp_path_factory.mktemp("inputs")
  torch.manual_seed(0)
  torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), folder / "weights.pth")
  (folder / "clip.mp4").write_bytes(b"not really a video")
  (folder / "src" / "class_a").mkdir(parents=True)
  (folder / "run").mkdir()
  (folder / "run" / "config.json").write_text("{}")
  return {
    "weights": str(folder / "weights.pth"),
    "video": str(folder / "clip.mp4"),
    "src": str(folder / "src"),
    "run": str(folder / "run"),
  }


@pytest.fixture(scope="module")
def served_weights(tmp_path_factory):
  """A tiny classifier registered as WEIGHTS_NAME, served from 127.0.0.1 (no internet)."""
  from local_server import LocalServer

  from jaxres import weights
  from jaxres.convert import save_variables

  served = tmp_path_factory.mktemp("served")
  model = models.get("r3d_tiny", num_classes=5)
  variables = init_variables(model, np.zeros((1, 4, 16, 16, 3), np.float32), train=False)
  save_variables(jax.device_get(variables), str(served / "tiny.msgpack"))
  server = LocalServer(served)
  with pytest.MonkeyPatch.context() as patch:
    patch.setenv("JAXRES_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    weights.register(
      WEIGHTS_NAME,
      url=f"{server.url}/tiny.msgpack",
      arch="r3d_tiny",
      converter="jaxres",
      model_kwargs={"num_classes": 5},
      classes=list("abcde"),
      preprocessing={"num_frames": 4, "crop_size": 16, "mean": (0.5,) * 3, "std": (0.25,) * 3},
      overwrite=True,
    )
    yield WEIGHTS_NAME
  server.stop()


def _run(argv, capsys):
  """`jaxres ARGV` in this process: (exit code, stderr lines). Usage errors count as refusals."""
  try:
    code = cli.main(argv)
  except SystemExit as exit_:
    code = exit_.code
  err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
  return code, err


def _snapshot(folder):
  """Every path under `folder` with its bytes (files) or None (folders), links as links."""
  found = {}
  for root, dirs, files in os.walk(folder):
    for name in dirs + files:
      path = os.path.join(root, name)
      if os.path.islink(path):
        found[path] = ("link", os.readlink(path))
      elif stat.S_ISFIFO(os.lstat(path).st_mode):
        found[path] = "fifo"
      elif os.path.isfile(path):
        found[path] = open(path, "rb").read()
      else:
        found[path] = None
  return found


@pytest.mark.parametrize("output", _params(OUTPUTS))
def test_an_output_that_is_the_input_is_refused(output, inputs, tmp_path, capsys):
  source = inputs[output.input]
  before = _snapshot(os.path.dirname(source))
  code, err = _run(output.argv(source, inputs), capsys)
  assert code != 0 and len(err) == 1 and "input" in err[0], err
  assert _snapshot(os.path.dirname(source)) == before


@pytest.mark.parametrize("output", _params([*OUTPUTS, TRAIN]))
def test_a_folder_where_a_file_is_meant_and_the_reverse_are_refused(
  output, inputs, tmp_path, capsys
):
  out = tmp_path / f"out{output.suffix}"
  if output.kind == "file":
    out.mkdir()
    (out / "notes.txt").write_text("mine")
  else:
    out.write_text("mine")
  before = _snapshot(tmp_path)
  code, err = _run(output.argv(str(out), inputs), capsys)
  assert code != 0 and len(err) == 1 and str(out) in err[0], err
  assert output.name.split()[1].split(".")[0].lower() in err[0].lower(), err  # names the option
  assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("output", _params(OUTPUTS))
def test_a_read_only_destination_is_refused_in_one_line(
  output, inputs, tmp_path, capsys, monkeypatch
):
  read_only = tmp_path / "read_only"
  read_only.mkdir()
  out = read_only / f"out{output.suffix}"
  if AS_ROOT:  # root writes through permission bits: os.access answers as a read-only mount would
    real_access = os.access
    monkeypatch.setattr(
      atomic_files.os,
      "access",
      lambda p, m: False if str(p) == str(read_only) else real_access(p, m),
    )
  else:
    os.chmod(read_only, 0o555)
  try:
    code, err = _run(output.argv(str(out), inputs), capsys)
  finally:
    os.chmod(read_only, 0o755)
  assert code != 0 and len(err) == 1 and "read-only" in err[0] and str(read_only) in err[0], err
  assert os.listdir(read_only) == []


def _drain(fd, done, received):
  """Reads a FIFO's non-blocking read end until `done` and no writer is left."""
  while True:
    ready, _, _ = select.select([fd], [], [], 0.1)
    chunk = b""
    if ready:
      with contextlib.suppress(BlockingIOError):
        chunk = os.read(fd, 1 << 16)
    if chunk:
      received.append(len(chunk))
    elif done.is_set():
      return
    else:
      time.sleep(0.02)  # no writer yet (or between writers)


@pytest.mark.parametrize("output", _params(OUTPUTS))
def test_a_fifo_is_never_renamed_over(output, inputs, tmp_path, capsys):
  fifo = tmp_path / f"pipe{output.suffix}"
  os.mkfifo(fifo)
  reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a writer that opens it does not block
  done, received = threading.Event(), []
  drainer = threading.Thread(target=_drain, args=(reader, done, received), daemon=True)
  drainer.start()
  try:
    code, err = _run(output.argv(str(fifo), inputs), capsys)
  finally:
    done.set()
    drainer.join(10)
    os.close(reader)
  assert "Traceback" not in "\n".join(err), err
  if output.kind == "folder":  # a folder is meant: refused by name
    assert code != 0 and len(err) == 1 and str(fifo) in err[0], err
  elif code == 0:  # written directly into the pipe (convert)
    assert sum(received) > 0
  assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
  assert os.listdir(tmp_path) == [fifo.name]


@pytest.mark.parametrize("output", _params([o for o in OUTPUTS if o.succeeds]))
def test_a_symlink_output_is_written_through(output, inputs, served_weights, tmp_path, capsys):
  real = tmp_path / "real"
  real.mkdir()
  (real / "neighbour.txt").write_text("not the command's")
  target = real / f"target{output.suffix}"
  if output.kind == "file":
    target.write_bytes(b"old")
  link = tmp_path / f"link{output.suffix}"
  link.symlink_to(target)
  code, err = _run(output.succeeds(str(link), inputs), capsys)
  assert "Traceback" not in "\n".join(err) and code in (0, 1), err  # predict: 1, no video read
  assert link.is_symlink() and os.readlink(link) == str(target)
  if output.kind == "file":
    assert target.is_file() and target.read_bytes() != b"old"
  else:
    assert target.is_dir() and os.listdir(target)
  assert sorted(os.listdir(tmp_path)) == ["link" + output.suffix, "real"]
  assert sorted(os.listdir(real)) == sorted(["neighbour.txt", target.name])  # nothing left beside
  assert (real / "neighbour.txt").read_text() == "not the command's"


@pytest.mark.parametrize("output", _params([o for o in OUTPUTS if o.kind == "folder"]))
def test_a_folder_of_the_users_things_is_never_emptied(output, inputs, tmp_path, capsys):
  out = tmp_path / "mine"
  out.mkdir()
  (out / "notes.txt").write_text("keep me")
  _run(output.argv(str(out), inputs), capsys)
  assert (out / "notes.txt").read_text() == "keep me"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_device_output_is_one_line_and_never_renamed_over(inputs, served_weights, capsys):
  predict = next(o for o in OUTPUTS if o.name == "predict --json")
  code, err = _run(predict.succeeds("/dev/full", inputs), capsys)
  assert code == 1 and "--json /dev/full" in err[-1] and "No space left" in err[-1], err
  assert "Traceback" not in "\n".join(err)
  assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
