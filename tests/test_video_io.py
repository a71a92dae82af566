"""`jaxres.data.video` on real files written by the test: codecs, containers, odd sizes, 10-bit and
gray storage, seeking, VFR, rotation, bad files; streaming against clip decoding; atomic writing."""

import contextlib
import os

import av
import numpy as np
import pytest
from media import cut_with_index_first

from jaxres.data import video
from jaxres.data.video import write_video


def frames_with_index(num_frames, height, width):
  """Smooth gradients that shift with the frame index, so frame k is told apart from k +- 1."""
  yy, xx = np.mgrid[:height, :width]
  return np.stack(
    [
      np.stack(
        [(xx * 4 + 12 * t) % 256, (yy * 4 + 5 * t) % 256, np.full_like(xx, (20 * t) % 200 + 20)], -1
      )
      for t in range(num_frames)
    ]
  ).astype(np.uint8)


def assert_same_frames(decoded, written, tol=6.0):
  assert decoded.shape == written.shape
  errors = np.abs(decoded.astype(np.float32) - written).mean(axis=(1, 2, 3))
  assert errors.max() < tol, errors
  if len(written) > 1:  # Each frame is closer to its own original than to the next one.
    shifted = np.abs(decoded[:-1].astype(np.float32) - written[1:]).mean(axis=(1, 2, 3))
    assert np.all(errors[:-1] < shifted)


def streamed(path):
  meta, frames = video.stream_video(path)
  images, times = zip(*frames)
  return meta, np.stack(images), np.array(times)


def assert_all_readers_agree(path, count):
  """probe, read_video, read_frames and stream_video give the same size and frames."""
  meta = video.probe(path)
  full = video.read_video(path).frames
  assert full.shape == (count, meta.height, meta.width, 3) and full.dtype == np.uint8
  picked = [count - 1, 0, count // 2, count // 2]
  np.testing.assert_array_equal(video.read_frames(path, picked), full[picked])
  np.testing.assert_array_equal(video.read_video(path, max_frames=3).frames, full[:3])
  stream_meta, images, times = streamed(path)
  assert stream_meta == meta
  np.testing.assert_array_equal(images, full)
  np.testing.assert_allclose(times, np.arange(count) / meta.fps, atol=1e-3)
  return full


@pytest.mark.parametrize(
  "name,codec,size,count",
  [
    ("h264.mp4", None, (48, 64), 17),
    ("h264_odd.mp4", None, (37, 51), 13),
    ("mpeg4.avi", None, (40, 56), 11),
    ("h264.mkv", None, (36, 44), 9),
    ("vp9.webm", None, (33, 47), 15),
    ("mjpeg.avi", "mjpeg", (30, 42), 7),
  ],
)
def test_decode_matches_written(tmp_path, name, codec, size, count):
  written = frames_with_index(count, *size)
  path = write_video(str(tmp_path / name), written, fps=25, codec=codec)
  meta = video.probe(path)
  assert (meta.num_frames, meta.height, meta.width, meta.rotation) == (count, *size, 0)
  assert meta.fps == pytest.approx(25.0)
  decoded = video.read_video(path)
  assert decoded.fps == pytest.approx(25.0)
  assert_same_frames(decoded.frames, written)
  assert_all_readers_agree(path, count)


@pytest.mark.parametrize(
  "name,codec,pix_fmt,size",
  [
    ("10bit.mp4", "libx264", "yuv420p10le", (32, 48)),
    ("10bit_odd.mkv", "ffv1", "yuv420p10le", (33, 47)),
    ("gray.mkv", "ffv1", "gray", (33, 47)),
    ("gray10.mkv", "ffv1", "gray10le", (32, 48)),
  ],
)
def test_ten_bit_and_gray_storage_decode_to_uint8_rgb(tmp_path, name, codec, pix_fmt, size):
  written = frames_with_index(9, *size)
  if pix_fmt.startswith("gray"):
    written = np.repeat(written[..., :1], 3, axis=-1)  # Gray storage keeps only gray pictures.
  path = write_video(str(tmp_path / name), written, fps=25, codec=codec, pix_fmt=pix_fmt)
  with av.open(path) as container:  # The file really stores that format.
    assert next(container.decode(video=0)).format.name == pix_fmt
  full = assert_all_readers_agree(path, 9)
  assert_same_frames(full, written)


@pytest.mark.parametrize("name", ["long.mp4", "long.webm", "long.avi"])
def test_seeking_gives_the_same_frames_as_decoding_everything(tmp_path, name):
  written = frames_with_index(90, 32, 48)
  path = write_video(str(tmp_path / name), written, fps=30, gop=10)
  full = video.read_video(path).frames
  for indices in ([70, 71, 72], [45, 89], [30, 31]):
    np.testing.assert_array_equal(video.read_frames(path, indices), full[indices])
  np.testing.assert_array_equal(video.read_frames(path, [50], seek=False), full[[50]])
  # Indices past the end (a header that over-estimates) repeat the last frame.
  np.testing.assert_array_equal(video.read_frames(path, [95]), full[[89]])
  np.testing.assert_array_equal(streamed(path)[1], full)


def test_index_function_sees_the_metadata(tmp_path):
  path = write_video(str(tmp_path / "v.mp4"), frames_with_index(20, 32, 32), fps=24)
  seen = {}

  def last_four(meta):
    seen["meta"] = meta
    return np.arange(meta.num_frames - 4, meta.num_frames)

  clip = video.read_frames(path, last_four)
  assert seen["meta"].num_frames == 20 and clip.shape == (4, 32, 32, 3)


def test_variable_frame_rate_is_sampled_on_the_time_grid(tmp_path):
  written = frames_with_index(12, 32, 32)
  gaps = np.array([0.04, 0.12] * 6)[:11]  # Frames shown for 1 or 3 ticks of 40 ms.
  times = np.concatenate([[0.0], np.cumsum(gaps)])
  path = write_video(str(tmp_path / "vfr.mp4"), written, fps=25, timestamps=times)
  meta = video.probe(path)
  decoded = video.read_video(path)
  grid = np.arange(len(decoded.frames)) / decoded.fps
  # The frame on screen at each grid time: the last one whose timestamp is not later.
  pick = np.searchsorted(times, grid + 0.25 / decoded.fps, side="right") - 1
  assert len(decoded.frames) == meta.num_frames
  assert np.abs(decoded.frames.astype(np.float32) - written[pick]).mean() < 6
  k = np.array([5, 1, 9])
  np.testing.assert_array_equal(video.read_frames(path, k), decoded.frames[k])
  np.testing.assert_array_equal(video.read_video(path, max_frames=8).frames, decoded.frames[:8])
  # The stream gives the stored frames at their own times; on the grid they are read_video's.
  stream_meta, images, stream_times = streamed(path)
  assert stream_meta == meta
  np.testing.assert_allclose(stream_times, times, atol=1e-3)
  assert_same_frames(images, written)
  np.testing.assert_array_equal(images[pick], decoded.frames)


def write_rotated(path, frames, fps, degrees):
  """H.264 with the display matrix phones write (what `ffmpeg -display_rotation` sets)."""
  with av.open(path, "w") as container:
    stream = container.add_stream("libx264", rate=fps)
    stream.height, stream.width = frames.shape[1:3]
    stream.pix_fmt = "yuv420p"
    stream.options = {"crf": "10"}
    stream.set_display_rotation(degrees)
    for image in frames:
      for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
  return path


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotation_metadata_is_applied_counter_clockwise(tmp_path, degrees):
  written = frames_with_index(6, 32, 48)
  written[:, :8, :8] = 255  # A white top-left corner shows the direction.
  path = write_rotated(str(tmp_path / "rotated.mp4"), written, 25, degrees)
  meta = video.probe(path)
  displayed = np.rot90(written, k=degrees // 90, axes=(1, 2))  # np.rot90 turns counter-clockwise.
  assert meta.rotation == degrees and (meta.height, meta.width) == displayed.shape[1:3]
  full = assert_all_readers_agree(path, 6)
  assert_same_frames(full, displayed)
  corner = {
    90: (slice(-8, None), slice(None, 8)),
    180: (slice(-8, None), slice(-8, None)),
    270: (slice(None, 8), slice(-8, None)),
  }[degrees]
  assert full[0][corner].min() > 200  # Turned 90 counter-clockwise, top-left lands bottom-left.


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
  readers = (video.probe, video.read_video, lambda p: video.read_frames(p, [0]), video.stream_video)
  for path in (truncated, garbage, text, empty):
    for fn in readers:
      with pytest.raises(video.DecodeError, match=os.path.basename(path)) as info:
        fn(str(path))
      assert info.value.path == str(path) and info.value.reason in (
        "corrupt",
        "partial",
        "empty",
        "not_video",
      )
  for fn in readers:
    with pytest.raises(FileNotFoundError, match="absent.mp4"):
      fn(str(tmp_path / "absent.mp4"))


def test_a_cut_video_with_its_index_first_is_partial_for_clip_readers_and_ends_a_stream(tmp_path):
  """The header promises 40 frames; the frames stop halfway. Never a silently repeated frame."""
  written = frames_with_index(40, 32, 32)
  cut = cut_with_index_first(
    write_video(str(tmp_path / "a.mp4"), written, fps=25), str(tmp_path / "cut.mp4"), keep=0.6
  )
  assert video.probe(cut).num_frames == 40  # the header alone looks whole
  meta, frames = video.stream_video(cut)
  decoded = [image for image, _ in frames]
  assert 5 < len(decoded) < 35 and video.is_partial(len(decoded), meta.num_frames)
  assert_same_frames(np.stack(decoded), written[: len(decoded)])
  for read in (
    video.read_video,
    lambda p: video.read_frames(p, [0, 39]),
    lambda p: video.read_frames(p, [39], seek=False),
  ):
    with pytest.raises(video.DecodeError, match=f"after {len(decoded)} of the 40 frames") as info:
      read(cut)
    assert info.value.reason == "partial"
  # What did decode is still readable by index; a header one frame long is not a partial decode.
  assert_same_frames(video.read_frames(cut, [0, 3]), written[[0, 3]])
  assert not video.is_partial(39, 40) and not video.is_partial(98, 100)


def test_zero_frame_video_is_an_empty_decode_error(tmp_path):
  path = str(tmp_path / "zero.mkv")
  with av.open(path, "w") as container:
    stream = container.add_stream("libx264", rate=25)
    stream.width = stream.height = 32
    stream.pix_fmt = "yuv420p"
    container.start_encoding()  # Header with a video stream, then no frames at all.
  for fn in (
    video.probe,
    video.read_video,
    video.stream_video,
    lambda p: video.read_frames(p, [0]),
  ):
    with pytest.raises(video.DecodeError, match="zero.mkv"):
      fn(path)


def test_stream_closes_the_file_when_dropped_early(tmp_path):
  path = write_video(str(tmp_path / "v.mp4"), frames_with_index(30, 32, 32), fps=25)
  meta, frames = video.stream_video(path)
  image, time = next(frames)
  assert image.shape == (32, 32, 3) and time == 0.0 and meta.num_frames == 30
  frames.close()
  assert next(frames, None) is None


@pytest.mark.parametrize("name", ["vfr.mp4", "vfr.mkv", "vfr.webm", "vfr.avi"])
def test_writer_keeps_given_times_and_duration(tmp_path, name):
  written = frames_with_index(10, 32, 48)
  times = np.array([0.0, 0.05, 0.1, 0.4, 0.45, 0.5, 1.0, 1.1, 1.2, 1.3])
  path = str(tmp_path / name)
  with video.VideoWriter(path, fps=10.0) as writer:
    for image, time in zip(written, times):
      writer.write(image, time)
  meta, images, stream_times = streamed(path)
  assert_same_frames(images, written)
  if name.endswith(".avi"):  # One stored rate: the frames follow fps.
    np.testing.assert_allclose(stream_times, np.arange(10) / 10.0, atol=1e-3)
    assert meta.duration == pytest.approx(1.0)
  else:
    np.testing.assert_allclose(stream_times, times, atol=1e-3)
    # MKV shows the last frame for 1 / fps; an MP4 with B-frames may end at the last frame's time.
    assert 1.3 - 1e-3 <= meta.duration <= 1.4 + 1e-3


def test_writing_is_atomic(tmp_path):
  out = tmp_path / "out.mp4"
  out.write_bytes(b"previous")
  frames = frames_with_index(4, 32, 32)
  with pytest.raises(RuntimeError, match="half-way"):
    with video.VideoWriter(str(out), 25.0) as writer:
      writer.write(frames[0])
      writer.write(frames[1])
      raise RuntimeError("half-way")
  # The earlier file is untouched and no temporary file is left.
  assert sorted(os.listdir(tmp_path)) == ["out.mp4"] and out.read_bytes() == b"previous"
  with pytest.raises(ValueError, match="differs"):
    with video.VideoWriter(str(out), 25.0) as writer:
      writer.write(frames[0])
      writer.write(frames[0, :16])
  with pytest.raises(ValueError, match="every frame"):
    with video.VideoWriter(str(out), 25.0) as writer:
      writer.write(frames[0], 0.0)
      writer.write(frames[1])
  with pytest.raises(ValueError, match="No frames"):
    video.VideoWriter(str(out), 25.0).close()
  assert sorted(os.listdir(tmp_path)) == ["out.mp4"] and out.read_bytes() == b"previous"
  write_video(str(out), frames, 25.0)
  assert sorted(os.listdir(tmp_path)) == ["out.mp4"] and video.probe(str(out)).num_frames == 4
  with pytest.raises(FileNotFoundError, match="create it first"):
    video.VideoWriter(str(tmp_path / "missing" / "o.mp4"), 25.0)
  with pytest.raises(ValueError, match="must end in"):
    video.VideoWriter(str(tmp_path / "o.gif"), 25.0)
  png = tmp_path / "strip.png"
  video.write_png_atomic(str(png), frames[0])
  assert sorted(os.listdir(tmp_path)) == ["out.mp4", "strip.png"]


@contextlib.contextmanager
def decoded_pts():
  """The pts of every frame the readers decode (`video._timed` yields) inside the block."""
  seen, real_timed = [], video._timed

  def counting(*args, **kwargs):
    for frame, time in real_timed(*args, **kwargs):
      seen.append(frame.pts)
      yield frame, time

  video._timed = counting
  try:
    yield seen
  finally:
    video._timed = real_timed


def reference_decode(path):
  """Every frame, decoded and converted as read_frames did before its converter was kept warm."""
  with av.open(path) as container:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(stream)])


@pytest.mark.parametrize(
  "name,codec,pix_fmt",
  [
    ("mpeg4.avi", None, None),  # the benchmark's default: MPEG-4 Part 2, a keyframe every 12
    ("h264.mp4", None, None),  # B-frames: presentation order differs from decoding order
    ("mjpeg.avi", "mjpeg", None),  # intra-only
    ("10bit.mkv", "ffv1", "yuv420p10le"),
    ("gray.mkv", "ffv1", "gray"),
  ],
)
def test_clips_seek_and_decode_only_their_frames_to_the_pixels_of_a_whole_decode(
  tmp_path, name, codec, pix_fmt
):
  written = frames_with_index(60, 36, 52)
  path = write_video(str(tmp_path / name), written, fps=25, codec=codec, pix_fmt=pix_fmt, gop=12)
  reference = reference_decode(path)
  assert len(reference) == 60
  for start in (0, 5, 23, 24, 30, 37, 44):
    indices = np.arange(start, start + 16)
    for threaded in (True, False):
      with decoded_pts() as decoded_frames:
        clip = video.read_frames(path, indices, threaded=threaded)
      np.testing.assert_array_equal(clip, reference[indices], err_msg=f"{start} {threaded}")
      if start >= 24:  # Seeks: decodes from the keyframe before the clip, stops after its end.
        assert len(decoded_frames) <= 16 + 12 + 4, (start, len(decoded_frames))


def test_warm_converters_in_threads_give_the_pixels_of_fresh_ones(tmp_path):
  import threading

  paths = [
    write_video(str(tmp_path / f"v{i}.mkv"), frames_with_index(8, 20 + 4 * i, 30), 25, codec="ffv1")
    for i in range(3)
  ] + [write_video(str(tmp_path / "p.mp4"), frames_with_index(8, 24, 32), 25)]
  results = {}

  def read_all(k):
    results[k] = [video.read_frames(p, np.arange(8), threaded=k % 2 == 0) for p in paths * 2]

  threads = [threading.Thread(target=read_all, args=(k,)) for k in range(4)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  for k in range(4):
    for p, clip in zip(paths * 2, results[k]):
      np.testing.assert_array_equal(clip, reference_decode(p))


def test_clips_come_in_one_aligned_buffer_in_index_order_with_repeats(tmp_path):
  # 64-byte aligned and C-contiguous: what TensorFlow takes from tf.numpy_function without a copy.
  path = write_video(str(tmp_path / "v.mp4"), frames_with_index(20, 24, 32), 25)
  reference = reference_decode(path)
  indices = np.array([7, 3, 3, 19, 0, 7])
  clip = video.read_frames(path, indices, threaded=False)
  assert clip.ctypes.data % 64 == 0 and clip.flags.c_contiguous and clip.dtype == np.uint8
  np.testing.assert_array_equal(clip, reference[indices])
  for shape, dtype in (((3, 5, 7, 3), np.uint8), ((2, 9), np.float32)):
    empty = video.aligned_empty(shape, dtype)
    assert empty.shape == shape and empty.dtype == dtype and empty.ctypes.data % 64 == 0


def test_clips_keep_only_the_columns_asked_for_as_displayed(tmp_path):
  path = write_video(str(tmp_path / "v.mp4"), frames_with_index(12, 24, 40), 25)
  reference = reference_decode(path)
  seen = []

  def columns(height, width):
    seen.append((height, width))
    return 17

  clip = video.read_frames(path, [2, 9], threaded=False, columns=columns)
  assert seen == [(24, 40)] and clip.shape == (2, 24, 17, 3) and clip.ctypes.data % 64 == 0
  np.testing.assert_array_equal(clip, reference[[2, 9], :, :17])
  whole = video.read_frames(path, [2], threaded=False, columns=lambda h, w: w + 5)
  np.testing.assert_array_equal(whole, reference[[2]])


def test_scaled_clips_are_the_frames_scaled_alone_and_close_to_tensorflows_resize(tmp_path):
  from jaxres.data.tfhost import tf

  written = frames_with_index(20, 48, 64)
  plain = write_video(str(tmp_path / "v.mp4"), written, 25)
  turned = write_rotated(str(tmp_path / "r.mp4"), written, 25, 90)
  for path in (plain, turned):
    whole = video.read_frames(path, np.arange(20))
    height, width = whole.shape[1:3]
    seen = []

    def size(h, w):
      seen.append((h, w))
      return (h * 5) // 8, (w * 5) // 8  # displayed (H, W) in, the scaled size out

    indices = np.array([3, 3, 19, 0, 7])
    for threaded in (True, False):
      seen.clear()
      clip = video.read_frames(path, indices, threaded=threaded, size=size)
      assert seen == [(height, width)]
      assert clip.shape == (5, (height * 5) // 8, (width * 5) // 8, 3)
      assert clip.ctypes.data % 64 == 0 and clip.flags.c_contiguous
      alone = np.stack([video.scale_rgb(whole[k], *clip.shape[1:3]) for k in indices])
      np.testing.assert_array_equal(clip, alone, err_msg=f"{path} threaded={threaded}")
    resized = tf.image.resize(whole, clip.shape[1:3], antialias=True).numpy()
    resized = np.clip(np.round(resized), 0, 255).astype(np.uint8)[indices]
    diff = np.abs(clip.astype(int) - resized)
    assert np.mean(diff <= 1) > 0.99 and diff.mean() < 0.1, (diff.max(), diff.mean())
  image = whole[0]
  assert video.scale_rgb(image, *image.shape[:2]) is image
  with pytest.raises(ValueError, match="columns or size"):
    video.read_frames(plain, [0], columns=lambda h, w: w, size=lambda h, w: (h, w))


@pytest.mark.parametrize("timing", ["constant", "variable"])
def test_one_thread_clips_skip_unreferenced_frames_before_them_and_keep_their_pixels(
  tmp_path, timing
):
  # H.264 with B-frames and one keyframe (libx264's default interval): every clip decodes from
  # the first frame, and the unreferenced B-frames before it need not be decoded at all.
  written = frames_with_index(60, 36, 52)
  times = None
  if timing == "variable":  # shown for 1 or 3 ticks of 40 ms
    times = np.concatenate([[0.0], np.cumsum(np.array([0.04, 0.12] * 30)[:59])])
  path = write_video(str(tmp_path / f"{timing}.mp4"), written, fps=25, timestamps=times)
  whole = video.read_video(path).frames  # threads: nothing skipped
  counts = {False: [], True: []}  # frames decoded per clip, one thread and threaded
  for start in (1, 7, 16, 23, len(whole) - 16):
    indices = np.arange(start, start + 16)
    for threaded in (False, True):
      with decoded_pts() as output:
        clip = video.read_frames(path, indices, threaded=threaded)
      np.testing.assert_array_equal(clip, whole[indices], err_msg=f"{start} {threaded}")
      counts[threaded].append(len(output))
  assert all(one <= every for one, every in zip(counts[False], counts[True])), counts
  assert sum(counts[True]) - sum(counts[False]) >= 10, counts
