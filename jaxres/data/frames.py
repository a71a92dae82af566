"""Frame folders: a sequence is a folder of image files (PNG/JPEG/...) in name order.

The frame-folder twin of `jaxres.data.video`: `list_frames` names a sequence's images, `read_frames`
decodes the ones at given indices (PIL, uint8 RGB `[T, H, W, 3]`), `read_sequence` all of them.
Frame `k` is the k-th image in natural name order (`im2.png` before `im10.png`), so REDS
(`00000000.png`), Vimeo-90K (`im1.png`..`im7.png`), Vid4 and MMAction2 rawframes (`img_00001.jpg`)
all read in time order. Frame folders have no frame rate: clips step by `data.frame_stride`.

A numbered sequence must be complete: when every name ends in a number, a gap in the numbers
(`00000004.png` absent between `...3` and `...5`) is a missing frame. Failures raise
`FrameError` (a `DecodeError`, so the pipeline counts them as it counts bad videos) with the reason
`missing` (a gap, or an image gone since listing), `corrupt` (an image that does not decode, or
frames of different sizes), `format` (a pixel format `read_image` does not turn into RGB, e.g.
32-bit float) or `empty` (no image at all).

Example:
  >>> names = list_frames("/data/REDS/train_sharp/000")          # 100 names, 00000000.png first
  >>> clip = read_frames("/data/REDS/train_sharp/000", [0, 2, 4])   # uint8 [3, 720, 1280, 3]
"""

from __future__ import annotations

import fnmatch
import os
import re
from typing import Callable, Sequence

import numpy as np

from jaxres.data.video import DecodeError, VideoMeta

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

_NUMBER = re.compile(r"(\d+)")
_TRAILING_NUMBER = re.compile(r"(\d+)$")


class FrameError(DecodeError):
  """A frame folder could not be read; `reason` is a skip-counter tag, `detail` names the image."""

  def __init__(self, path: str, reason: str, detail: str = ""):
    super().__init__(path, reason, detail)
    self.args = (
      f"Cannot read frame folder {path}: {reason}"
      + (f" ({detail})" if detail else "")
      + (
        "; save its frames as 8- or 16-bit RGB or grey images, or remove the folder."
        if reason == "format"
        else "; check its images open, or remove the folder."
      ),
    )


def is_image(name: str) -> bool:
  """Whether a file name has an image suffix (`IMAGE_SUFFIXES`, any case)."""
  return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def natural_key(name: str) -> tuple:
  """Sort key putting `im2.png` before `im10.png` (digit runs compare as numbers)."""
  return tuple(int(p) if p.isdigit() else p for p in _NUMBER.split(name))


def list_frames(folder: str, pattern: str = "*", expected: int = 0) -> list[str]:
  """The image file names of a sequence folder, in frame order.

  Args:
    folder: a folder of images (hidden files and non-images are ignored).
    pattern: only names matching this glob, e.g. `"img_*"` for MMAction2 folders that also hold
      optical flow (`flow_x_00001.jpg`).
    expected: frames the folder should hold (from a list; 0: unknown): fewer are missing.

  Returns:
    The names, naturally sorted.

  Raises:
    FileNotFoundError: no such folder.
    FrameError: no image (`empty`), a gap in the frame numbers or fewer than `expected` images
      (`missing`).

  Example:
    >>> list_frames("/data/vimeo_septuplet/sequences/00001/0001")
    ['im1.png', 'im2.png', 'im3.png', 'im4.png', 'im5.png', 'im6.png', 'im7.png']
  """
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"No such frame folder: {folder}")
  names = sorted(
    (
      n
      for n in os.listdir(folder)
      if not n.startswith(".") and is_image(n) and fnmatch.fnmatchcase(n, pattern)
    ),
    key=natural_key,
  )
  if not names:
    raise FrameError(
      folder, "empty", f"no image files matching {pattern!r} ({' '.join(IMAGE_SUFFIXES)})"
    )
  if len(names) < expected:
    raise FrameError(
      folder, "missing", f"{len(names)} of the {expected} frames its list names (last: {names[-1]})"
    )
  numbers = [_TRAILING_NUMBER.search(os.path.splitext(n)[0]) for n in names]
  if all(numbers):
    values = [int(m.group(1)) for m in numbers]
    for i in range(1, len(values)):
      if values[i] != values[i - 1] + 1:
        stem, suffix = os.path.splitext(names[i - 1])
        width = len(numbers[i - 1].group(1))
        gone = f"{stem[: len(stem) - width]}{values[i - 1] + 1:0{width}d}{suffix}"
        raise FrameError(
          folder, "missing", f"{gone} is missing between {names[i - 1]} and {names[i]}"
        )
  return names


# PIL modes decoded to RGB as PIL converts them: bilevel, grey, grey + alpha, palette (with or
# without alpha), RGB(A), CMYK, YCbCr. Alpha is dropped (the colour is kept, as
# `tf.io.decode_image(channels=3)` does for stored frames), never composited.
_EIGHT_BIT_MODES = ("1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr")
# 16-bit grey (PIL keeps all 16 bits): its high byte, as PIL reads 16-bit RGB(A) PNGs and
# `tf.io.decode_image` any 16-bit PNG (so stored and host-decoded frames agree to the bit).
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def _as_rgb(image, name: str) -> np.ndarray:
  """uint8 RGB `[H, W, 3]` of an open PIL image, or a `FrameError` (`format`) naming its format."""
  mode = image.mode
  if mode in _SIXTEEN_BIT_MODES or (mode == "I" and image.format == "PNG"):
    grey = np.asarray(image).astype(np.int64)  # PNG mode "I" holds 16-bit samples too
    grey = (np.clip(grey, 0, 65535) >> 8).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)
  if mode in ("P", "PA"):  # via RGBA: PIL converts every palette (and its transparency) to it
    return np.asarray(image.convert("RGBA"))[..., :3]
  if mode in _EIGHT_BIT_MODES:
    return np.asarray(image.convert("RGB"))
  raise FrameError(
    "",
    "format",
    f"{name} is a {image.format or 'image'} of pixel format {mode!r} (32-bit integer, float or "
    "another colour space), not read as RGB",
  )


def read_image(path: str) -> np.ndarray:
  """Decodes one image file to uint8 RGB `[H, W, 3]`.

  Grey, grey + alpha, palette, RGBA, CMYK and bilevel images are converted to RGB (alpha is
  dropped, not composited); 16-bit samples keep their high byte (65535 -> 255, a mid-grey
  32896 -> 128), as `tf.io.decode_image` decodes them. Other pixel formats (32-bit integer or float, other colour spaces) are refused.

  Raises:
    FileNotFoundError: no such file.
    FrameError: it does not decode (`corrupt`), or its pixel format is not one of the above
      (`format`, naming the file and its format).

  Example:
    >>> read_image("/data/Vid4/GT/calendar/0000.png").shape
    (576, 720, 3)
  """
  from PIL import Image, UnidentifiedImageError

  name = os.path.basename(path)
  try:
    with Image.open(path) as image:
      return _as_rgb(image, name)
  except FrameError as e:
    raise FrameError(os.path.dirname(path), e.reason, e.detail) from None
  except FileNotFoundError:
    raise FileNotFoundError(f"No such image file: {path}") from None
  except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
    raise FrameError(os.path.dirname(path), "corrupt", f"{name}: {e}") from None


def read_frames(
  folder: str,
  indices: Sequence[int] | np.ndarray | Callable[[VideoMeta], np.ndarray],
  *,
  names: Sequence[str] | None = None,
  pattern: str = "*",
  expected: int = 0,
) -> np.ndarray:
  """Decodes the frames at `indices` of a sequence folder (each distinct frame once).

  Args:
    folder: the sequence folder.
    indices: frame indices (any order, repeats allowed; past the end gives the last frame), or a
      function of a `VideoMeta` (`fps` and the size 0: unknown before decoding; `num_frames`)
      returning them, as `jaxres.data.video.read_frames` takes.
    names: the folder's frame names if already listed (`list_frames`).
    pattern: else, the glob `list_frames` lists them with.
    expected: else, the frames the folder should hold (`list_frames`).

  Returns:
    uint8 `[len(indices), H, W, 3]`.

  Raises:
    FileNotFoundError: no such folder.
    FrameError: see the module notes.

  Example:
    >>> read_frames(folder, lambda meta: np.arange(meta.num_frames))   # the whole sequence
  """
  names = list(names) if names is not None else list_frames(folder, pattern, expected)
  if callable(indices):
    meta = VideoMeta(folder, 0.0, len(names), 0.0, 0, 0, 0, "image")
    indices = indices(meta)
  indices = np.minimum(np.asarray(indices, np.int64).reshape(-1), len(names) - 1)
  if indices.size == 0 or indices.min() < 0:
    raise ValueError(f"read_frames({folder}) needs non-negative indices, got {indices}.")
  decoded = {}
  for k in np.unique(indices):
    try:
      decoded[int(k)] = read_image(os.path.join(folder, names[k]))
    except FileNotFoundError:
      raise FrameError(folder, "missing", f"{names[k]} vanished after listing") from None
  shapes = {a.shape for a in decoded.values()}
  if len(shapes) > 1:
    raise FrameError(folder, "corrupt", f"frames of different sizes {sorted(shapes)}")
  return np.stack([decoded[int(k)] for k in indices])


def read_paired(
  folder: str, lr_folder: str, indices, *, scale: int, pattern: str = "*", expected: int = 0
) -> tuple[np.ndarray, np.ndarray]:
  """The same frames of an HR sequence and its LR twin (same image names), checked to pair.

  Args:
    folder: the HR sequence folder.
    lr_folder: the LR folder holding the same names (e.g. REDS `train_sharp_bicubic/X4/000`).
    indices: as `read_frames`.
    scale: the LR frames must be exactly `1/scale` of the HR size.
    pattern, expected: as `list_frames`.

  Returns:
    `(hr uint8 [T, H, W, 3], lr uint8 [T, H/scale, W/scale, 3])`.

  Raises:
    FileNotFoundError: no such HR folder.
    FrameError: as `read_frames`; an LR folder or image missing (`missing`); sizes that do not
      pair (`corrupt`).

  Example:
    >>> hr, lr = read_paired("REDS/train_sharp/000", "REDS/train_sharp_bicubic/X4/000", [0], scale=4)
  """
  names = list_frames(folder, pattern, expected)
  if not os.path.isdir(lr_folder):
    raise FrameError(lr_folder, "missing", "no LR folder for this sequence")
  lr_names = set(os.listdir(lr_folder))
  absent = [n for n in names if n not in lr_names]
  if absent:
    more = f" and {len(absent) - 1} more" if len(absent) > 1 else ""
    raise FrameError(lr_folder, "missing", f"LR frame {absent[0]}{more} absent")
  chosen = []

  def pick(meta):
    chosen.append(np.asarray(indices(meta) if callable(indices) else indices))
    return chosen[0]

  hr = read_frames(folder, pick, names=names)
  lr = read_frames(lr_folder, chosen[0], names=names)
  if lr.shape[1] * scale != hr.shape[1] or lr.shape[2] * scale != hr.shape[2]:
    raise FrameError(
      lr_folder,
      "corrupt",
      f"LR frames {lr.shape[1]}x{lr.shape[2]} are not 1/{scale} "
      f"of the HR {hr.shape[1]}x{hr.shape[2]}",
    )
  return hr, lr


def read_sequence(folder: str, pattern: str = "*") -> np.ndarray:
  """Every frame of a sequence folder: uint8 `[T, H, W, 3]`.

  Example:
    >>> read_sequence("/data/Vid4/GT/calendar").shape
    (41, 576, 720, 3)
  """
  names = list_frames(folder, pattern)
  return read_frames(folder, np.arange(len(names)), names=names)
