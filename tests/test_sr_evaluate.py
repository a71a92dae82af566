"""`jaxres.sr.evaluate` on frame folders (Vid4/REDS4-style tables): per-sequence PSNR/SSIM (Y and RGB,
border crop) equal to BasicSR 1.4.2's `calculate_psnr` / `calculate_ssim` and scikit-image; its
command line `jaxres evaluate`, also run as `python -m jaxres.sr.evaluate`."""

import os
import runpy
import sys
import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxres import cli
from jaxres.models.sr import bicubic_upsample
from jaxres.sr import evaluate

SCALE = 4
SHIFT = 3.0 / 255  # the "model": bicubic plus a constant, so it differs from the bicubic baseline


class ShiftedBicubic(nn.Module):
  """A clip model `[B, T, h, w, 3] -> [B, T, 4h, 4w, 3]`: bicubic upsampling + a learned offset."""

  @nn.compact
  def __call__(self, x, train: bool = False):
    return bicubic_upsample(x, SCALE) + self.param("shift", nn.initializers.constant(SHIFT), ())


def _smooth(rng, t, size):
  x = rng.random((t, size // 4, size // 4, 3))
  x = np.asarray(bicubic_upsample(jnp.asarray(x, jnp.float32), 4))  # textured but SSIM-friendly
  return np.clip(np.round(x * 255), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def vid4(tmp_path_factory):
  """Vid4-like GT/<seq>/%04d.png (3 frames of 32x32) and BIx4/<seq> (8x8)."""
  root = tmp_path_factory.mktemp("Vid4")
  rng = np.random.default_rng(0)
  data = {}
  for seq in ("calendar", "city", "walk"):
    hr = _smooth(rng, 3, 32)
    lr = np.clip(np.round(hr.reshape(3, 8, 4, 8, 4, 3).mean((2, 4))), 0, 255).astype(np.uint8)
    for kind, clip in (("GT", hr), ("BIx4", lr)):
      os.makedirs(root / kind / seq)
      for i, frame in enumerate(clip):
        Image.fromarray(frame).save(root / kind / seq / f"{i:04d}.png")
    data[seq] = hr, lr
  return str(root), data


def _basicsr_metrics():
  if "torchvision" not in sys.modules and "tensorflow" in sys.modules:
    # Here torchvision 0.29 segfaults when imported after TensorFlow. In the suite it is imported
    # first, when tests/test_convert_cli.py and test_parity_torchvision.py are collected.
    pytest.skip(
      "torchvision cannot be imported after TensorFlow in one process; run this test "
      "with the suite or alone"
    )
  torchvision = pytest.importorskip("torchvision")
  sys.modules.setdefault(
    "torchvision.transforms.functional_tensor", torchvision.transforms._functional_tensor
  )
  return pytest.importorskip("basicsr.metrics.psnr_ssim")


@pytest.fixture(scope="module")
def model_and_rows(vid4):
  root, _ = vid4
  model = ShiftedBicubic()
  variables = model.init(jax.random.key(0), np.zeros((1, 1, 8, 8, 3), np.float32))
  rows = evaluate.evaluate_frames(
    model,
    variables,
    os.path.join(root, "GT"),
    scale=SCALE,
    clip_model=True,
    lr_root=os.path.join(root, "BIx4"),
  )
  return model, variables, rows


def _predictions(lr):
  """What the model and the bicubic baseline output, as saved 8-bit frames."""
  bic = np.asarray(bicubic_upsample(jnp.asarray(lr, jnp.float32) / 255, SCALE))
  to_uint8 = lambda x: np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)
  return {"": to_uint8(bic + SHIFT), "bicubic_": to_uint8(bic)}


def _check(rows, data, reference):
  """`reference(pred, hr, metric, y) -> float` for one frame; rows must hold its frame means."""
  assert [r["name"] for r in rows] == ["calendar", "city", "walk"]
  for row in rows:
    hr, lr = data[row["name"]]
    for prefix, pred in _predictions(lr).items():
      for metric in ("psnr", "ssim"):
        for y, suffix in ((False, ""), (True, "_y")):
          want = np.mean([reference(p, h, metric, y) for p, h in zip(pred, hr)])
          np.testing.assert_allclose(
            row[f"{prefix}{metric}{suffix}"],
            want,
            atol=2e-3 if metric == "psnr" else 2e-5,
            err_msg=f"{row['name']} {prefix}{metric}{suffix}",
          )
    assert row["frames"] == 3 and row["psnr_y"] < row["bicubic_psnr_y"]  # the shift costs dB


def test_per_sequence_table_equals_scikit_image(vid4, model_and_rows):
  skm = pytest.importorskip("skimage.metrics")
  _, data = vid4
  rows = model_and_rows[2]

  def reference(pred, hr, metric, y):
    # Border crop of the scale; Y = 16 + 65.481 R + 128.553 G + 24.966 B for RGB in [0, 1].
    a, b = (im[SCALE:-SCALE, SCALE:-SCALE].astype(np.float64) for im in (pred, hr))
    if y:
      a, b = (16 + im / 255 @ np.array([65.481, 128.553, 24.966]) for im in (a, b))
    if metric == "psnr":
      return skm.peak_signal_noise_ratio(b, a, data_range=255)
    return skm.structural_similarity(
      a,
      b,
      gaussian_weights=True,
      sigma=1.5,
      data_range=255,
      use_sample_covariance=False,
      channel_axis=None if y else -1,
    )

  _check(rows, data, reference)
  table = evaluate.format_table(rows)
  mean = evaluate.mean_row(rows)
  np.testing.assert_allclose(mean["psnr_y"], np.mean([r["psnr_y"] for r in rows]))
  assert table.splitlines()[1].split()[0] == "calendar"
  assert table.splitlines()[-1].split()[:2] == ["mean", f"{mean['psnr_y']:.2f}"]


@pytest.mark.slow  # imports torch for BasicSR
def test_per_sequence_table_equals_basicsr(vid4, model_and_rows):
  psnr_ssim = _basicsr_metrics()
  _, data = vid4
  fns = {"psnr": psnr_ssim.calculate_psnr, "ssim": psnr_ssim.calculate_ssim}
  # BasicSR reads BGR (cv2): its Y is 16 + 24.966 B + 128.553 G + 65.481 R on the flipped order.
  _check(
    model_and_rows[2],
    data,
    lambda pred, hr, metric, y: fns[metric](
      pred[..., ::-1], hr[..., ::-1], crop_border=SCALE, test_y_channel=y
    ),
  )


def test_selected_sequences_degraded_on_the_fly_and_errors(vid4, model_and_rows, capsys):
  root, data = vid4
  model, variables, _ = model_and_rows
  rows = evaluate.evaluate_frames(
    model,
    variables,
    os.path.join(root, "GT"),
    scale=SCALE,
    clip_model=True,
    sequences=["walk"],
    crop=0,
  )
  hr = data["walk"][0]
  ref = evaluate.evaluate_videos(
    model, variables, [hr], scale=SCALE, clip_model=True, crop=0, options=None
  )
  assert [r["name"] for r in rows] == ["walk"]
  assert {k: rows[0][k] for k in ref[0]} == ref[0]
  with pytest.raises(FileNotFoundError, match="nope"):
    evaluate.evaluate_frames(
      model, variables, os.path.join(root, "GT"), scale=SCALE, clip_model=True, sequences=["nope"]
    )
  no_run = os.path.join(root, "no_run")
  assert cli.main(["evaluate", "--checkpoint", no_run, "--hr", os.path.join(root, "GT")]) == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("jaxres evaluate: ") and "no_run" in err[0]


def _python_m_jaxres_sr_evaluate(args):
  """Runs `python -m jaxres.sr.evaluate ARGS` in this process; returns its exit code."""
  with warnings.catch_warnings():  # runpy warns that the test already imported the module
    warnings.simplefilter("ignore", RuntimeWarning)
    with pytest.raises(SystemExit) as exit_:
      sys.argv = ["python -m jaxres.sr.evaluate", *args]
      runpy.run_module("jaxres.sr.evaluate", run_name="__main__")
  return exit_.value.code


@pytest.mark.parametrize("form", ["jaxres evaluate", "python -m jaxres.sr.evaluate"])
def test_command_line_prints_the_per_sequence_table(
  vid4, model_and_rows, monkeypatch, capsys, form
):
  from jaxres.sr import checkpoint

  root, _ = vid4
  model, variables, rows = model_and_rows
  loaded = checkpoint.LoadedModel(
    model=model, variables=variables, name="shifted_bicubic", scale=SCALE, clip_model=True, step=7
  )
  monkeypatch.setattr(checkpoint, "load_sr_model", lambda workdir, config=None: loaded)
  monkeypatch.setattr(sys, "argv", list(sys.argv))
  args = [
    "--checkpoint",
    "run",
    "--hr",
    os.path.join(root, "GT"),
    "--lr",
    os.path.join(root, "BIx4"),
    "--sequences",
    "city",
    "walk",
  ]
  if form == "jaxres evaluate":
    assert cli.main(["evaluate", *args]) == 0
  else:
    assert _python_m_jaxres_sr_evaluate(args) == 0
  out = capsys.readouterr().out.splitlines()
  assert out[0].startswith("shifted_bicubic x4 (step 7) on 2 sequences of") and "crop 4" in out[0]
  by_name = {r["name"]: r for r in rows}
  assert [line.split()[0] for line in out[2:]] == ["city", "walk", "mean"]
  for line in out[2:4]:
    name, psnr_y = line.split()[:2]
    assert psnr_y == f"{by_name[name]['psnr_y']:.2f}"
