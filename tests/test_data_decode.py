"""Decoding real video files written by the test: codecs, containers, odd sizes, seeking, VFR,
rotation, and bad files."""

import os
import subprocess

import imageio_ffmpeg
import numpy as np
import pytest

from jaxres.data import decode
from jaxres.data.encode import write_video


def frames_with_index(num_frames, height, width):
  """Smooth gradients that shift with the frame index, so frame k is told apart from k +- 1."""
  yy, xx = np.mgrid[:height, :width]
  return np.stack([np.stack([(xx * 4 + 12 * t) % 256, (yy * 4 + 5 * t) % 256,
                             np.full_like(xx, (20 * t) % 200 + 20)], -1)
                   for t in range(num_frames)]).astype(np.uint8)


def assert_same_frames(decoded, written, tol=6.0):
  assert decoded.shape == written.shape
  errors = np.abs(decoded.astype(np.float32) - written).mean(axis=(1, 2, 3))
  assert errors.max() < tol, errors
  if len(written) > 1:  # Each frame is closer to its own original than to the next one.
    shifted = np.abs(decoded[:-1].astype(np.float32) - written[1:]).mean(axis=(1, 2, 3))
    assert np.all(errors[:-1] < shifted)


@pytest.mark.parametrize("name,codec,size,count", [
    ("h264.mp4", None, (48, 64), 17),
    ("h264_odd.mp4", None, (37, 51), 13),
    ("mpeg4.avi", None, (40, 56), 11),
    ("h264.mkv", None, (36, 44), 9),
    ("vp9.webm", None, (33, 47), 15),
    ("mjpeg.avi", "mjpeg", (30, 42), 7),
])
def test_decode_matches_written(tmp_path, name, codec, size, count):
  written = frames_with_index(count, *size)
  path = write_video(str(tmp_path / name), written, fps=25, codec=codec)
  meta = decode.probe(path)
  assert (meta.num_frames, meta.height, meta.width, meta.rotation) == (count, *size, 0)
  assert meta.fps == pytest.approx(25.0)
  video = decode.read_video(path)
  assert video.fps == pytest.approx(25.0)
  assert_same_frames(video.frames, written)
  picked = decode.read_frames(path, [count - 1, 0, 3, 3])
  assert_same_frames(picked[1:2], written[:1])
  np.testing.assert_array_equal(picked, video.frames[[count - 1, 0, 3, 3]])


@pytest.mark.parametrize("name", ["long.mp4", "long.webm", "long.avi"])
def test_seeking_gives_the_same_frames_as_decoding_everything(tmp_path, name):
  written = frames_with_index(90, 32, 48)
  path = write_video(str(tmp_path / name), written, fps=30, gop=10)
  full = decode.read_video(path).frames
  for indices in ([70, 71, 72], [45, 89], [30, 31]):
    np.testing.assert_array_equal(decode.read_frames(path, indices), full[indices])
  np.testing.assert_array_equal(decode.read_frames(path, [50], seek=False), full[[50]])
  # Indices past the end (a header that over-estimates) repeat the last frame.
  np.testing.assert_array_equal(decode.read_frames(path, [95]), full[[89]])


def test_index_function_sees_the_metadata(tmp_path):
  path = write_video(str(tmp_path / "v.mp4"), frames_with_index(20, 32, 32), fps=24)
  seen = {}

  def last_four(meta):
    seen["meta"] = meta
    return np.arange(meta.num_frames - 4, meta.num_frames)

  clip = decode.read_frames(path, last_four)
  assert seen["meta"].num_frames == 20 and clip.shape == (4, 32, 32, 3)


def test_variable_frame_rate_is_sampled_on_the_time_grid(tmp_path):
  written = frames_with_index(12, 32, 32)
  gaps = np.array([0.04, 0.12] * 6)[:11]  # Frames shown for 1 or 3 ticks of 40 ms.
  times = np.concatenate([[0.0], np.cumsum(gaps)])
  path = write_video(str(tmp_path / "vfr.mp4"), written, fps=25, timestamps=times)
  meta = decode.probe(path)
  video = decode.read_video(path)
  grid = np.arange(len(video.frames)) / video.fps
  # The frame on screen at each grid time: the last one whose timestamp is not later.
  expected = written[np.searchsorted(times, grid + 0.25 / video.fps, side="right") - 1]
  assert len(video.frames) == meta.num_frames
  assert np.abs(video.frames.astype(np.float32) - expected).mean() < 6
  k = np.array([5, 1, 9])
  np.testing.assert_array_equal(decode.read_frames(path, k), video.frames[k])


def test_rotation_metadata_is_applied_like_ffmpeg(tmp_path):
  written = frames_with_index(6, 32, 48)
  plain = write_video(str(tmp_path / "plain.mp4"), written, fps=25)
  rotated = str(tmp_path / "rotated.mp4")
  subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error",
                  "-display_rotation", "90", "-i", plain, "-c", "copy", rotated], check=True)
  meta = decode.probe(rotated)
  assert meta.rotation in (90, 270) and (meta.height, meta.width) == (48, 32)
  # ffmpeg's own auto-rotated decode is the reference for the direction.
  out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", rotated,
                        "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], check=True,
                       capture_output=True).stdout
  reference = np.frombuffer(out, np.uint8).reshape(6, 48, 32, 3)
  np.testing.assert_array_equal(decode.read_video(rotated).frames, reference)
  np.testing.assert_array_equal(decode.read_frames(rotated, [4]), reference[[4]])


def test_bad_files_raise_decode_errors_naming_the_file(tmp_path):
  good = write_video(str(tmp_path / "good.mp4"), frames_with_index(20, 32, 32), fps=25)
  data = open(good, "rb").read()
  truncated = tmp_path / "truncated.mp4"
  truncated.write_bytes(data[: len(data) // 2])
  garbage = tmp_path / "garbage.avi"
  garbage.write_bytes(np.random.default_rng(0).bytes(5000))
  text = tmp_path / "notes.mp4"
  text.write_text("not a video\n")
  empty = tmp_path / "empty.mp4"
  empty.write_bytes(b"")
  for path in (truncated, garbage, text, empty):
    for fn in (decode.probe, decode.read_video, lambda p: decode.read_frames(p, [0])):
      with pytest.raises(decode.DecodeError, match=os.path.basename(path)) as info:
        fn(str(path))
      assert info.value.path == str(path) and info.value.reason in ("corrupt", "empty", "not_video")
  with pytest.raises(FileNotFoundError):
    decode.probe(str(tmp_path / "absent.mp4"))


def test_zero_frame_video_is_an_empty_decode_error(tmp_path):
  import av
  path = str(tmp_path / "zero.mkv")
  with av.open(path, "w") as container:
    stream = container.add_stream("libx264", rate=25)
    stream.width = stream.height = 32
    stream.pix_fmt = "yuv420p"
    container.start_encoding()  # Header with a video stream, then no frames at all.
  with pytest.raises(decode.DecodeError, match="zero.mkv"):
    decode.read_frames(path, [0])
  with pytest.raises(decode.DecodeError, match="zero.mkv"):
    decode.read_video(path)
