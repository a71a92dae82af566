"""Built-in demo data: small generated videos, written as real .mp4 files, whose class is a motion.

Each video shows one shape (disc, square or ring, of one of a few colours and sizes) sliding over
one of a few static textured backgrounds at constant speed in the direction its class names
(`right`, `left`, `down`, `up`, then the diagonals for more than 4 classes), wrapping around the
frame edges. Start position and speed are random and the appearances are shared by all classes, so
any single frame is equally likely under every class and memorising how a video looks does not
help either: a per-frame 2D model sits at chance, while a model that sees motion (a 3D ResNet)
learns it in minutes. Horizontal flips swap `left` and `right`, so the pipeline refuses them here.

The layout is the UCF101 one: `ROOT/<class>/<class>_gNN.mp4` plus `trainlist01.txt` (`path label`,
1-based labels) and `testlist01.txt` (paths), 75% / 25% per class; `demo.json` marks a complete set.

Example:
  >>> root = write_demo_dataset("/tmp/jaxres-demo")     # 4 classes x 32 videos of 16 x 64 x 64
  >>> sorted(os.listdir(root))[:3]
  ['demo.json', 'down', 'left']
"""

from __future__ import annotations

import json
import os

import numpy as np

from jaxres.atomic_files import write_atomic
from jaxres.data.reproducible_video import write_reproducible_video
from jaxres.data.split_lists import EVAL_LIST, TRAIN_LIST, write_split_list

DIRECTIONS = {
  "right": (0, 1),
  "left": (0, -1),
  "down": (1, 0),
  "up": (-1, 0),
  "down_right": (1, 1),
  "up_left": (-1, -1),
  "down_left": (1, -1),
  "up_right": (-1, 1),
}
_MARKER = "demo.json"


# Appearances come from small sets shared by every class, so memorising how a video looks does not
# tell its class apart from other videos that look the same; only the motion does.
_PALETTE = np.array(
  [[230, 60, 50], [60, 200, 70], [60, 90, 230], [240, 220, 60], [230, 230, 230], [30, 30, 30]],
  np.uint8,
)
_NUM_BACKGROUNDS = 4


def _background(index: int, size: int) -> np.ndarray:
  """uint8 `[size, size, 3]`: a base colour with a texture of 4x4 blocks, in integers."""
  rng = np.random.default_rng(1000 + index)
  base = rng.integers(70, 171, 3)
  texture = rng.integers(-20, 21, (size // 4 + 1, size // 4 + 1, 3)).repeat(4, 0).repeat(4, 1)
  return np.clip(base + texture[:size, :size], 0, 255).astype(np.uint8)


def render_clip(
  rng: np.random.Generator, direction: tuple[int, int], num_frames: int, size: int
) -> np.ndarray:
  """One demo clip: a shape moving along `direction` (dy, dx) over a static textured background.

  Background (one of 4), shape (disc, square, ring), colour (one of 6) and size (one of 2) are
  drawn from small sets shared by all classes; position and speed are continuous. Pixels are
  decided by products and sums alone (squared distances, no `hypot`), which IEEE arithmetic
  rounds the same on every machine, so a seed gives the same frames everywhere.

  Args:
    rng: numpy generator (the clip is a function of its state).
    direction: unit steps (dy, dx) in {-1, 0, 1}.
    num_frames: T.
    size: H = W.

  Returns:
    uint8 `[T, size, size, 3]`.

  Example:
    >>> render_clip(np.random.default_rng(0), DIRECTIONS["up"], 16, 64).shape
    (16, 64, 64, 3)
  """
  yy, xx = np.mgrid[:size, :size].astype(np.float64)
  background = _background(int(rng.integers(_NUM_BACKGROUNDS)), size)
  colour = _PALETTE[rng.integers(len(_PALETTE))]
  radius = (0.14, 0.2)[rng.integers(2)] * size
  kind = rng.integers(3)
  speed = rng.uniform(0.8, 1.2) * max(1.5, 0.5 * size / num_frames)
  norm = np.sqrt(direction[0] ** 2 + direction[1] ** 2)
  velocity = np.array(direction, np.float64) / norm * speed
  start = rng.uniform(0, size, 2)
  frames = np.empty((num_frames, size, size, 3), np.uint8)
  for t in range(num_frames):
    cy, cx = start + velocity * t
    # Torus distance so the shape wraps around the edges.
    dy = (yy - cy + size / 2) % size - size / 2
    dx = (xx - cx + size / 2) % size - size / 2
    squared = dy * dy + dx * dx
    if kind == 0:
      mask = squared <= radius * radius
    elif kind == 1:
      mask = np.maximum(np.abs(dy), np.abs(dx)) <= radius * 0.85
    else:
      mask = (squared <= radius * radius) & (squared >= (radius * 0.55) ** 2)
    frames[t] = np.where(mask[..., None], colour, background)
  return frames


def write_demo_dataset(
  root: str,
  *,
  num_classes: int = 4,
  videos_per_class: int = 32,
  num_frames: int = 16,
  size: int = 64,
  fps: float = 25.0,
  seed: int = 0,
  classes: tuple[str, ...] = (),
) -> str:
  """Writes (or reuses) the demo dataset under `root`.

  Args:
    root: output folder (created). An existing complete dataset with the same parameters is reused.
    num_classes: 2 to 8 motion directions.
    videos_per_class: videos per class (at least 2: one for training, one for testing).
    num_frames: frames per video.
    size: frame height = width in pixels.
    fps: frame rate written in the files.
    seed: makes the dataset reproducible.
    classes: the directions (`DIRECTIONS` keys) to write instead of the first `num_classes`,
      e.g. the four diagonals for a task a model trained on the others never saw.

  Returns:
    `root`.

  Example:
    >>> root = write_demo_dataset(str(tmp_path), num_classes=4, videos_per_class=4, num_frames=8)
  """
  if not 2 <= num_classes <= len(DIRECTIONS):
    raise ValueError(f"num_classes must be in [2, {len(DIRECTIONS)}], got {num_classes}.")
  unknown = [c for c in classes if c not in DIRECTIONS]
  if unknown or (classes and len(set(classes)) != num_classes):
    raise ValueError(
      f"demo classes must be {num_classes} different directions of "
      f"{', '.join(DIRECTIONS)}; got {', '.join(classes)}."
    )
  if videos_per_class < 2:
    raise ValueError(f"videos_per_class must be >= 2, got {videos_per_class}.")
  params = dict(
    num_classes=num_classes,
    videos_per_class=videos_per_class,
    num_frames=num_frames,
    size=size,
    fps=fps,
    seed=seed,
    version=3,  # 3: the same bytes on every machine (jaxres.data.reproducible_video)
  )
  if classes:
    params["classes"] = list(classes)
  marker = os.path.join(root, _MARKER)
  names = list(classes) or list(DIRECTIONS)[:num_classes]
  files = {name: [f"{name}/{name}_g{i:02d}.mp4" for i in range(videos_per_class)] for name in names}
  if os.path.exists(marker):
    with open(marker) as f:
      if json.load(f) == params and all(
        os.path.exists(os.path.join(root, p)) for fs in files.values() for p in fs
      ):
        return root
    os.remove(marker)
  rng = np.random.default_rng(seed)
  label_of = {name: i + 1 for i, name in enumerate(sorted(names))}  # UCF lists are 1-based.
  train, test = [], []
  num_test = max(1, videos_per_class // 4)
  for name in names:
    os.makedirs(os.path.join(root, name), exist_ok=True)
    for i, rel in enumerate(files[name]):
      clip = render_clip(rng, DIRECTIONS[name], num_frames, size)
      write_reproducible_video(os.path.join(root, rel), clip, fps)
      (test if i < num_test else train).append(rel)
  write_split_list(
    os.path.join(root, TRAIN_LIST), [f"{p} {label_of[p.split('/')[0]]}" for p in train]
  )
  write_split_list(os.path.join(root, EVAL_LIST), test)
  write_atomic(marker, json.dumps(params))
  return root
