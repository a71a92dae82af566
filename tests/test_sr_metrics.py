"""PSNR/SSIM against hand-computed values and scikit-image; the degradation's definition."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxres.tasks import degradation
from jaxres.tasks import image_metrics as metrics


def _pair(shape=(2, 40, 36, 3), noise=0.05, seed=0):
  rng = np.random.default_rng(seed)
  hr = rng.random(shape)
  # Smooth the reference so SSIM is in its usual range.
  hr = (hr + np.roll(hr, 1, -2) + np.roll(hr, 1, -3) + np.roll(hr, (1, 1), (-3, -2))) / 4
  sr = np.clip(hr + noise * rng.standard_normal(shape), 0, 1)
  return sr.astype(np.float32), hr.astype(np.float32)


def test_psnr_hand_computed():
  x = np.full((8, 8, 3), 0.5, np.float32)
  y = np.full((8, 8, 3), 0.6, np.float32)
  # MSE = (0.1 * 255)^2 -> PSNR = 20 log10(255 / 25.5) = 20 dB.
  np.testing.assert_allclose(metrics.psnr(x, y), 20.0, atol=1e-4)
  # Only one pixel of one channel differs by 255 -> MSE = 255^2 / 192.
  z = np.zeros((8, 8, 3), np.float32)
  w = z.copy()
  w[3, 4, 1] = 1.0
  np.testing.assert_allclose(metrics.psnr(z, w), 10 * np.log10(192), atol=1e-4)
  # ... and the border crop removes it when it lies within `crop` pixels of the edge.
  w2 = z.copy()
  w2[0, 4, 1] = 1.0
  assert np.isinf(metrics.psnr(z, w2, crop=1))


def test_y_channel_is_bt601_studio_swing():
  np.testing.assert_allclose(metrics.rgb_to_y(np.ones((1, 1, 3), np.float32)), 235.0, atol=1e-3)
  np.testing.assert_allclose(metrics.rgb_to_y(np.zeros((1, 1, 3), np.float32)), 16.0, atol=1e-6)
  np.testing.assert_allclose(
    metrics.rgb_to_y(np.array([[[255, 0, 0]]], np.uint8)), 16 + 65.481, atol=1e-3
  )
  # A uniform Y offset of 2.19 (a shift of 0.01 in R, G and B): PSNR = 20 log10(255 / 2.19).
  x = np.full((16, 16, 3), 0.3, np.float32)
  np.testing.assert_allclose(
    metrics.psnr(x + 0.01, x, y_channel=True), 20 * np.log10(255 / 2.19), atol=1e-3
  )


def test_ssim_of_identical_images_is_one_and_hand_computed_constant_case():
  _, hr = _pair()
  np.testing.assert_allclose(metrics.ssim(hr, hr), 1.0, atol=1e-5)
  # Constant images a, b: sigma = 0, SSIM = (2ab + C1) / (a^2 + b^2 + C1) with values in 0..255.
  a, b, c1 = 0.4 * 255, 0.5 * 255, (0.01 * 255) ** 2
  x = np.full((12, 12, 3), 0.4, np.float32)
  y = np.full((12, 12, 3), 0.5, np.float32)
  np.testing.assert_allclose(metrics.ssim(x, y), (2 * a * b + c1) / (a * a + b * b + c1), atol=1e-6)


@pytest.mark.parametrize("y_channel", [False, True])
@pytest.mark.parametrize("crop", [0, 4])
def test_against_scikit_image(crop, y_channel):
  skm = pytest.importorskip("skimage.metrics")
  sr, hr = _pair()
  ours_psnr = np.asarray(metrics.psnr(sr, hr, crop=crop, y_channel=y_channel))
  ours_ssim = np.asarray(metrics.ssim(sr, hr, crop=crop, y_channel=y_channel))
  assert ours_psnr.shape == ours_ssim.shape == (2,)
  for i in range(2):
    a, b = sr[i].astype(np.float64), hr[i].astype(np.float64)
    if crop:
      a, b = a[crop:-crop, crop:-crop], b[crop:-crop, crop:-crop]
    if y_channel:
      to_y = lambda im: 16 + im @ np.array([65.481, 128.553, 24.966])
      a, b, kw = to_y(a), to_y(b), {}
    else:
      a, b, kw = a * 255, b * 255, {"channel_axis": -1}
    ref_psnr = skm.peak_signal_noise_ratio(b, a, data_range=255)
    ref_ssim = skm.structural_similarity(
      a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, **kw
    )
    np.testing.assert_allclose(ours_psnr[i], ref_psnr, atol=1e-4)
    np.testing.assert_allclose(ours_ssim[i], ref_ssim, atol=2e-5)


def test_metrics_keep_leading_axes_and_jit():
  sr, hr = _pair((2, 3, 24, 24, 3))
  f = jax.jit(lambda a, b: (metrics.psnr(a, b, crop=2, y_channel=True), metrics.ssim(a, b, crop=2)))
  p, s = f(sr, hr)
  assert p.shape == s.shape == (2, 3)
  np.testing.assert_allclose(
    p[1, 2], metrics.psnr(sr[1, 2], hr[1, 2], crop=2, y_channel=True), rtol=1e-5
  )


def test_metric_errors():
  with pytest.raises(ValueError, match="differ"):
    metrics.psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))
  with pytest.raises(ValueError, match="11x11"):
    metrics.ssim(np.zeros((12, 12, 3)), np.zeros((12, 12, 3)), crop=1)


def test_degradation_is_antialiased_bicubic_and_aligned():
  rng = np.random.default_rng(0)
  hr = rng.random((2, 3, 34, 41, 3)).astype(np.float32)
  lr = degradation.degrade(hr, degradation.Degradation(scale=4, quantize=False))
  assert lr.shape == (2, 3, 8, 10, 3)  # mod-cropped to 32x40
  ref = jax.image.resize(hr[:, :, :32, :40], (2, 3, 8, 10, 3), "bicubic", antialias=True)
  np.testing.assert_allclose(lr, np.clip(ref, 0, 1), atol=1e-6)
  # A constant frame stays constant (weights are renormalised at the edges).
  flat = degradation.degrade(np.full((16, 16, 3), 0.25, np.float32), degradation.Degradation(2))
  np.testing.assert_allclose(flat, np.round(0.25 * 255) / 255, atol=1e-6)
  # Antialiasing: the finest checkerboard averages out instead of aliasing.
  checker = (np.indices((32, 32)).sum(0) % 2).astype(np.float32)[..., None].repeat(3, -1)
  lr = degradation.degrade(checker, degradation.Degradation(4, quantize=False))
  assert float(jnp.abs(lr[2:-2, 2:-2] - 0.5).max()) < 0.02


def test_degradation_quantises_blurs_and_adds_noise():
  rng = np.random.default_rng(1)
  hr = rng.random((16, 16, 3)).astype(np.float32)
  lr = np.asarray(degradation.degrade(hr, degradation.Degradation(2)))
  np.testing.assert_allclose(lr * 255, np.round(lr * 255), atol=1e-4)
  sharp = degradation.degrade(hr, degradation.Degradation(2, quantize=False))
  blurred = degradation.degrade(hr, degradation.Degradation(2, blur_sigma=1.5, quantize=False))
  assert float(jnp.std(blurred)) < float(jnp.std(sharp))
  with pytest.raises(ValueError, match="rng"):
    degradation.degrade(hr, degradation.Degradation(2, noise_sigma=0.05))
  noisy = degradation.degrade(
    hr, degradation.Degradation(2, noise_sigma=0.05, quantize=False), rng=jax.random.key(0)
  )
  assert 0.02 < float(jnp.std(noisy - sharp)) < 0.06


def test_random_aligned_patches():
  hr = jnp.arange(2 * 2 * 24 * 24 * 3, dtype=jnp.float32).reshape(2, 2, 24, 24, 3)
  patches = degradation.random_aligned_patches(hr, 4, 3, jax.random.key(0))
  assert patches.shape == (2, 2, 12, 12, 3)
  for b in range(2):
    y, x = np.argwhere(np.asarray(hr[b, 0, ..., 0]) == float(patches[b, 0, 0, 0, 0]))[0]
    assert y % 3 == 0 and x % 3 == 0
    np.testing.assert_array_equal(patches[b], hr[b, :, y : y + 12, x : x + 12])
