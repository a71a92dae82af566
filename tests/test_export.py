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
  finally:
    server.stop()
  assert "exported r3d_tiny.export_test (batch 3" in capsys.readouterr().out
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
