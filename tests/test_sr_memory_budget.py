"""Upscale's window and tile sizes from a memory budget: the choice, the estimate, the real peak."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from xla_env import xla_flags

from jaxres import models
from jaxres.data import video
from jaxres.sr import memory_budget, upscale
from jaxres.sr.upscale import UpscaleOptions

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MiB = 2**20


def _cost(clip_model=True, per_pixel_frame=1000.0, scale=4):
  return memory_budget.WindowCost(
    base_bytes=100 * MiB,
    fixed_xla_bytes=0,
    xla_bytes_per_pixel_frame=per_pixel_frame,
    compile_bytes=0,
    probe_frames=3,
    clip_model=clip_model,
    scale=scale,
  )


def test_whole_frames_and_the_longest_window_when_they_fit():
  plan = memory_budget.choose_options(_cost(), UpscaleOptions(), (64, 64), 2**40)
  assert (plan.options.chunk, plan.options.tile, plan.options.overlap) == (16, 0, 6)
  # 28 frames of 64 x 64 x 1000 B, three times (execution), + host frames: 100 MiB + 344 MB + 14 MB.
  host = 4 * 3 * 28 * (2 * 4096 + 16 * 2 * 4096)
  assert plan.estimate_bytes == 100 * MiB + 3 * 28 * 4096 * 1000 + host
  assert "windows of 16 + 2 x 6 frames, whole frames" in plan.describe()


def test_a_tight_budget_gets_the_tiles_that_fit_and_waste_least():
  cost, frame = _cost(), (540, 960)
  budget = 3 * 2**30
  plan = memory_budget.choose_options(cost, UpscaleOptions(), frame, budget)
  o = plan.options
  assert o.tile and plan.estimate_bytes <= budget

  # Every other candidate that fits throws away at least as much work.
  def waste(chunk, tile):
    return (chunk + 12) / chunk * memory_budget._covered_fraction(frame, tile, 16)

  for chunk in memory_budget.CHUNK_SIZES:
    for tile in memory_budget.TILE_SIZES:
      if cost.estimate(chunk + 12, (min(tile, 540), tile), frame) <= budget:
        assert waste(o.chunk, o.tile) <= waste(chunk, tile) + 1e-3, (chunk, tile, o)


def test_a_short_video_is_one_window_sized_to_its_length():
  cost, frame = _cost(), (540, 960)
  budget = cost.estimate(5, (540, 960), frame)  # whole frames fit for 5 frames, not for 28
  plan = memory_budget.choose_options(cost, UpscaleOptions(), frame, budget, num_frames=5)
  assert plan.options.tile == 0 and plan.estimate_bytes == budget
  assert memory_budget.window_shape(plan.options, frame, True, 5) == (1, 5, 540, 960, 3)
  assert memory_budget.choose_options(cost, UpscaleOptions(), frame, budget).options.tile > 0


def test_per_frame_models_prefer_whole_frames_in_smaller_batches():
  cost, frame = _cost(clip_model=False), (256, 256)
  whole_4 = cost.estimate(4, frame, frame)
  plan = memory_budget.choose_options(cost, UpscaleOptions(overlap=0), frame, whole_4)
  assert (plan.options.chunk, plan.options.tile) == (4, 0)


def test_given_sizes_are_kept_and_nothing_fitting_says_what_to_change():
  cost, frame = _cost(), (540, 960)
  plan = memory_budget.choose_options(cost, UpscaleOptions(tile=128), frame, 2**40)
  assert plan.options.tile == 128 and plan.options.chunk == 16
  plan = memory_budget.choose_options(cost, UpscaleOptions(chunk=2), frame, 2**40)
  assert plan.options.chunk == 2 and plan.options.tile == 0
  with pytest.raises(ValueError, match=r"960x540 frames needs about .* --max-memory 200.0 MiB"):
    memory_budget.choose_options(cost, UpscaleOptions(), frame, 200 * MiB)


def test_the_probe_predicts_xla_bytes_of_larger_windows():
  """XLA's bytes grow with frames x pixels: what the 3 x 64 x 64 probe measures per pixel and
  frame gives a 10 x 96 x 160 window's compiled temporaries, input and output within 5%."""
  model = models.get("recurrent_vsr_tiny", scale=2)
  variables = model.init(jax.random.key(0), jnp.zeros((1, 2, 8, 8, 3)), train=False)
  up = upscale.Upscaler(model, variables, 2, clip_model=True)
  cost = memory_budget.measure_cost(
    up.compile_window, clip_model=True, scale=2, frame_size=(96, 160)
  )
  shape = (1, 10, 96, 160, 3)
  stats = up.compile_window(shape).memory_analysis()
  actual = stats.temp_size_in_bytes + stats.output_size_in_bytes + 4 * np.prod(shape)
  predicted = cost.xla_bytes_per_pixel_frame * 10 * 96 * 160
  assert abs(predicted - actual) / actual < 0.05, (predicted, actual)
  assert cost.fixed_xla_bytes == sum(4 * x.size for x in jax.tree.leaves(variables))


def test_automatic_sizes_upscale_like_given_ones(tmp_path):
  """The sizes chosen from a budget are used: output equal to the same sizes given by hand."""
  model = models.get("edsr_bicubic_tiny", scale=2)
  variables = model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)), train=False)
  lr = np.random.default_rng(0).integers(0, 256, (5, 40, 72, 3), dtype=np.uint8)
  up = upscale.Upscaler(
    model, variables, 2, clip_model=False, options=UpscaleOptions(tile_overlap=8, max_memory=2**40)
  )
  auto = np.stack(list(up.frames(lr)))
  assert (up.options.chunk, up.options.tile) == (16, 0) and up.plan is not None
  given = upscale.upscale_array(
    model, variables, lr, scale=2, clip_model=False, options=UpscaleOptions(chunk=16, tile=0)
  )
  np.testing.assert_array_equal(auto, given)


_BUDGET_SCRIPT = textwrap.dedent("""
    import json, sys, jax, jax.numpy as jnp
    from jaxres import models
    from jaxres.sr import memory_budget, upscale
    model = models.get("basicvsrpp", features=16, num_blocks=1)
    variables = jax.jit(lambda x: model.init(jax.random.key(0, impl="rbg"), x, train=False))(
        jnp.zeros((1, 2, 16, 16, 3)))
    up = upscale.Upscaler(model, variables, 4, clip_model=True,
                          options=upscale.UpscaleOptions(chunk=4, overlap=1, tile_overlap=8,
                                                         max_memory=int(sys.argv[1] or 1)))
    if not sys.argv[1]:  # a budget between the whole frames' estimate and the 64 px tiles'
      cost = memory_budget.measure_cost(up.compile_window, clip_model=True, scale=4,
                                        frame_size=(144, 256))
      whole, tiles = (cost.estimate(6, size, (144, 256)) for size in ((144, 256), (64, 64)))
      print(json.dumps({"budget": (whole + tiles) // 2}))
      sys.exit()
    result = upscale.upscale_video(sys.argv[2], sys.argv[3], model, variables, scale=4,
                                   clip_model=True, options=up.requested, progress=False)
    peak = memory_budget.peak_resident_bytes()
    print(json.dumps({"peak": peak, "tile": result["options"].tile,
                      "estimate": result["plan"].estimate_bytes, "frames": result["frames"]}))
""")


@pytest.mark.slow
def test_upscale_stays_within_max_memory(tmp_path):
  """BasicVSR++ (16 features) on 256x144 frames, with a budget between the whole frames' estimate
  and the smallest tiles' (measured in a first process): tiles are chosen, and the upscaling
  process's peak resident memory (its own `VmHWM`: `ru_maxrss` would carry the test worker's
  peak through `execve`; glibc retaining freed memory, as under `jaxres`) stays below the
  estimate, and the estimate below the budget."""
  from jaxres import host_memory

  src = str(tmp_path / "in.mp4")
  rng = np.random.default_rng(0)
  with video.VideoWriter(src, 25.0) as writer:
    for _ in range(6):  # one window of 4 + 2 x 1 frames
      writer.write(rng.integers(0, 256, (144, 256, 3), dtype=np.uint8))
  env = host_memory.retaining_environ(
    dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(), PYTHONPATH=REPO)
  )

  def run(*args):
    proc = subprocess.run(
      [sys.executable, "-c", _BUDGET_SCRIPT, *args],
      capture_output=True,
      text=True,
      env=env,
      timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])

  budget = run("", "", "")["budget"]
  got = run(str(budget), src, str(tmp_path / "out.mp4"))
  print("budget", budget, got)
  assert got["frames"] == 6 and 0 < got["tile"] < 256
  assert got["peak"] <= got["estimate"] <= budget, (budget, got)
