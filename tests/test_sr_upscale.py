"""Chunked/tiled upscaling equals whole-video upscaling; video I/O; bad input; flat memory."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from model_init import init_variables
from xla_env import xla_flags

from jaxres import models
from jaxres.data import video
from jaxres.sr import footage, upscale
from jaxres.sr.upscale import UpscaleOptions, spans, upscale_array

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize(
  "n,window,overlap", [(1, 4, 1), (10, 6, 1), (20, 6, 2), (7, 7, 3), (33, 9, 4), (100, 5, 0)]
)
def test_spans_partition_with_context(n, window, overlap):
  result = spans(n, window, overlap)
  kept = [i for _, _, a, b in result for i in range(a, b)]
  assert kept == list(range(n))
  for start, end, a, b in result:
    assert end - start == min(window, n) and 0 <= start and end <= n
    assert a - start >= overlap or start == 0
    assert end - b >= overlap or end == n


def _lr_clip(frames=20, size=12, seed=3):
  return footage.generate_clips(seed, 1, frames, size, size)[0].astype(np.float32) / 255.0


def _contractive_recurrent(lr, alpha=0.25):
  """recurrent_vsr_tiny with a random tail (output depends on the features) and its recurrence damped.

  Scaling the hidden-state input of each propagation step by `alpha` makes the influence of a frame
  decay geometrically with distance, as in a trained model that forgets (see jaxres.sr.upscale).
  """
  # XLA's convolutions: these tests are about windows, and each window length compiles anew, which
  # takes 3x as long with the CPU's Winograd lowering of the unrolled frames.
  model = models.get("recurrent_vsr_tiny", scale=2, conv_lowering="native")
  variables = model.init(jax.random.key(0), jnp.asarray(lr[None, :2]), train=False)

  def edit(path, x):
    name = jax.tree_util.keystr(path)
    if "tail" in name and "kernel" in name:
      return 0.1 * jax.random.normal(jax.random.key(1), x.shape)
    if "fuse" in name and "kernel" in name:
      return x.at[:, :, 3:, :].multiply(alpha)
    return x

  return model, jax.tree_util.tree_map_with_path(edit, variables)


@pytest.mark.slow  # compiles a recurrent model for whole and chunked runs (~20 s)
def test_recurrent_chunked_upscale_matches_whole_video():
  lr = _lr_clip(frames=20)
  model, variables = _contractive_recurrent(lr)
  whole = np.asarray(jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, lr[None])[0])
  errors = []
  for overlap in (0, 3, 6):
    out = upscale_array(
      model,
      variables,
      lr,
      scale=2,
      clip_model=True,
      options=UpscaleOptions(chunk=4, overlap=overlap),
    )
    assert out.shape == whole.shape
    errors.append(float(np.abs(out - whole).max()))
  # The overlap handles the chunk boundaries: the error falls geometrically with it...
  assert all(a > b for a, b in zip(errors, errors[1:])), errors
  assert errors[0] > 1e-3 and errors[-1] < 1e-5, errors
  # ... and is zero when a window spans the video (the last window is moved back, not padded).
  out = upscale_array(
    model, variables, lr, scale=2, clip_model=True, options=UpscaleOptions(chunk=16, overlap=2)
  )
  np.testing.assert_allclose(out, whole, atol=1e-5)


def test_per_frame_model_chunks_and_tiles_exactly():
  lr = _lr_clip(frames=7, size=30)
  model = models.get("edsr_bicubic_tiny", scale=3)
  variables = init_variables(model, lr[:1], train=False)
  variables = jax.tree_util.tree_map(
    lambda x: x + 0.02 * jax.random.normal(jax.random.key(2), x.shape), variables
  )
  whole = np.asarray(jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, lr))
  # Receptive field of edsr_bicubic_tiny: 7 convs at LR (7 px) plus the bicubic taps (2 px): overlap 10.
  options = UpscaleOptions(chunk=3, overlap=5, tile=24, tile_overlap=10)
  out = upscale_array(model, variables, lr, scale=3, clip_model=False, options=options)
  np.testing.assert_allclose(out, whole, atol=1e-5)
  # A video smaller than the tile is not tiled at all.
  out = upscale_array(
    model,
    variables,
    lr[:, :20, :20],
    scale=3,
    clip_model=False,
    options=UpscaleOptions(chunk=4, tile=24, tile_overlap=10),
  )
  np.testing.assert_allclose(out, model.apply(variables, lr[:, :20, :20], train=False), atol=1e-5)


def _write_lr_video(path, frames=9, height=14, width=18, seed=0, fps=12.5):
  clip = footage.generate_clips(seed, 1, frames, height, width)[0]
  footage.write_video(path, clip, fps=fps)
  return clip


@pytest.fixture(scope="module")
def tiny_edsr():
  model = models.get("edsr_bicubic_tiny", scale=3)
  variables = model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)), train=False)
  return model, variables


def test_upscale_video_keeps_fps_count_and_odd_sizes(tmp_path, tiny_edsr):
  model, variables = tiny_edsr
  src = str(tmp_path / "in.mp4")
  _write_lr_video(src, frames=9, height=15, width=17, fps=12.5)  # odd sizes, x3 -> 45x51
  out = str(tmp_path / "out.mp4")
  result = upscale.upscale_video(
    src,
    out,
    model,
    variables,
    scale=3,
    clip_model=False,
    options=UpscaleOptions(chunk=4),
    progress=False,
  )
  assert result["frames"] == 9
  meta, frames = video.stream_video(out)
  frames = list(frames)
  assert (meta.height, meta.width, len(frames)) == (45, 51, 9)
  assert abs(meta.fps - 12.5) < 1e-3
  assert sorted(os.listdir(tmp_path)) == ["in.mp4", "out.mp4"]  # no temporary file left


def test_upscale_keeps_the_timing_of_variable_frame_rate_video(tmp_path, tiny_edsr):
  model, variables = tiny_edsr
  clip = footage.generate_clips(0, 1, 12, 14, 18)[0]
  times = np.cumsum([0.0] + [0.04, 0.2, 0.08] * 3 + [0.04, 0.2])  # 25 fps ticks held 1 to 5
  src = video.write_video(str(tmp_path / "vfr.mp4"), clip, fps=25, timestamps=times)
  src_meta, src_frames = video.stream_video(src)
  src_times = [t for _, t in src_frames]
  out = str(tmp_path / "out.mp4")
  upscale.upscale_video(
    src,
    out,
    model,
    variables,
    scale=3,
    clip_model=False,
    options=UpscaleOptions(chunk=4),
    progress=False,
  )
  meta, frames = video.stream_video(out)
  np.testing.assert_allclose([t for _, t in frames], src_times, atol=1e-3)
  # Every frame keeps its time; only the last one's hold may differ (one frame at the mean rate).
  assert meta.duration == pytest.approx(src_meta.duration, abs=1 / src_meta.fps)


def test_compare_writes_side_by_side_video_and_png_strip(tmp_path, tiny_edsr):
  model, variables = tiny_edsr
  src = str(tmp_path / "in.mp4")
  _write_lr_video(src, frames=8, height=12, width=16)
  out = str(tmp_path / "cmp.mp4")
  upscale.upscale_video(
    src, out, model, variables, scale=3, clip_model=False, compare=True, progress=False
  )
  _, frames = video.stream_video(out)
  first, _ = next(frames)
  assert first.shape == (36, 96, 3)
  # The untrained model returns the bicubic image: both halves agree (up to video coding).
  assert np.abs(first[:, :48].astype(int) - first[:, 48:].astype(int)).mean() < 3
  png = str(tmp_path / "cmp.png")
  upscale.upscale_video(
    src, png, model, variables, scale=3, clip_model=False, compare=True, progress=False
  )
  import imageio.v3 as iio

  image = iio.imread(png)
  assert image.shape == (20 + 4 * 36, 96, 3)  # a label row, then 4 frames
  header = image[:20].min(axis=-1)
  assert (header[:, :48] < 128).any() and (header[:, 48:] < 128).any()  # "bicubic" | "model x3"
  assert header.max() == 255


def test_bad_inputs_are_clear_errors_and_leave_no_file(tmp_path, tiny_edsr, monkeypatch):
  model, variables = tiny_edsr
  src = str(tmp_path / "in.mp4")
  _write_lr_video(src)
  kw = dict(scale=3, clip_model=False, progress=False)
  with pytest.raises(FileNotFoundError, match="output folder"):
    upscale.upscale_video(src, str(tmp_path / "missing" / "out.mp4"), model, variables, **kw)
  with pytest.raises(FileNotFoundError, match="No such video"):
    upscale.upscale_video(
      str(tmp_path / "nope.mp4"), str(tmp_path / "o.mp4"), model, variables, **kw
    )
  (tmp_path / "junk.mp4").write_bytes(b"not a video")
  with pytest.raises(ValueError, match="Cannot read"):
    upscale.upscale_video(
      str(tmp_path / "junk.mp4"), str(tmp_path / "o.mp4"), model, variables, **kw
    )
  with pytest.raises(ValueError, match="must end in"):
    upscale.upscale_video(src, str(tmp_path / "o.gif"), model, variables, **kw)
  with pytest.raises(ValueError, match="tile"):
    UpscaleOptions(tile=8, tile_overlap=4)
  # A failure half-way (here: in the second window) leaves nothing under the output name.
  calls = []
  real = upscale.Upscaler.window

  def failing(self, lr):
    calls.append(1)
    if len(calls) == 2:
      raise RuntimeError("boom")
    return real(self, lr)

  monkeypatch.setattr(upscale.Upscaler, "window", failing)
  out = tmp_path / "out.mp4"
  with pytest.raises(RuntimeError, match="boom"):
    upscale.upscale_video(src, str(out), model, variables, options=UpscaleOptions(chunk=4), **kw)
  assert sorted(os.listdir(tmp_path)) == ["in.mp4", "junk.mp4"]


_MEMORY_SCRIPT = textwrap.dedent("""
    import json, sys, tracemalloc, jax, jax.numpy as jnp
    from jaxres import models
    from jaxres.sr import memory_budget, upscale
    name, kwargs, chunk, overlap = sys.argv[1], json.loads(sys.argv[2]), *map(int, sys.argv[3:5])
    model = models.get(name, **kwargs)
    variables = jax.jit(lambda x: model.init(jax.random.key(0, impl="rbg"), x, train=False))(
        jnp.zeros((1, 2, 16, 16, 3)))
    options = upscale.UpscaleOptions(chunk=chunk, overlap=overlap, tile=0)
    # Compiled before tracing: compiling (or reading the compilation cache) goes through Python
    # buffers that would be traced.
    upscale.Upscaler(model, variables, model.scale, clip_model=True, options=options
                     ).compile_window((1, chunk + 2 * overlap, 32, 32, 3))
    tracemalloc.start()  # numpy buffers (the frames held on the host) are traced
    for src, out in zip(sys.argv[5::2], sys.argv[6::2]):
      with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM restarts from the resident memory now
      tracemalloc.reset_peak()
      upscale.upscale_video(src, out, model, variables, scale=model.scale, clip_model=True,
                            progress=False, options=options)
      print(tracemalloc.get_traced_memory()[1], memory_budget.peak_resident_bytes() // 1024)
""")


def _peaks_by_length(tmp_path, lengths, size, model_args):
  """(traced numpy peak, peak RSS) in MiB while upscaling random `size` videos of each length,
  one after the other in one process, after its program is compiled.

  RSS measures what the allocator holds, not what the program keeps, so the allocator is set up
  to make the two close: one process, because the peak a fresh process reaches varies by tens of
  MiB from one to the next; one malloc arena, and every block of 128 KiB or more mapped on its
  own and unmapped when freed (a fixed `mmap_threshold`). With glibc's defaults, or with the
  retaining settings of `jaxres.host_memory`, the peak of a 500-frame run exceeded a 50-frame
  run's by up to 62 MiB (defaults) and 129 MiB (retaining) when the cores were busy with other
  work, as under the 2-worker test run: the heap's free blocks are reused in an order that depends
  on thread timing, and it grows by whole window temporaries before it settles. With these
  settings: 0-10 MiB, busy cores or not.
  """
  env = dict(
    os.environ,
    JAX_PLATFORMS="cpu",
    XLA_FLAGS=xla_flags(),
    PYTHONPATH=REPO,
    GLIBC_TUNABLES="glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=131072",
  )
  rng = np.random.default_rng(0)
  paths = []
  for n in lengths:
    src = str(tmp_path / f"in{n}.mp4")
    # Random frames: nothing compresses, so a kept copy of every frame would show.
    with video.VideoWriter(src, 25.0) as writer:
      for _ in range(n):
        writer.write(rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    paths += [src, str(tmp_path / f"o{n}.mp4")]
  proc = subprocess.run(
    [sys.executable, "-c", _MEMORY_SCRIPT, *model_args, *paths],
    capture_output=True,
    text=True,
    env=env,
    timeout=600,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = proc.stdout.splitlines()[-len(lengths) :]
  peaks = {
    n: (int(traced) / 2**20, int(rss) / 2**10)
    for n, (traced, rss) in zip(lengths, (line.split() for line in lines))
  }
  print("peak (traced host buffers, RSS) MiB by frame count:", peaks)
  return peaks


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_video_length(tmp_path):
  """BasicVSR++ (the BasicSR network with the most state per frame) on 50, then 500 frames in one
  process: the host buffers' peak is the same, and the peak resident memory of the longer video
  exceeds the shorter one's by far less than keeping the frames would take.
  Every model streams through the same `Upscaler`, so this holds for each.

  RSS is noisier (PyAV's decoder and x264 run in-process, and malloc keeps some of what they
  free), so the exact check is on the traced numpy buffers and RSS only has to stay well below the
  cost of holding the frames.
  """
  peaks = _peaks_by_length(
    tmp_path, (50, 500), (32, 32), ("basicvsrpp", '{"features": 8, "num_blocks": 1}', "4", "1")
  )
  # Keeping the 450 extra frames would add 450 x (12 KiB LR + 192 KiB HR, float32) = 90 MiB.
  assert abs(peaks[500][0] - peaks[50][0]) < 1, peaks
  assert peaks[500][1] - peaks[50][1] < 90 / 2, peaks


class _Loaded:  # what `checkpoint.load_sr_model` returns, for the command tests below
  def __init__(self, model, variables):
    self.model, self.variables, self.scale, self.clip_model = model, variables, 3, False
    self.name, self.step = "edsr_bicubic_tiny", 1


def _upscale_command(monkeypatch, tiny_edsr, *args):
  from jaxres import cli
  from jaxres.sr import checkpoint

  monkeypatch.setattr(checkpoint, "load_sr_model", lambda *a, **k: _Loaded(*tiny_edsr))
  return cli.main(["upscale", *args, "--checkpoint", "run", "--no-progress"])


def test_the_input_is_never_written_over(tmp_path, tiny_edsr, monkeypatch, capsys):
  src = str(tmp_path / "in.mp4")
  _write_lr_video(src)
  before = open(src, "rb").read()
  link = str(tmp_path / "link.mp4")
  os.symlink(src, link)
  for out in (src, link, str(tmp_path / "." / "in.mp4")):
    assert _upscale_command(monkeypatch, tiny_edsr, src, out) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is the input video" in err, err
  assert open(src, "rb").read() == before
  assert sorted(os.listdir(tmp_path)) == ["in.mp4", "link.mp4"]


def test_interrupted_upscale_says_so_in_one_line_and_leaves_nothing(
  tmp_path, tiny_edsr, monkeypatch, capsys
):
  src = str(tmp_path / "in.mp4")
  _write_lr_video(src)
  calls = []
  real = upscale.Upscaler.window

  def interrupted(self, lr):  # Ctrl-C while the second window runs
    calls.append(1)
    if len(calls) == 2:
      raise KeyboardInterrupt
    return real(self, lr)

  monkeypatch.setattr(upscale.Upscaler, "window", interrupted)
  out = str(tmp_path / "out.mp4")
  assert _upscale_command(monkeypatch, tiny_edsr, src, out, "--chunk", "4") == 130
  err = capsys.readouterr().err
  assert err == f"jaxres upscale: interrupted; nothing was written to {out}.\n"
  assert sorted(os.listdir(tmp_path)) == ["in.mp4"]


@pytest.fixture
def small_disk(tmp_path):
  """A 64 KiB tmpfs (needs root; skipped otherwise)."""
  folder = tmp_path / "disk"
  folder.mkdir()
  if (
    os.geteuid() != 0
    or subprocess.run(
      ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True
    ).returncode
    != 0
  ):
    pytest.skip("mounting a small tmpfs needs root")
  yield folder
  subprocess.run(["umount", str(folder)], check=False)


def test_a_full_disk_is_one_line_and_leaves_no_partial_file(
  tmp_path, tiny_edsr, monkeypatch, capsys, small_disk
):
  src = str(tmp_path / "in.mp4")
  _write_lr_video(src, frames=24, height=48, width=48)
  (small_disk / "filler").write_bytes(os.urandom(40 * 1024))
  out = str(small_disk / "out.mp4")
  assert _upscale_command(monkeypatch, tiny_edsr, src, out, "--crf", "0") == 1
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and f"Cannot write {out}: No space left on device" in err, err
  assert sorted(os.listdir(small_disk)) == ["filler"]
  subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
  assert _upscale_command(monkeypatch, tiny_edsr, src, str(small_disk / "o.mp4")) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "is read-only" in err, err  # refused before any work


def test_a_cut_input_is_upscaled_as_far_as_it_decodes_with_a_warning(
  tmp_path, tiny_edsr, monkeypatch, capsys
):
  from media import cut_with_index_first

  whole = str(tmp_path / "whole.mp4")
  _write_lr_video(whole, frames=40, height=16, width=16)
  src = cut_with_index_first(whole, str(tmp_path / "cut.mp4"), keep=0.6)
  out = str(tmp_path / "out.mp4")
  assert _upscale_command(monkeypatch, tiny_edsr, src, out) == 0
  captured = capsys.readouterr()
  meta, frames = video.stream_video(out)
  n = sum(1 for _ in frames)
  assert 0 < n < 38 and f"wrote {n} frames" in captured.out
  assert "upscaled in windows of " in captured.out and "of --max-memory " in captured.out
  assert captured.err == (
    f"jaxres upscale: warning: {src} stops decoding after {n} of the 40 "
    "frames its header lists (truncated or damaged); only those were "
    "upscaled.\n"
  )


def test_a_budget_nothing_fits_is_one_line_and_leaves_nothing(
  tmp_path, tiny_edsr, monkeypatch, capsys
):
  src = str(tmp_path / "in.mp4")
  _write_lr_video(src)
  out = str(tmp_path / "out.mp4")
  assert _upscale_command(monkeypatch, tiny_edsr, src, out, "--max-memory", "1MiB") == 1
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "more than --max-memory 1.0 MiB; raise --max-memory" in err, err
  assert _upscale_command(monkeypatch, tiny_edsr, src, out, "--max-memory", "lots") == 2
  assert "--max-memory: Cannot read a memory size from 'lots'" in capsys.readouterr().err
  assert sorted(os.listdir(tmp_path)) == ["in.mp4"]


def test_upscale_with_published_weights_by_name(tmp_path, tiny_edsr, monkeypatch, capsys):
  """SR weights served from 127.0.0.1 and used by name upscale as the run they came from; a
  classifier's weights or another scale are refused in one line."""
  from local_server import LocalServer

  from jaxres import cli, weights
  from jaxres.convert import save_variables

  served = tmp_path / "served"
  served.mkdir()
  save_variables(jax.device_get(tiny_edsr[1]), str(served / "edsr_tiny_x3.msgpack"))
  monkeypatch.setenv("JAXRES_CACHE_DIR", str(tmp_path / "cache"))
  src, out = str(tmp_path / "in.mp4"), str(tmp_path / "out.mp4")
  _write_lr_video(src)
  server = LocalServer(served)
  try:
    weights.register(
      "edsr_bicubic_tiny.test_x3",
      url=f"{server.url}/edsr_tiny_x3.msgpack",
      arch="edsr_bicubic_tiny",
      converter="jaxres",
      model_kwargs={"scale": 3},
      overwrite=True,
    )
    assert (
      cli.main(
        [
          "upscale",
          src,
          out,
          "--weights",
          "edsr_bicubic_tiny.test_x3",
          "--no-progress",
          "--chunk",
          "4",
        ]
      )
      == 0
    )
    assert "(edsr_bicubic_tiny x3, weights edsr_bicubic_tiny.test_x3)" in capsys.readouterr().out
    assert (
      cli.main(
        [
          "upscale",
          src,
          str(tmp_path / "x2.mp4"),
          "--weights",
          "edsr_bicubic_tiny.test_x3",
          "--scale",
          "2",
          "--no-progress",
        ]
      )
      == 1
    )
    assert "an x3 model (edsr_bicubic_tiny), not x2" in capsys.readouterr().err
    assert (
      cli.main(
        [
          "upscale",
          src,
          str(tmp_path / "c.mp4"),
          "--weights",
          "r3d_18.kinetics400",
          "--no-progress",
        ]
      )
      == 1
    )
    assert "classification weights (r3d_18), not a super-resolution" in capsys.readouterr().err
  finally:
    server.stop()
  direct = str(tmp_path / "direct.mp4")  # the same command on the model the weights came from
  assert _upscale_command(monkeypatch, tiny_edsr, src, direct, "--chunk", "4") == 0
  ours, theirs = video.read_video(out).frames, video.read_video(direct).frames
  assert ours.shape == theirs.shape == (9, 42, 54, 3)
  # The first (intra-coded) frame is the same; x264's later frames differ by a few levels
  # between two identical upscales too (its threads), so those are compared on average.
  np.testing.assert_array_equal(ours[0], theirs[0])
  assert np.abs(ours.astype(int) - theirs).mean() < 3.0
  assert sorted(os.listdir(tmp_path)) == ["cache", "direct.mp4", "in.mp4", "out.mp4", "served"]
