"""`jaxres export` / `jaxres.export`: the artefacts reload without jaxres and give the live logits."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from model_init import init_variables

from jaxres import cli, export, models


@pytest.fixture(scope="module")
def tiny():
  model = models.get("r3d_tiny", num_classes=5)
  x = np.random.default_rng(0).normal(size=(3, 4, 16, 16, 3)).astype(np.float32)
  variables = init_variables(model, x[:1], train=False)
  return model, variables, x


def test_fixed_batch_export_gives_the_live_logits_and_refuses_other_batches(tiny, tmp_path):
  model, variables, x = tiny
  paths = export.export_model(
    model,
    variables,
    str(tmp_path),
    input_shape=(4, 16, 16, 3),
    batch=2,
    platforms=["cpu"],
    metadata={"class_names": list("abcde")},
  )
  call, spec = export.load_exported(str(tmp_path))
  assert spec["input"]["shape"] == [2, 4, 16, 16, 3] and spec["output"]["shape"] == [2, 5]
  assert (
    spec["class_names"] == list("abcde")
    and os.path.basename(paths["exported"]) == "model.jax_exported"
  )
  live = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x[:2])
  np.testing.assert_allclose(np.asarray(call(x[:2])), np.asarray(live), rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match="shape"):
    call(x)  # traced for batch 2
  with pytest.raises(FileNotFoundError, match="jaxres export"):
    export.load_exported(str(tmp_path / "nothing"))


@pytest.mark.slow  # compiles the bfloat16 program twice
def test_bfloat16_export_computes_in_bfloat16(tiny, tmp_path):
  model, variables, x = tiny
  export.export_model(
    model,
    variables,
    str(tmp_path),
    input_shape=(4, 16, 16, 3),
    batch=None,
    dtype="bfloat16",
    platforms=["cpu"],
  )
  call, spec = export.load_exported(str(tmp_path))
  out = np.asarray(call(x))
  assert out.dtype == np.float32 and spec["compute_dtype"] == "bfloat16"
  bf16 = model.clone(dtype=jnp.bfloat16, conv_lowering="native")
  live = jax.jit(lambda v, x: bf16.apply(v, x, train=False))(variables, x).astype(jnp.float32)
  # XLA may keep excess precision between bfloat16 ops differently in the two programs.
  np.testing.assert_allclose(out, np.asarray(live), rtol=0, atol=2e-3)
  f32 = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
  assert 1e-6 < np.abs(out - np.asarray(f32)).max() < 2e-3  # really bfloat16, and close


@pytest.mark.slow  # trains a tiny run (shared with tests/test_predict.py) and writes a SavedModel
def test_run_export_polymorphic_batch_saved_model_and_loading_without_jaxres(
  tiny_classifier_run, tmp_path, capsys
):
  workdir, _ = tiny_classifier_run
  out = str(tmp_path / "exported")
  assert (
    cli.main(
      ["export", "--checkpoint", workdir, "--out", out, "--polymorphic-batch", "--saved-model"]
    )
    == 0
  )
  printed = capsys.readouterr().out
  for name in ("model.jax_exported", "model.json", "saved_model"):
    assert os.path.join(out, name) in printed
  spec = json.load(open(os.path.join(out, "model.json")))
  assert spec["input"]["shape"] == [None, 4, 16, 16, 3] and spec["class_names"] == [
    "down",
    "left",
    "right",
    "up",
  ]
  assert spec["normalization"]["mean"] == [0.43216, 0.394666, 0.37645]
  assert set(spec["platforms"]) == {"cpu", "cuda", "tpu"}

  from jaxres.train.run import load_run

  run = load_run(workdir)
  live = jax.jit(lambda v, x: run.model.apply(v, x, train=False))
  call, _ = export.load_exported(out)
  clips = np.random.default_rng(1).normal(size=(3, 4, 16, 16, 3)).astype(np.float32)
  for n in (1, 3):  # batch sizes other than any traced one
    np.testing.assert_allclose(
      np.asarray(call(clips[:n])), np.asarray(live(run.variables, clips[:n])), rtol=1e-5, atol=1e-5
    )

  import tensorflow as tf

  serving = tf.saved_model.load(os.path.join(out, "saved_model")).signatures["serving_default"]
  got = serving(clips=tf.constant(clips[:2]))["outputs"].numpy()
  np.testing.assert_allclose(got, np.asarray(live(run.variables, clips[:2])), rtol=1e-5, atol=1e-5)

  # In a process where jaxres and flax cannot be imported: jax.export alone runs it.
  np.save(tmp_path / "clips.npy", clips)
  np.save(tmp_path / "expected.npy", np.asarray(live(run.variables, clips)))
  script = textwrap.dedent(f"""
      import sys
      sys.modules["jaxres"] = sys.modules["flax"] = None
      import jax, numpy as np
      exported = jax.export.deserialize(bytearray(open({out!r} + "/model.jax_exported", "rb").read()))
      got = np.asarray(exported.call(np.load({str(tmp_path / "clips.npy")!r})))
      np.testing.assert_allclose(got, np.load({str(tmp_path / "expected.npy")!r}), rtol=1e-5, atol=1e-5)
      print("ok", got.shape)
  """)
  result = subprocess.run(
    [sys.executable, "-c", script],
    capture_output=True,
    text=True,
    timeout=300,
    env={**os.environ, "PYTHONPATH": ""},
  )
  assert result.returncode == 0 and "ok (3, 4)" in result.stdout, result.stderr[-2000:]


@pytest.mark.slow  # serves, converts and exports (~12 s)
def test_export_published_weights_by_name(tiny, tmp_path, monkeypatch, capsys):
  """Weights served from 127.0.0.1 and exported by name: the artefact gives the live logits at the
  entry's clip, and model.json carries its class names and normalisation."""
  from local_server import LocalServer

  from jaxres import weights
  from jaxres.convert import save_variables

  model, variables, x = tiny
  served = tmp_path / "served"
  served.mkdir()
  save_variables(jax.device_get(variables), str(served / "tiny.msgpack"))
  monkeypatch.setenv("JAXRES_CACHE_DIR", str(tmp_path / "cache"))
  server = LocalServer(served)
  try:
    weights.register(
      "r3d_tiny.export_test",
      url=f"{server.url}/tiny.msgpack",
      arch="r3d_tiny",
      converter="jaxres",
      model_kwargs={"num_classes": 5},
      classes=list("abcde"),
      preprocessing={
        "num_frames": 4,
        "crop_size": 16,
        "mean": (0.5, 0.5, 0.5),
        "std": (0.25, 0.25, 0.25),
      },
      overwrite=True,
    )
    out = str(tmp_path / "exported")
    assert (
      cli.main(
        [
          "export",
          "--weights",
          "r3d_tiny.export_test",
          "--out",
          out,
          "--batch",
          "3",
          "--platforms",
          "cpu",
        ]
      )
      == 0
    )
    assert "exported r3d_tiny.export_test (batch 3" in capsys.readouterr().out
    before = open(os.path.join(out, "model.json")).read()
    (tmp_path / "labels.txt").write_text("a\nb\nc\n")  # 3 names for 5 classes
    assert (
      cli.main(
        ["export", "--weights", "r3d_tiny.export_test", "--out", out, "--platforms", "cpu"]
        + ["--labels", str(tmp_path / "labels.txt")]
      )
      == 1
    )
    err = capsys.readouterr().err.strip()
    assert (
      err == "jaxres export: 3 class names given, the model has 5 classes; give one name per class."
    )
    assert open(os.path.join(out, "model.json")).read() == before  # the earlier export kept
  finally:
    server.stop()
  meta = json.load(open(os.path.join(out, "model.json")))
  assert meta["class_names"] == list("abcde") and meta["weights"] == "r3d_tiny.export_test"
  assert meta["normalization"]["std"] == [0.25] * 3
  exported = jax.export.deserialize(open(os.path.join(out, "model.jax_exported"), "rb").read())
  np.testing.assert_allclose(
    exported.call(x), model.apply(variables, x, train=False), rtol=1e-5, atol=1e-5
  )
  with pytest.raises(SystemExit):  # argparse's usage error: --step is a run's
    cli.main(["export", "--weights", "r3d_tiny.export_test", "--out", out, "--step", "3"])
  assert "--step belongs to --checkpoint, not --weights" in capsys.readouterr().err


def _export_tiny(tiny, out, **kwargs):
  model, variables, _ = tiny
  return export.export_model(
    model, variables, str(out), input_shape=(4, 16, 16, 3), platforms=["cpu"], **kwargs
  )


def test_exporting_again_replaces_the_earlier_export_whole(tiny, tmp_path, monkeypatch):
  out = tmp_path / "exported"
  _export_tiny(tiny, out, metadata={"class_names": list("abcde")})
  (out / "saved_model").mkdir()  # as an earlier --saved-model export left it
  (out / "saved_model" / "saved_model.pb").write_bytes(b"old graph")
  _export_tiny(tiny, out, batch=2)
  assert sorted(os.listdir(out)) == ["model.jax_exported", "model.json"]  # no stale saved_model/
  assert json.load(open(out / "model.json"))["input"]["shape"][0] == 2
  assert os.listdir(tmp_path) == ["exported"]  # no staging folder left
  before = {name: (out / name).read_bytes() for name in os.listdir(out)}
  calls = []

  def dies_on_the_second_file(path, data):
    calls.append(path)
    if len(calls) == 2:
      raise OSError("killed while writing model.json")
    with open(path, "w" if isinstance(data, str) else "wb") as f:
      f.write(data)

  monkeypatch.setattr(export, "write_atomic", dies_on_the_second_file)
  with pytest.raises(OSError, match="killed"):
    _export_tiny(tiny, out, batch=3)
  assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before  # old, whole
  assert os.listdir(tmp_path) == ["exported"]


def test_a_folder_of_other_things_is_refused_before_work_unless_overwrite(tiny, tmp_path):
  out = tmp_path / "mine"
  out.mkdir()
  (out / "notes.txt").write_text("keep me")
  with pytest.raises(ValueError, match="holds other things.*--overwrite"):
    _export_tiny(tiny, out)
  assert os.listdir(out) == ["notes.txt"]
  _export_tiny(tiny, out, overwrite=True)
  assert sorted(os.listdir(out)) == ["model.jax_exported", "model.json"]


@pytest.mark.parametrize(
  "options, message",
  [
    (["--batch", "0"], "--batch must be >= 1"),
    (["--batch", "-2"], "--batch must be >= 1"),
    (["--platforms", "foo"], "--platforms takes some of cpu, cuda, rocm, tpu"),
    (["--platforms", "cpu,gpu"], "not gpu"),
  ],
)
def test_bad_options_are_usage_errors_before_any_work(tmp_path, capsys, options, message):
  out = tmp_path / "out"
  with pytest.raises(SystemExit) as exit_:
    cli.main(  # --verbose: no TensorFlow start-up to hide, so no import of it before the check
      ["export", "--checkpoint", str(tmp_path / "no_run"), "--out", str(out), "--verbose", *options]
    )
  assert exit_.value.code == 2 and message in capsys.readouterr().err
  assert not out.exists()
  with pytest.raises(ValueError, match="batch must be an integer >= 1"):
    export.check_export_options(str(out), batch=0)
  with pytest.raises(ValueError, match="platforms must be some of cpu, cuda, rocm, tpu"):
    export.check_export_options(str(out), platforms=["foo"])


def test_out_that_is_a_file_or_read_only_is_refused_in_one_line(tmp_path, capsys, monkeypatch):
  existing = tmp_path / "model.bin"
  existing.write_bytes(b"mine")
  argv = ["export", "--checkpoint", str(tmp_path / "no_run"), "--out"]
  assert cli.main([*argv, str(existing)]) == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and "--out" in err and "is an existing file" in err, err
  assert existing.read_bytes() == b"mine"
  run = tmp_path / "run"
  run.mkdir()
  assert cli.main(["export", "--checkpoint", str(run), "--out", str(tmp_path)]) == 2
  assert "holds the input" in capsys.readouterr().err
  # A read-only folder (os.access says so; as root only a read-only filesystem would).
  from jaxres import atomic_files

  real_access = os.access
  monkeypatch.setattr(
    atomic_files.os,
    "access",
    lambda p, m: False if str(p) == str(tmp_path) else real_access(p, m),
  )
  assert cli.main([*argv, str(tmp_path / "exported")]) == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and f"folder {tmp_path} is read-only" in err, err
  assert not (tmp_path / "exported").exists()
