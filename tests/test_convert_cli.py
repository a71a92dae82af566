"""`jaxres convert` end to end: .pth in, .msgpack / orbax folder out, loads back exactly."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

import jax  # noqa: E402

from jaxres import cli  # noqa: E402
from jaxres.convert import from_torchvision, load_variables  # noqa: E402


@pytest.mark.parametrize("out_name", ["r3d.msgpack", "r3d_ckpt"])
def test_convert_writes_variables_that_load_back_identically(tmp_path, out_name):
  torch.manual_seed(0)
  state_dict = torchvision.models.video.r3d_18(num_classes=3).state_dict()
  torch.save(state_dict, tmp_path / "r3d.pth")
  assert cli.main(["convert", str(tmp_path / "r3d.pth"), str(tmp_path / out_name),
                   "--arch", "r3d_18"]) == 0
  loaded = load_variables(str(tmp_path / out_name))
  expected = from_torchvision(state_dict, "r3d_18")
  assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(expected)
  for a, b in zip(jax.tree_util.tree_leaves(loaded), jax.tree_util.tree_leaves(expected)):
    np.testing.assert_array_equal(a, b)


def test_convert_reports_a_wrong_architecture_and_a_missing_file(tmp_path, capsys):
  torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), tmp_path / "r18.pth")
  assert cli.main(["convert", str(tmp_path / "r18.pth"), str(tmp_path / "x.msgpack"),
                   "--arch", "r3d_18"]) == 1
  err = capsys.readouterr().err
  assert "r18.pth" in err and "unknown keys" in err and "conv1.weight" in err
  assert not (tmp_path / "x.msgpack").exists()
  assert cli.main(["convert", str(tmp_path / "nope.pth"), str(tmp_path / "x.msgpack"),
                   "--arch", "r3d_18"]) == 1
  assert "nope.pth" in capsys.readouterr().err
  assert cli.main(["convert", str(tmp_path / "r18.pth"), str(tmp_path / "no_dir" / "x.msgpack"),
                   "--arch", "resnet18"]) == 1
  assert "does not exist" in capsys.readouterr().err


def test_forward_command_prints_a_prediction(capsys):
  assert cli.main(["forward", "--model", "r3d_tiny", "--frames", "4", "--size", "16",
                   "--num-classes", "5"]) == 0
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
  assert cli.main(["convert", str(tmp_path / "model.pth"), str(tmp_path / "x.msgpack"),
                   "--arch", "r3d_18"]) == 1
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and "model.state_dict()" in err, err
  assert not (tmp_path / "x.msgpack").exists()
