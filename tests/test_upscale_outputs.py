"""`jaxres upscale` keeps what is not video (audio, colour), checks its options and output before
any work, draws --compare strips from only their frames, and leaves no leftovers of killed runs."""

import fractions
import os
import signal
import subprocess

import av
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxres import models
from jaxres.data import video
from jaxres.sr import footage, upscale


@pytest.fixture(scope="module")
def tiny_edsr():
  model = models.get("edsr_bicubic_tiny", scale=2)
  variables = model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)), train=False)
  return model, variables


class _Loaded:  # what `checkpoint.load_sr_model` returns
  def __init__(self, model, variables):
    self.model, self.variables, self.scale, self.clip_model = model, variables, 2, False
    self.name, self.step = "edsr_bicubic_tiny", 1


def _command(monkeypatch, tiny_edsr, *args):
  from jaxres import cli
  from jaxres.sr import checkpoint

  monkeypatch.setattr(checkpoint, "load_sr_model", lambda *a, **k: _Loaded(*tiny_edsr))
  return cli.main(["upscale", *args, "--checkpoint", "run", "--no-progress"])


def write_with_sine_audio(path, frames=25, fps=25, size=(16, 16), rate=44100):
  """An H.264 video with an AAC mono 440 Hz sine track as long as the pictures."""
  clip = footage.generate_clips(0, 1, frames, *size)[0]
  with av.open(path, "w") as out:
    pictures = out.add_stream("libx264", rate=fps)
    pictures.width, pictures.height, pictures.pix_fmt = size[1], size[0], "yuv420p"
    sound = out.add_stream("aac", rate=rate)
    sound.layout = "mono"
    total = rate * frames // fps
    wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(total) / rate)).astype(np.float32)
    resampler = av.AudioResampler(format="fltp", layout="mono", rate=rate)
    for i in range(frames):
      image = av.VideoFrame.from_ndarray(clip[i], format="rgb24")
      image.pts, image.time_base = i, fractions.Fraction(1, fps)
      for packet in pictures.encode(image):
        out.mux(packet)
    for begin in range(0, total, 1024):
      chunk = av.AudioFrame.from_ndarray(
        wave[None, begin : begin + 1024], format="flt", layout="mono"
      )
      chunk.sample_rate, chunk.pts, chunk.time_base = rate, begin, fractions.Fraction(1, rate)
      for resampled in resampler.resample(chunk):
        for packet in sound.encode(resampled):
          out.mux(packet)
    for stream in (pictures, sound):
      for packet in stream.encode():
        out.mux(packet)
  return path


def _durations(path):
  """(video seconds, audio seconds, audio sample rate, audio codec), from decoded frames."""
  with av.open(path) as container:
    streams = {s.type: s for s in container.streams}
    assert "audio" in streams, f"{path} has no audio stream"
    video_times, audio_end, rate, codec = [], 0.0, None, streams["audio"].codec_context.name
    for frame in container.decode(streams["video"], streams["audio"]):
      if isinstance(frame, av.VideoFrame):
        video_times.append(frame.time)
      else:
        rate = frame.sample_rate
        audio_end = max(audio_end, frame.time + frame.samples / frame.sample_rate)
  step = np.median(np.diff(video_times))
  return video_times[-1] + step - video_times[0], audio_end - video_times[0], rate, codec


@pytest.mark.parametrize("part", [(), ("--start", "0.52", "--duration", "0.8")])
def test_audio_is_copied_and_trimmed_in_sync(tmp_path, tiny_edsr, monkeypatch, capsys, part):
  src = write_with_sine_audio(str(tmp_path / "in.mp4"), frames=50)
  out = str(tmp_path / "out.mp4")
  assert _command(monkeypatch, tiny_edsr, src, out, "--chunk", "8", *part) == 0
  captured = capsys.readouterr()
  assert "kept from" in captured.out and "audio aac 44100 Hz" in captured.out
  assert captured.err == ""  # the seek to --start is not a truncated file
  video_seconds, audio_seconds, rate, codec = _durations(out)
  assert (rate, codec) == (44100, "aac")  # copied, not re-encoded
  assert video_seconds == pytest.approx(0.8 if part else 2.0, abs=1e-3)
  assert abs(audio_seconds - video_seconds) < 1 / 25, (audio_seconds, video_seconds)


def test_audio_the_container_cannot_hold_is_reencoded(tmp_path, tiny_edsr):
  model, variables = tiny_edsr
  src = write_with_sine_audio(str(tmp_path / "in.mp4"), frames=20)
  out = str(tmp_path / "out.webm")  # WebM holds Opus and Vorbis, not AAC
  result = upscale.upscale_video(
    src, out, model, variables, scale=2, clip_model=False, progress=False, start=0.2
  )
  assert result["copied"] == ["audio aac 44100 Hz (as libopus)"]
  video_seconds, audio_seconds, rate, codec = _durations(out)
  assert (rate, codec) == (48000, "opus")  # Opus' own rate
  assert video_seconds == pytest.approx(0.6, abs=1e-3)
  assert abs(audio_seconds - video_seconds) < 1 / 25, (audio_seconds, video_seconds)
  assert sorted(os.listdir(tmp_path)) == ["in.mp4", "out.webm"]


def test_subtitles_are_kept_where_the_container_holds_them(tmp_path, tiny_edsr):
  model, variables = tiny_edsr
  (tmp_path / "s.srt").write_text(
    "1\n00:00:00,100 --> 00:00:00,300\nhello\n\n2\n00:00:00,600 --> 00:00:00,900\nworld\n"
  )
  src = str(tmp_path / "in.mkv")  # the writer takes the subtitles from the .srt file
  other = video.OtherStreams(str(tmp_path / "s.srt"))
  with video.VideoWriter(src, 20.0, other_streams=other) as writer:
    for frame in footage.generate_clips(0, 1, 20, 16, 16)[0]:
      writer.write(frame)
  kw = dict(scale=2, clip_model=False, progress=False, start=0.5)
  result = upscale.upscale_video(src, str(tmp_path / "o.mkv"), model, variables, **kw)
  assert result["copied"] == ["subtitle srt"] and result["dropped"] == []
  meta = video.probe(str(tmp_path / "o.mkv"))
  assert (meta.fps, meta.num_frames) == (20.0, 10)
  with av.open(str(tmp_path / "o.mkv")) as out:
    packets = [p for p in out.demux(out.streams[1]) if p.pts is not None]
    cues = [(round(float(p.pts * p.time_base), 2), bytes(p)) for p in packets]
  assert cues == [(0.1, b"world")]  # "hello" ended before --start
  result = upscale.upscale_video(src, str(tmp_path / "o.mp4"), model, variables, **kw)
  assert result["copied"] == [] and result["dropped"] == ["subtitle srt"]  # mp4: mov_text only


def test_colour_description_is_kept(tmp_path, tiny_edsr):
  model, variables = tiny_edsr
  clip = footage.generate_clips(0, 1, 6, 16, 16)[0]
  bt709 = video.Colour(primaries=1, trc=1, space=1, range=1)
  src = str(tmp_path / "in.mp4")
  with video.VideoWriter(src, 25.0, colour=bt709) as writer:
    for frame in clip:
      writer.write(frame)
  assert video.probe(src).colour == bt709
  out = str(tmp_path / "out.mkv")
  upscale.upscale_video(src, out, model, variables, scale=2, clip_model=False, progress=False)
  assert video.probe(out).colour == bt709
  # Converted in BT.709 both ways: the untrained model's bicubic output keeps the colours.
  hr = video.read_video(out).frames.astype(float)
  assert abs(hr.mean(axis=(0, 1, 2)) - clip.mean(axis=(0, 1, 2))).max() < 3


def test_a_rotated_input_is_written_upright_without_a_rotation_tag(tmp_path, tiny_edsr):
  model, variables = tiny_edsr
  from test_video_io import write_rotated

  rotated = write_rotated(
    str(tmp_path / "rotated.mp4"), footage.generate_clips(0, 1, 4, 16, 24)[0], 25, 90
  )
  assert video.probe(rotated).rotation == 90
  out = str(tmp_path / "out.mp4")
  upscale.upscale_video(rotated, out, model, variables, scale=2, clip_model=False, progress=False)
  meta = video.probe(out)
  assert (meta.height, meta.width, meta.rotation) == (48, 32, 0)  # displayed as the input is


@pytest.mark.parametrize(
  "args,line",
  [
    (("--tile", "-1"), "--tile must be a whole number >= 0, got -1."),
    (("--chunk", "0"), "--chunk must be a whole number >= 1, got 0."),
    (("--overlap", "-2"), "--overlap must be a whole number >= 0, got -2."),
    (("--tile", "8", "--tile-overlap", "4"), "--tile (8) must exceed twice --tile-overlap (4)"),
    (("--start", "-1"), "--start must be a number of seconds >= 0, got -1."),
    (("--duration", "0"), "--duration must be a number of seconds > 0, got 0."),
    (("--crf", "60"), "--crf must be from 0 to 51 for libx264 (lower is better), got 60."),
    (("--codec", "libfoo"), "--codec libfoo is not a video encoder that .mp4 holds; for .mp4 use"),
    (("--codec", "ffv1", "--crf", "3"), "--crf applies to libx264, libx265, libvpx-vp9, not"),
    (("--pix-fmt", "rgb24"), "--pix-fmt rgb24 is not a pixel format libx264 stores; use one of"),
    (("--max-memory", "0"), "--max-memory must be more than 0 bytes, got 0."),
  ],
)
def test_option_errors_name_the_option_before_any_work(
  tmp_path, tiny_edsr, monkeypatch, capsys, args, line
):
  src = str(tmp_path / "in.mp4")
  video.write_video(src, footage.generate_clips(0, 1, 4, 16, 16)[0], fps=25)
  monkeypatch.setattr(video, "stream_video", lambda *a: pytest.fail("decoded before refusing"))
  assert _command(monkeypatch, tiny_edsr, src, str(tmp_path / "out.mp4"), *args) == 2
  err = capsys.readouterr().err
  assert err.startswith(f"jaxres upscale: {line}") and err.count("\n") == 1, err
  assert "UpscaleOptions(" not in err
  assert sorted(os.listdir(tmp_path)) == ["in.mp4"]


def test_lossless_png_codec_keeps_every_level(tmp_path, tiny_edsr):
  model, variables = tiny_edsr
  clip = footage.generate_clips(0, 1, 5, 12, 14)[0]
  src = str(tmp_path / "in.mov")
  video.write_video(src, clip, fps=25, codec="png")
  assert np.array_equal(video.read_video(src).frames, clip)
  out = str(tmp_path / "out.mov")
  upscale.upscale_video(
    src, out, model, variables, scale=2, clip_model=False, progress=False, codec="png"
  )
  expected = upscale.to_uint8(
    upscale.upscale_array(model, variables, clip, scale=2, clip_model=False)
  )
  np.testing.assert_array_equal(video.read_video(out).frames, expected)


def test_compare_names_what_it_accepts_and_upscales_only_the_frames_it_draws(
  tmp_path, tiny_edsr, monkeypatch, capsys
):
  src = str(tmp_path / "in.mp4")
  video.write_video(src, footage.generate_clips(0, 1, 40, 16, 16)[0], fps=25)
  assert _command(monkeypatch, tiny_edsr, src, str(tmp_path / "cmp.jpg"), "--compare") == 2
  err = capsys.readouterr().err
  assert ".png (a strip of 4 frames)" in err and ".mp4" in err and err.count("\n") == 1, err
  assert _command(monkeypatch, tiny_edsr, src, str(tmp_path / "o.png")) == 2
  assert "or .png (.png with --compare)" in capsys.readouterr().err
  seen = []
  real = upscale.Upscaler.window
  monkeypatch.setattr(
    upscale.Upscaler, "window", lambda self, lr: seen.append(len(lr)) or real(self, lr)
  )
  decoded = []
  real_read = video.read_frames
  monkeypatch.setattr(
    video, "read_frames", lambda path, idx, **k: decoded.extend(idx) or real_read(path, idx, **k)
  )
  png = str(tmp_path / "cmp.png")
  assert _command(monkeypatch, tiny_edsr, src, png, "--compare", "--start", "0.4") == 0
  assert "rows 4 frames spread over the 30 of the video" in capsys.readouterr().out
  assert sum(seen) == 4 and decoded == [10, 18, 26, 34]  # frames 0, 8, 16, 24 from --start
  import imageio.v3 as iio

  assert iio.imread(png).shape == (20 + 4 * 32, 64, 3)


def test_output_folder_is_refused_and_a_link_is_written_through(
  tmp_path, tiny_edsr, monkeypatch, capsys
):
  src = str(tmp_path / "in.mp4")
  video.write_video(src, footage.generate_clips(0, 1, 4, 16, 16)[0], fps=25)
  (tmp_path / "folder.mp4").mkdir()
  assert _command(monkeypatch, tiny_edsr, src, str(tmp_path / "folder.mp4")) == 2
  assert "is a folder" in capsys.readouterr().err
  (tmp_path / "target.mp4").write_bytes(b"old")
  link = tmp_path / "link.mp4"
  link.symlink_to(tmp_path / "target.mp4")
  assert _command(monkeypatch, tiny_edsr, src, str(link)) == 0
  assert link.is_symlink() and video.probe(str(tmp_path / "target.mp4")).height == 32
  assert sorted(os.listdir(tmp_path)) == ["folder.mp4", "in.mp4", "link.mp4", "target.mp4"]


def _dead_pid():
  """The pid of a process that has exited (and been reaped)."""
  child = subprocess.Popen(["true"])
  child.wait()
  return child.pid


def test_leftovers_of_killed_runs_are_removed_and_sigterm_leaves_none(
  tmp_path, tiny_edsr, monkeypatch, capsys
):
  src = str(tmp_path / "in.mp4")
  video.write_video(src, footage.generate_clips(0, 1, 12, 16, 16)[0], fps=25)
  dead = tmp_path / f".out.{_dead_pid()}-0123abcd.partial.mp4"  # a SIGKILLed run's
  live = tmp_path / f".out.{os.getpid()}-4567cdef.partial.mp4"  # a writer still at work
  other = tmp_path / f".other.{_dead_pid()}-89abcdef.partial.mp4"  # another output's
  for leftover in (dead, live, other):
    leftover.write_bytes(b"half a video")
  calls = []
  real = upscale.Upscaler.window

  def terminated(self, lr):  # SIGTERM while the second window runs
    calls.append(1)
    if len(calls) == 2:
      os.kill(os.getpid(), signal.SIGTERM)
    return real(self, lr)

  monkeypatch.setattr(upscale.Upscaler, "window", terminated)
  out = str(tmp_path / "out.mp4")
  assert _command(monkeypatch, tiny_edsr, src, out, "--chunk", "4") == 128 + signal.SIGTERM
  assert capsys.readouterr().err == f"jaxres upscale: terminated; nothing was written to {out}.\n"
  assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is put back
  assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.mp4", live.name, other.name])


def test_upscale_with_checkpoint_takes_every_option_of_the_command(
  tmp_path, tiny_edsr, monkeypatch
):
  import inspect

  from jaxres.sr import checkpoint

  loading = {}

  def load_sr_model(workdir, **kwargs):
    loading.update(kwargs, workdir=workdir)
    return _Loaded(*tiny_edsr)

  monkeypatch.setattr(checkpoint, "load_sr_model", load_sr_model)
  clip = footage.generate_clips(0, 1, 10, 12, 14)[0]
  src = str(tmp_path / "in.mov")
  video.write_video(src, clip, fps=25, codec="png")
  out = str(tmp_path / "out.mov")
  result = upscale.upscale_with_checkpoint(
    src, out, "run", expect_model="edsr_bicubic_tiny", step=1, progress=False, codec="png",
    start=0.2, duration=0.16,
  )  # fmt: skip
  assert loading == dict(
    workdir="run", config=None, expect_model="edsr_bicubic_tiny", expect_scale=None, step=1
  )
  assert result["loaded"].name == "edsr_bicubic_tiny" and result["frames"] == 4
  model, variables = tiny_edsr
  expected = upscale.to_uint8(
    upscale.upscale_array(model, variables, clip[5:9], scale=2, clip_model=False)
  )
  np.testing.assert_array_equal(video.read_video(out).frames, expected)  # lossless, frames 5-8
  # Every keyword of upscale_video (what the command passes) is one of upscale_with_checkpoint's.
  shared = set(inspect.signature(upscale.upscale_video).parameters) - {
    "model", "variables", "scale", "clip_model"
  }  # fmt: skip
  assert shared <= set(inspect.signature(upscale.upscale_with_checkpoint).parameters)


def test_upscale_with_checkpoint_refuses_options_before_reading_the_checkpoint(
  tmp_path, monkeypatch
):
  from jaxres.sr import checkpoint

  src = str(tmp_path / "in.mp4")
  video.write_video(src, footage.generate_clips(0, 1, 4, 16, 16)[0], fps=25)
  monkeypatch.setattr(checkpoint, "load_sr_model", lambda *a, **k: pytest.fail("loaded"))
  out = str(tmp_path / "out.mp4")
  with pytest.raises(ValueError, match="--crf"):
    upscale.upscale_with_checkpoint(src, out, "run", codec="ffv1", crf=3)
  with pytest.raises(ValueError, match="--duration"):
    upscale.upscale_with_checkpoint(src, out, "run", duration=0)
  assert sorted(os.listdir(tmp_path)) == ["in.mp4"]
