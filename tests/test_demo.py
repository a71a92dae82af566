"""The shipped demo learns: `jaxres train` with no arguments reaches >= 90% on the motion demo.

The slow test trains the shipped `demo` config (on one device, as a user's `jaxres train` does);
the demo's data are written to the user cache folder on first use and reused. `demo_finetune` then
starts from that run and learns the four diagonal directions. Other seeds and the other
convolution lowering are measured by `benchmarks/finetune_demo.py` (the README's table).
"""

import json
import subprocess
import sys
import types

import numpy as np
import pytest

from jaxres.commands.train import closing_lines
from jaxres.data import demo
from jaxres.train.config import load_config
from jaxres.train.loop import train_and_evaluate


@pytest.mark.slow
def test_demo_reaches_90_percent_and_fine_tunes_to_the_diagonals(tmp_path):
  quiet = [
    "--config.parallel.num_devices=1",
    "--config.plot=False",
    "--config.tensorboard=False",
    "--config.progress_bar=False",
  ]
  config = load_config("demo", [*quiet, "--config.eval_every_steps=0"])
  summary = train_and_evaluate(config, str(tmp_path / "run"))
  assert summary["eval"]["accuracy"] >= 0.90, summary["eval"]
  # The fine-tuning demo starts from this run: the diagonals, from 48 videos.
  tuned = load_config("demo_finetune", [*quiet, f"--config.init_from={tmp_path / 'run'}"])
  summary = train_and_evaluate(tuned, str(tmp_path / "diagonal"))
  assert summary["eval"]["accuracy"] >= 0.90, summary["eval"]


def test_closing_lines_name_the_baseline_and_the_run_folder():
  config = types.SimpleNamespace(model={"num_classes": 4}, tensorboard=True)
  lines = closing_lines(
    {"eval": {"accuracy": 0.96875}, "plot": "runs/demo/curves.png"}, config, "runs/demo"
  )
  assert lines[0] == "eval accuracy 0.9688 (chance 0.25)"
  assert "runs/demo" in lines[1]
  assert "tensorboard --logdir runs/demo/tensorboard" in lines[2]
  assert "runs/demo/curves.png" in lines[3]
  sr = closing_lines(
    {"eval": {"psnr_y": 30.5, "psnr_y_bicubic": 29.0}},
    types.SimpleNamespace(model={}, tensorboard=False),
    "runs/sr",
  )
  assert sr[0].endswith("gain +1.50 dB over bicubic on the eval crops")
  assert sr[1:] == [
    "run folder: runs/sr",
    "whole held-out frames: jaxres evaluate --checkpoint runs/sr",
    "upscale a video: jaxres upscale IN.mp4 OUT.mp4 --checkpoint runs/sr",
  ]


def test_closing_lines_name_the_demo_data_and_a_held_out_video_to_upscale(tmp_path):
  demo_config = load_config("demo", [f"--config.data.path={tmp_path}"])
  lines = closing_lines({"eval": {"accuracy": 1.0}}, demo_config, "runs/demo", "demo_2d")
  assert lines[1] == f"data: {tmp_path} (jaxres data path demo_2d)"
  (tmp_path / "testlist01.txt").write_text("footage/chelsea_00.mp4\n")
  sr_config = load_config("sr_edsr_demo", [f"--config.data.path={tmp_path}"])
  sr = closing_lines(
    {"eval": {"psnr_y": 30.5, "psnr_y_bicubic": 29.0}}, sr_config, "runs/sr", "sr_edsr_demo"
  )
  assert sr[0].endswith("gain +1.50 dB over bicubic on the 64x64 eval crops")
  video = tmp_path / "footage" / "chelsea_00.mp4"
  assert sr[-1] == (
    f"upscale a video: jaxres upscale {video} runs/sr/chelsea_00_upscaled.mp4 --checkpoint runs/sr"
  )


# The generated demo's bytes, for one small set (seed 0): the same on every machine with the pinned
# PyAV (requirements/constraints.txt). A change here means the demo's data, and so its stated
# figures, changed: re-measure them (README) before updating the hash.
SMALL_DEMO = dict(num_classes=2, videos_per_class=2, num_frames=8, size=32)
SMALL_DEMO_SHA256 = {"right/right_g00.mp4": "fc52fa5a7a36cb25"}

_HASH_DEMO = """
import ctypes, glob, hashlib, json, os, sys
import av
if sys.argv[2] == "no-simd":  # FFmpeg as on a CPU without SSE/AVX (its C code paths)
  libs = os.path.join(os.path.dirname(av.__file__), "..", "av.libs", "libavutil-*")
  ctypes.CDLL(glob.glob(libs)[0]).av_force_cpu_flags(0)
else:  # one core: encoders that size their thread pools by the CPU count see another machine
  os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
from jaxres.data import demo
root = demo.write_demo_dataset(sys.argv[1], **json.loads(sys.argv[3]))
hashes = {}
for folder, _, names in os.walk(root):
  for name in names:
    path = os.path.join(folder, name)
    hashes[os.path.relpath(path, root)] = hashlib.sha256(open(path, "rb").read()).hexdigest()
print(json.dumps(hashes))
"""


def _demo_hashes(root, mode: str) -> dict:
  out = subprocess.run(
    [sys.executable, "-c", _HASH_DEMO, str(root), mode, json.dumps(SMALL_DEMO)],
    capture_output=True,
    text=True,
    check=True,
  ).stdout
  return json.loads(out.splitlines()[-1])


def test_demo_data_are_the_same_bytes_whatever_the_cpu(tmp_path):
  one_core = _demo_hashes(tmp_path / "a", "one-core")
  no_simd = _demo_hashes(tmp_path / "b", "no-simd")
  assert len(one_core) == 4 + 3 and one_core == no_simd  # 4 videos, 2 lists, demo.json
  for path, digest in SMALL_DEMO_SHA256.items():
    assert one_core[path].startswith(digest), (path, one_core[path])


def test_render_clip_is_integer_exact():
  clip = demo.render_clip(np.random.default_rng(3), demo.DIRECTIONS["down_left"], 4, 32)
  again = demo.render_clip(np.random.default_rng(3), demo.DIRECTIONS["down_left"], 4, 32)
  assert clip.dtype == np.uint8 and np.array_equal(clip, again)
  # Every pixel is the background's or the shape's colour: no blended (rounded) values.
  colours = {tuple(c) for c in demo._PALETTE.tolist()}
  backgrounds = [demo._background(i, 32) for i in range(demo._NUM_BACKGROUNDS)]
  is_background = np.zeros(clip.shape[:3], bool)
  for background in backgrounds:
    is_background |= np.all(clip == background, axis=-1)
  shape_pixels = {tuple(p) for p in clip[~is_background].tolist()}
  assert shape_pixels and shape_pixels <= colours
