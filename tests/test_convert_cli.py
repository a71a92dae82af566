"""`jaxres convert` end to end: .pth in, .msgpack / orbax folder out, loads back exactly."""

import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

import jax  # noqa: E402

from jaxres import cli  # noqa: E402
from jaxres.convert import (  # noqa: E402
  UnreadableWeightsError,
  from_pytorchvideo,
  from_torchvision,
  load_torch_state_dict,
  load_variables,
)


@pytest.mark.parametrize("out_name", ["r3d.msgpack", "r3d_ckpt"])
def test_convert_writes_variables_that_load_back_identically(tmp_path, out_name):
  torch.manual_seed(0)
  state_dict = torchvision.models.video.r3d_18(num_classes=3).state_dict()
  torch.save(state_dict, tmp_path / "r3d.pth")
  assert (
    cli.main(["convert", str(tmp_path / "r3d.pth"), str(tmp_path / out_name), "--arch", "r3d_18"])
    == 0
  )
  loaded = load_variables(str(tmp_path / out_name))
  expected = from_torchvision(state_dict, "r3d_18")
  assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(expected)
  for a, b in zip(jax.tree_util.tree_leaves(loaded), jax.tree_util.tree_leaves(expected)):
    np.testing.assert_array_equal(a, b)


def test_convert_reports_a_wrong_architecture_and_a_missing_file(tmp_path, capsys):
  torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), tmp_path / "r18.pth")
  assert (
    cli.main(
      ["convert", str(tmp_path / "r18.pth"), str(tmp_path / "x.msgpack"), "--arch", "r3d_18"]
    )
    == 1
  )
  err = capsys.readouterr().err
  assert "r18.pth" in err and "unknown keys" in err and "conv1.weight" in err
  assert not (tmp_path / "x.msgpack").exists()
  assert (
    cli.main(
      ["convert", str(tmp_path / "nope.pth"), str(tmp_path / "x.msgpack"), "--arch", "r3d_18"]
    )
    == 1
  )
  assert "nope.pth" in capsys.readouterr().err
  assert (
    cli.main(
      [
        "convert",
        str(tmp_path / "r18.pth"),
        str(tmp_path / "no_dir" / "x.msgpack"),
        "--arch",
        "resnet18",
      ]
    )
    == 1
  )
  assert "does not exist" in capsys.readouterr().err


def test_forward_command_prints_a_prediction(capsys):
  assert (
    cli.main(
      ["forward", "--model", "r3d_tiny", "--frames", "4", "--size", "16", "--num-classes", "5"]
    )
    == 0
  )
  out = capsys.readouterr().out
  assert "predicted class" in out and "r3d_tiny" in out


def test_unknown_command_is_refused(capsys):
  assert cli.main(["trian"]) == 2
  assert "unknown command 'trian'" in capsys.readouterr().err


def test_convert_refuses_a_whole_pickled_model_as_its_help_says(tmp_path, capsys):
  with pytest.raises(SystemExit):
    cli.main(["convert", "--help"])
  assert "whole pickled model is refused" in " ".join(capsys.readouterr().out.split())
  torch.save(torch.nn.Linear(2, 3), tmp_path / "model.pth")
  assert (
    cli.main(
      ["convert", str(tmp_path / "model.pth"), str(tmp_path / "x.msgpack"), "--arch", "r3d_18"]
    )
    == 1
  )
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and "model.state_dict()" in err, err
  assert not (tmp_path / "x.msgpack").exists()


def test_torch_state_dicts_are_read_from_pth_and_pyth_files(tmp_path):
  weights = {"blocks.0.conv.weight": torch.ones(2, 3)}
  torch.save(weights, tmp_path / "a.pth")
  torch.save({"model_state": weights, "epoch": 1}, tmp_path / "b.pyth")
  torch.save({"state_dict": weights}, tmp_path / "c.ckpt")
  for name in ("a.pth", "b.pyth", "c.ckpt"):
    loaded = load_torch_state_dict(str(tmp_path / name))
    assert list(loaded) == ["blocks.0.conv.weight"] and loaded["blocks.0.conv.weight"].shape == (
      2,
      3,
    )
  torch.save([1, 2], tmp_path / "d.pth")
  with pytest.raises(UnreadableWeightsError, match="holds no state dict.*found list"):
    load_torch_state_dict(str(tmp_path / "d.pth"))
  with pytest.raises(FileNotFoundError, match="nope.pyth"):
    load_torch_state_dict(str(tmp_path / "nope.pyth"))


@pytest.mark.slow  # builds, saves and converts a 24M-parameter model
def test_convert_reads_a_pytorchvideo_pyth_checkpoint(tmp_path, capsys):
  sys.modules.setdefault(
    "torchvision.transforms.functional_tensor", torchvision.transforms._functional_tensor
  )
  hub = pytest.importorskip("pytorchvideo.models.hub")
  torch.manual_seed(0)
  state_dict = hub.c2d_r50(model_num_class=3).state_dict()
  # PyTorchVideo's model zoo: the state dict under "model_state", beside other entries.
  torch.save({"model_state": state_dict, "epoch": 196, "cfg": "TRAIN: ..."}, tmp_path / "C2D.pyth")
  assert (
    cli.main(
      [
        "convert",
        str(tmp_path / "C2D.pyth"),
        str(tmp_path / "c2d.msgpack"),
        "--arch",
        "c2d_r50",
        "--from",
        "pytorchvideo",
      ]
    )
    == 0
  )
  loaded = load_variables(str(tmp_path / "c2d.msgpack"))
  expected = from_pytorchvideo(state_dict, "c2d_r50")
  assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(expected)
  for a, b in zip(jax.tree_util.tree_leaves(loaded), jax.tree_util.tree_leaves(expected)):
    np.testing.assert_array_equal(a, b)
  capsys.readouterr()
  # A PyTorchVideo arch asked of torchvision weights, and a checkpoint without a state dict.
  assert (
    cli.main(
      ["convert", str(tmp_path / "C2D.pyth"), str(tmp_path / "x.msgpack"), "--arch", "c2d_r50"]
    )
    == 1
  )
  assert "--from torchvision converts" in capsys.readouterr().err
  torch.save({"epoch": 3, "cfg": "x"}, tmp_path / "empty.pyth")
  assert (
    cli.main(
      [
        "convert",
        str(tmp_path / "empty.pyth"),
        str(tmp_path / "x.msgpack"),
        "--arch",
        "c2d_r50",
        "--from",
        "pytorchvideo",
      ]
    )
    == 1
  )
  err = capsys.readouterr().err
  assert "holds no state dict" in err and "epoch, cfg" in err


def test_convert_never_replaces_its_input_or_what_it_did_not_write(tmp_path, capsys):
  torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), tmp_path / "r18.pth")
  weights = str(tmp_path / "r18.pth")
  before = open(weights, "rb").read()
  assert cli.main(["convert", weights, weights, "--arch", "resnet18"]) == 1
  assert "is the input" in capsys.readouterr().err
  assert open(weights, "rb").read() == before
  run = tmp_path / "run"  # a folder of the user's: left as it was
  run.mkdir()
  (run / "notes.txt").write_text("keep me")
  assert cli.main(["convert", weights, str(run), "--arch", "resnet18"]) == 1
  assert "holds other things" in capsys.readouterr().err
  assert os.listdir(run) == ["notes.txt"]
  other = tmp_path / "other.bin"
  other.write_bytes(b"x")
  assert cli.main(["convert", weights, str(other), "--arch", "resnet18"]) == 1
  assert "is an existing file" in capsys.readouterr().err and other.read_bytes() == b"x"
  # Its own checkpoint folder is written again, and a .msgpack the user names is replaced.
  out = str(tmp_path / "ckpt")
  assert cli.main(["convert", weights, out, "--arch", "resnet18"]) == 0
  assert cli.main(["convert", weights, out, "--arch", "resnet18"]) == 0
  (tmp_path / "w.msgpack").write_bytes(b"old")
  assert cli.main(["convert", weights, str(tmp_path / "w.msgpack"), "--arch", "resnet18"]) == 0
  assert (tmp_path / "w.msgpack").read_bytes() != b"old"
  # --overwrite replaces a folder of other things whole (the user said so).
  assert cli.main(["convert", weights, str(run), "--arch", "resnet18", "--overwrite"]) == 0
  assert "notes.txt" not in os.listdir(run) and "_CHECKPOINT_METADATA" in os.listdir(run)
  assert sorted(os.listdir(tmp_path)) == sorted(
    ["r18.pth", "run", "other.bin", "ckpt", "w.msgpack"]
  )  # no staging folders left


def test_convert_writes_through_a_link_and_refuses_read_only_places(tmp_path, capsys, monkeypatch):
  torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), tmp_path / "r18.pth")
  weights = str(tmp_path / "r18.pth")
  (tmp_path / "real").mkdir()
  (tmp_path / "real" / "w.msgpack").write_bytes(b"old")
  (tmp_path / "link.msgpack").symlink_to(tmp_path / "real" / "w.msgpack")
  assert cli.main(["convert", weights, str(tmp_path / "link.msgpack"), "--arch", "resnet18"]) == 0
  assert (tmp_path / "link.msgpack").is_symlink()
  assert load_variables(str(tmp_path / "real" / "w.msgpack"))["params"]["fc"]["kernel"].shape == (
    512,
    3,
  )
  from jaxres import atomic_files

  real_access = os.access
  read_only = str(tmp_path / "real")  # as chmod 555 (root passes permission bits, not os.access)
  monkeypatch.setattr(
    atomic_files.os, "access", lambda p, m: False if str(p) == read_only else real_access(p, m)
  )
  for out in ("x.msgpack", "ckpt"):
    assert cli.main(["convert", weights, os.path.join(read_only, out), "--arch", "resnet18"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"folder {read_only} is read-only" in err, err
  assert os.listdir(read_only) == ["w.msgpack"]


def test_convert_help_lists_every_architecture_the_converters_accept(capsys):
  from jaxres import weights
  from jaxres.convert import ARCHS, basicsr, pytorchvideo_archs

  with pytest.raises(SystemExit):
    cli.main(["convert", "--help"])
  help_text = " ".join(capsys.readouterr().out.split())
  listed = {
    source: help_text.split(f"{source}: ")[1].split(";")[0].split(" (required)")[0].split(", ")
    for source in ("torchvision", "pytorchvideo", "mmaction2", "basicsr")
  }
  assert set(listed["torchvision"]) == set(ARCHS)
  assert set(listed["pytorchvideo"]) == set(pytorchvideo_archs())
  assert listed["mmaction2"] == ["tsm_r50"] and set(listed["basicsr"]) == set(basicsr.ARCHS)
  for name in weights.names():  # every published checkpoint's file converts with its --from
    entry = weights.get(name)
    if entry.converter == "jaxres":  # jaxres's own variables (tests register some): no converting
      continue
    assert entry.arch in listed[entry.converter], (name, entry.converter)
