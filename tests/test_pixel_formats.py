"""Frames decode to the right 8-bit RGB whatever their pixel format, or are refused by name: on the
host (PIL: training from frame folders, `jaxres prepare`, SR evaluation) and in tf.data (frames that
`jaxres prepare` stores as they were)."""

import io

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from jaxres.data import frames, transforms
from jaxres.data.tfhost import tf

SIZE = 8


def _grey16_png(value=32896):
  buffer = io.BytesIO()
  iio.imwrite(buffer, np.full((SIZE, SIZE), value, np.uint16), extension=".png")
  return buffer.getvalue()


def _pil_png(image):
  buffer = io.BytesIO()
  image.save(buffer, "PNG")
  return buffer.getvalue()


def _cases():
  """`{name: (PNG bytes, the RGB every pixel should decode to)}`."""
  palette = Image.fromarray(np.full((SIZE, SIZE, 3), (50, 100, 150), np.uint8)).quantize(4)
  grey_alpha = np.stack(
    [np.full((SIZE, SIZE), 90, np.uint8), np.full((SIZE, SIZE), 7, np.uint8)], -1
  )
  rgba = np.zeros((SIZE, SIZE, 4), np.uint8)
  rgba[...] = (10, 20, 30, 0)  # fully transparent: the colour is kept, alpha dropped
  gradient16 = np.linspace(0, 65535, SIZE * SIZE).astype(np.uint16).reshape(SIZE, SIZE)
  buffer = io.BytesIO()
  iio.imwrite(buffer, gradient16, extension=".png")
  return {
    "grey16": (_grey16_png(), (128, 128, 128)),
    "grey16_black_white": (_grey16_png(65535), (255, 255, 255)),
    "palette": (_pil_png(palette), tuple(np.asarray(palette.convert("RGB"))[0, 0])),
    "grey_alpha": (_pil_png(Image.fromarray(grey_alpha, "LA")), (90, 90, 90)),
    "rgba": (_pil_png(Image.fromarray(rgba, "RGBA")), (10, 20, 30)),
    "gradient16": (buffer.getvalue(), None),
  }


@pytest.mark.parametrize("name", list(_cases()))
def test_host_and_tf_decoders_agree_on_every_supported_png(tmp_path, name):
  data, rgb = _cases()[name]
  (tmp_path / "00000000.png").write_bytes(data)
  host = frames.read_image(str(tmp_path / "00000000.png"))
  stored = transforms.decode_frames(tf.constant([data]), tf.constant([0]), "any").numpy()[0]
  assert host.dtype == np.uint8 and host.shape == (SIZE, SIZE, 3)
  if rgb is None:  # a 16-bit ramp, black to white: each sample's high byte
    ramp = np.linspace(0, 65535, SIZE * SIZE).astype(np.uint16).reshape(SIZE, SIZE)
    np.testing.assert_array_equal(host[..., 0], (ramp >> 8).astype(np.uint8))
  else:
    assert (host == np.array(rgb, np.uint8)).all(), host[0, 0]
  np.testing.assert_array_equal(host, stored)  # the tf.data path decodes the same pixels


def test_a_mid_grey_16_bit_sequence_reads_as_mid_grey(tmp_path):
  for i in range(3):
    (tmp_path / f"{i:08d}.png").write_bytes(_grey16_png())
  clip = frames.read_sequence(str(tmp_path))
  assert clip.shape == (3, SIZE, SIZE, 3) and abs(float(clip.mean()) - 128) < 0.5


def test_an_unsupported_pixel_format_is_refused_naming_the_file_and_format(tmp_path):
  Image.fromarray(np.full((SIZE, SIZE), 0.5, np.float32), "F").save(tmp_path / "0001.tif")
  with pytest.raises(frames.FrameError) as error:
    frames.read_image(str(tmp_path / "0001.tif"))
  assert error.value.reason == "format" and error.value.path == str(tmp_path)
  line = str(error.value)
  assert "\n" not in line and "0001.tif" in line and "TIFF" in line and "'F'" in line
