"""Built-in SR demo footage: pans over real photographs that scikit-image ships (no downloads).

Training clips are camera pans (whole-pixel steps, so every HR frame holds the photo's own pixels,
never resampled ones) over a window of the training photos, at the photo's size and downscaled by
area (x0.75, x0.5: sharper, denser detail, as SR training sets are made). The held-out photos
(`EVAL_PHOTOS`) are never seen in training: each becomes one pan at its own size, the "real
footage" the demo is evaluated on. Grey photos are repeated into 3 channels.

Only photos bundled inside the scikit-image wheel are used (`skimage.data` fetches others on
demand; these never are). The layout is the folder one: `ROOT/footage/<photo>_NN.mp4` (one class),
`trainlist01.txt`, `testlist01.txt`, and `photos.json` marking a complete set.

Example:
  >>> root = write_photo_dataset("/tmp/jaxres-photos")
  >>> open(os.path.join(root, "testlist01.txt")).read().split()
  ['footage/chelsea_00.mp4', 'footage/coffee_00.mp4', 'footage/camera_00.mp4']
"""

from __future__ import annotations

import json
import os

import numpy as np

from jaxres.atomic_files import write_atomic
from jaxres.data.reproducible_video import write_reproducible_video
from jaxres.data.split_lists import EVAL_LIST, TRAIN_LIST, write_split_list

# `skimage.data` loaders whose images are files inside the installed package. Train and eval are
# disjoint scenes (the stereo motorcycle pair counts as one scene and is used once).
TRAIN_PHOTOS = (
  "astronaut",
  "rocket",
  "motorcycle",
  "immunohistochemistry",
  "hubble_deep_field",
  "moon",
  "coins",
  "page",
  "text",
  "brick",
  "grass",
  "gravel",
  "cell",
)
EVAL_PHOTOS = ("chelsea", "coffee", "camera")
TRAIN_SCALES = (1.0, 0.75, 0.5)  # area downscaling of the training photos
EVAL_FRAMES, EVAL_HEIGHT, EVAL_WIDTH = 8, 192, 256  # held-out pans, moving right and down
EVAL_VELOCITY = (1, 2)
_MARKER = "photos.json"
_FOLDER = "footage"


def load_photo(name: str) -> np.ndarray:
  """One bundled scikit-image photograph as uint8 `[H, W, 3]` (grey ones repeated to 3 channels).

  Args:
    name: a `skimage.data` loader (`"motorcycle"` is the left view of `stereo_motorcycle`).

  Returns:
    uint8 `[H, W, 3]`.

  Raises:
    ImportError: scikit-image is missing (it comes with the `video` extra).

  Example:
    >>> load_photo("camera").shape
    (512, 512, 3)
  """
  try:
    from skimage import data  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ImportError(
      "The SR demo footage is made from scikit-image's sample photographs: "
      "pip install 'jaxres[video]' (or scikit-image)."
    ) from e
  image = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
  image = np.asarray(image)
  if image.ndim == 2:
    image = np.repeat(image[..., None], 3, axis=-1)
  return np.ascontiguousarray(image[..., :3]).astype(np.uint8)


def area_downscale(image: np.ndarray, factor: float) -> np.ndarray:
  """`image` shrunk by `factor` (<= 1) with an antialiased resize; uint8 in and out."""
  if factor == 1.0:
    return image
  from skimage import transform  # pylint: disable=import-outside-toplevel

  out = transform.rescale(
    image.astype(np.float32) / 255.0,
    factor,
    order=3,
    channel_axis=-1,
    anti_aliasing=True,
    mode="reflect",
  )
  return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def render_pan(
  image: np.ndarray,
  rng: np.random.Generator,
  num_frames: int,
  height: int,
  width: int,
  max_speed: int = 3,
  velocity: tuple[int, int] | None = None,
) -> np.ndarray:
  """A pan over `image`: a `height` x `width` window moving a whole number of pixels per frame.

  Args:
    image: uint8 `[H, W, 3]`, at least the window's size.
    rng: numpy generator (the path is a function of its state).
    num_frames: T.
    height: window height.
    width: window width.
    max_speed: largest step per frame along each axis, in pixels (drawn per axis).
    velocity: `(dy, dx)` steps per frame instead of drawn ones.

  Returns:
    uint8 `[T, height, width, 3]`, crops of `image` (no resampling).

  Example:
    >>> render_pan(load_photo("camera"), np.random.default_rng(0), 8, 64, 64).shape
    (8, 64, 64, 3)
  """
  h, w = image.shape[:2]
  if h < height or w < width:
    raise ValueError(f"A {height}x{width} pan needs an image at least that large, got {h}x{w}.")
  rooms = (h - height, w - width)
  if velocity is None:
    tops = [min(max_speed, room // max(1, num_frames - 1)) for room in rooms]  # fits T - 1 steps
    speed = [int(rng.integers(-top, top + 1)) for top in tops]
  else:
    speed = [int(v) for v in velocity]
    if any(abs(v) * (num_frames - 1) > room for v, room in zip(speed, rooms)):
      raise ValueError(
        f"A pan of {num_frames} frames at {velocity} px/frame leaves the {h}x{w} image."
      )
  start = []
  for room, v in zip(rooms, speed):
    travel = abs(v) * (num_frames - 1)
    start.append(int(rng.integers(0, room - travel + 1)) + (travel if v < 0 else 0))
  return np.stack(
    [
      image[
        start[0] + t * speed[0] : start[0] + t * speed[0] + height,
        start[1] + t * speed[1] : start[1] + t * speed[1] + width,
      ]
      for t in range(num_frames)
    ]
  )


def write_photo_dataset(
  root: str,
  *,
  clips_per_photo: int = 8,
  num_frames: int = 8,
  size: int = 128,
  fps: float = 25.0,
  seed: int = 0,
) -> str:
  """Writes (or reuses) the photo footage under `root`.

  Args:
    root: output folder (created). An existing complete set with the same parameters is reused.
    clips_per_photo: training pans per training photo, spread over `TRAIN_SCALES`.
    num_frames: frames per training pan.
    size: training pan window side in pixels (the held-out pans are `EVAL_HEIGHT` x `EVAL_WIDTH`
      of `EVAL_FRAMES`).
    fps: frame rate written in the files.
    seed: makes the set reproducible.

  Returns:
    `root`.

  Example:
    >>> root = write_photo_dataset(str(tmp_path), clips_per_photo=2, num_frames=4, size=64)
  """
  if clips_per_photo < 1 or num_frames < 1 or size < 8:
    raise ValueError(
      f"clips_per_photo and num_frames must be >= 1 and size >= 8, got "
      f"{clips_per_photo}, {num_frames}, {size}."
    )
  params = dict(
    clips_per_photo=clips_per_photo,
    num_frames=num_frames,
    size=size,
    fps=fps,
    seed=seed,
    train=TRAIN_PHOTOS,
    eval=EVAL_PHOTOS,
    version=2,  # 2: the same bytes on every machine (jaxres.data.reproducible_video)
  )
  train = [f"{_FOLDER}/{p}_{i:02d}.mp4" for p in TRAIN_PHOTOS for i in range(clips_per_photo)]
  test = [f"{_FOLDER}/{p}_00.mp4" for p in EVAL_PHOTOS]
  marker = os.path.join(root, _MARKER)
  if os.path.exists(marker):
    with open(marker) as f:
      if json.load(f) == json.loads(json.dumps(params)) and all(
        os.path.exists(os.path.join(root, p)) for p in train + test
      ):
        return root
    os.remove(marker)
  os.makedirs(os.path.join(root, _FOLDER), exist_ok=True)
  rng = np.random.default_rng([seed, 0])
  for photo in TRAIN_PHOTOS:
    image = load_photo(photo)
    factors = [s for s in TRAIN_SCALES if min(image.shape[:2]) * s >= size]
    scaled = {}
    for i in range(clips_per_photo):
      factor = factors[i % len(factors)]
      if factor not in scaled:
        scaled[factor] = area_downscale(image, factor)
      clip = render_pan(scaled[factor], rng, num_frames, size, size)
      write_reproducible_video(
        os.path.join(root, f"{_FOLDER}/{photo}_{i:02d}.mp4"), clip, fps, crf=10
      )
  rng = np.random.default_rng([seed, 1])  # held-out pans do not depend on the training ones
  for photo, rel in zip(EVAL_PHOTOS, test):
    clip = render_pan(
      load_photo(photo), rng, EVAL_FRAMES, EVAL_HEIGHT, EVAL_WIDTH, velocity=EVAL_VELOCITY
    )
    write_reproducible_video(os.path.join(root, rel), clip, fps, crf=10)
  write_split_list(os.path.join(root, TRAIN_LIST), [f"{p} 1" for p in train])
  write_split_list(os.path.join(root, EVAL_LIST), test)
  write_atomic(marker, json.dumps(params))
  return root
