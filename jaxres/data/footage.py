"""Generated HR footage for SR tests and demos: textured scenes with sub-pixel motion.

Each clip is rendered analytically at its full resolution (no resampling): a background of a few
coloured sinusoidal gratings and a colour gradient panning at a constant sub-pixel velocity, and
textured discs and squares moving over it with antialiased edges. It has the detail and temporal
coherence that SR needs (fine gratings alias after downsampling; motion lets a video model gather
information across frames) and is reproducible from a seed. `write_footage_dataset` writes such
clips as a folder dataset with split lists (`jaxres.data.split_lists`), beside the other dataset
writers (`demo`, `photo_demo`); `jaxres.sr.footage` re-exports this module.

Example:
  >>> clip = generate_clip(np.random.default_rng(0), frames=8, height=64, width=64)   # uint8
  >>> write_video("clip.mp4", clip, fps=24)
  >>> root = write_footage_dataset("/tmp/sr-footage", num_videos=16)
"""

from __future__ import annotations

import os

import numpy as np

from jaxres.data import video
from jaxres.data.reproducible_video import write_reproducible_video
from jaxres.data.split_lists import EVAL_LIST, TRAIN_LIST, write_split_list


def _grating(rng, yy, xx, t, velocity, max_freq):
  angle = rng.uniform(0, np.pi)
  freq = rng.uniform(0.02, max_freq)  # cycles per pixel
  phase = rng.uniform(0, 2 * np.pi)
  colour = rng.uniform(-0.5, 0.5, 3)
  u = (xx - velocity[0] * t) * np.cos(angle) + (yy - velocity[1] * t) * np.sin(angle)
  return np.sin(2 * np.pi * freq * u + phase)[..., None] * colour


def generate_clip(
  rng: np.random.Generator,
  frames: int,
  height: int,
  width: int,
  *,
  max_freq: float = 0.3,
  num_objects: int = 4,
) -> np.ndarray:
  """One generated clip.

  Args:
    rng: numpy generator (the clip is a function of its state).
    frames: T.
    height: H.
    width: W.
    max_freq: highest grating frequency in cycles per pixel (0.5 = Nyquist).
    num_objects: moving shapes over the background.

  Returns:
    uint8 `[T, H, W, 3]`.

  Example:
    >>> generate_clip(np.random.default_rng(1), 4, 32, 48).shape
    (4, 32, 48, 3)
  """
  yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
  pan = rng.uniform(-1.5, 1.5, 2)
  base = rng.uniform(0.3, 0.7, 3)
  gradient = rng.uniform(-0.3, 0.3, (2, 3))
  grating_seeds = [int(rng.integers(1 << 31)) for _ in range(3)]
  objects = []
  for _ in range(num_objects):
    objects.append(
      dict(
        centre=rng.uniform(0, 1, 2) * (width, height),
        velocity=rng.uniform(-2.5, 2.5, 2),
        radius=rng.uniform(0.08, 0.25) * min(height, width),
        square=rng.random() < 0.5,
        colour=rng.uniform(0, 1, 3),
        seed=int(rng.integers(1 << 31)),
      )
    )
  out = np.empty((frames, height, width, 3), np.float32)
  for t in range(frames):
    img = base + (yy / height)[..., None] * gradient[0] + (xx / width)[..., None] * gradient[1]
    for seed in grating_seeds:
      img = img + 0.35 * _grating(np.random.default_rng(seed), yy, xx, t, pan, max_freq)
    for o in objects:
      cx, cy = o["centre"] + o["velocity"] * t
      if o["square"]:
        dist = np.maximum(np.abs(xx - cx), np.abs(yy - cy)) - o["radius"]
      else:
        dist = np.hypot(xx - cx, yy - cy) - o["radius"]
      alpha = np.clip(0.5 - dist, 0.0, 1.0)[..., None]  # 1-pixel antialiased edge
      texture = o["colour"] + 0.6 * _grating(
        np.random.default_rng(o["seed"]), yy, xx, t, o["velocity"], max_freq
      )
      img = img * (1 - alpha) + texture * alpha
    out[t] = img
  return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def generate_clips(
  seed: int, count: int, frames: int, height: int, width: int, **kwargs
) -> np.ndarray:
  """`count` clips from one seed: uint8 `[count, T, H, W, 3]` (see `generate_clip`)."""
  rng = np.random.default_rng(seed)
  return np.stack([generate_clip(rng, frames, height, width, **kwargs) for _ in range(count)])


def write_video(path: str, frames: np.ndarray, fps: float = 24.0, crf: int = 10) -> None:
  """Writes uint8 `[T, H, W, 3]` frames to an H.264 file, nearly lossless (`video.write_video`)."""
  video.write_video(path, frames, fps, crf=crf)


def write_footage_dataset(
  root: str,
  *,
  num_videos: int = 48,
  frames: int = 16,
  height: int = 96,
  width: int = 96,
  seed: int = 0,
  test_fraction: float = 0.25,
  fps: float = 25.0,
) -> str:
  """Writes generated clips as a folder dataset for `data.source = "folder"` (SR training).

  Layout: `ROOT/footage/clip_NNN.mp4` (one class folder), `trainlist01.txt` (`path 1`) and
  `testlist01.txt` (the last `test_fraction` of the clips, held out). The clips are written
  again on every call (unlike the demo writers, nothing marks a complete set to reuse).

  Args:
    root: output folder (created).
    num_videos: clips in all.
    frames: frames per clip.
    height: frame height.
    width: frame width.
    seed: makes the set reproducible.
    test_fraction: share of clips held out for eval.
    fps: frame rate written in the files.

  Returns:
    `root`.

  Example:
    >>> write_footage_dataset("/tmp/sr-footage", num_videos=16)
    $ jaxres train --config sr_edsr_demo --config.data.source=folder \\
        --config.data.path=/tmp/sr-footage --config.data.train_split=trainlist01.txt \\
        --config.data.eval_split=testlist01.txt
  """
  os.makedirs(os.path.join(root, "footage"), exist_ok=True)
  rng = np.random.default_rng(seed)
  names = [f"footage/clip_{i:03d}.mp4" for i in range(num_videos)]
  for name in names:
    clip = generate_clip(rng, frames, height, width)  # the same bytes on every machine:
    write_reproducible_video(os.path.join(root, name), clip, fps, crf=10)
  num_test = max(1, int(round(num_videos * test_fraction)))
  write_split_list(os.path.join(root, TRAIN_LIST), [f"{n} 1" for n in names[:-num_test]])
  write_split_list(os.path.join(root, EVAL_LIST), names[-num_test:])
  return root
