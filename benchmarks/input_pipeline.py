"""Input pipeline throughput: clips/s from raw videos vs prepared shards, beside the model's appetite.

Writes a UCF101-like set of videos (320x240, 25 fps, MPEG-4 in .avi by default), prepares it with
`jaxres.data.prepare` (JPEG frames, short side 128), then times training batches of 16x112x112
clips (resize 128, random crop 112, flip, normalise) from each source (raw videos twice: resized
by TensorFlow, the default, and by the decoder, `data.resize_in_decoder`), and the jitted eval-mode
forward of r2plus1d_18 on batches of 2 clips: the rate the pipeline has to beat. Prints a table and
optionally writes JSON. It restarts itself under the malloc settings `jaxres train` runs with
(`jaxres.host_memory`), as the other benchmarks do.

With `--compare-with OTHER_CHECKOUT` it times raw videos only, with this checkout's jaxres and with
the other's (e.g. `git worktree add /tmp/wt_old <commit>`), each round in a fresh process and the
two alternating, so that load from other processes hits both alike: old vs new, side by side.

  python -m benchmarks.input_pipeline [--videos 32] [--frames 100] [--batches 12] [--json out.json]
  python -m benchmarks.input_pipeline --compare-with /tmp/wt_old [--suffix .mp4] [--json out.json]
      [--resize-in-decoder]   # this checkout's side resizes in the decoder, the other as it does
  python -m benchmarks.input_pipeline --stages [--compare-with /tmp/wt_old]   # CPU ms per stage
  python -m benchmarks.input_pipeline --smoke        # tiny sizes, a few seconds, for CI

`--stages` times the stages of one raw training clip on one thread (TensorFlow's thread pools
set to 1), each as CPU ms per clip, the best of `--rounds` passes over the same clips: decoding
(`read_frames`: seek, decode, RGB conversion, the clip's buffer), handing the clip to TensorFlow
(a `tf.numpy_function` returning it), the resize + random crop (`resized_random_crop`) and the
rest of a training view and its batch (uint8, flip, normalise). Single-threaded CPU time moves far
less with the machine's load than the whole pipeline's, so small changes show; with
`--compare-with` each checkout runs in its own fresh processes, alternating.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

from jaxres import host_memory


def write_videos(
  root: str, count: int, frames: int, height: int, width: int, suffix: str, codec: str | None
) -> None:
  from jaxres.data import demo
  from jaxres.data.video import write_video

  rng = np.random.default_rng(0)
  names = list(demo.DIRECTIONS)[:4]
  for i in range(count):
    name = names[i % len(names)]
    os.makedirs(os.path.join(root, name), exist_ok=True)
    clip = demo.render_clip(rng, demo.DIRECTIONS[name], frames, max(height, width))[
      :, :height, :width
    ]
    write_video(
      os.path.join(root, name, f"{name}_{i:03d}{suffix}"),
      np.ascontiguousarray(clip),
      fps=25,
      codec=codec,
    )


def pipeline_iterator(config, batch: int, warmup: int = 2):
  """A warm training iterator (the first batches fill tf.data's buffers and AUTOTUNE)."""
  from jaxres.data import pipeline
  from jaxres.data.skips import SkipCounter

  it = pipeline.create_iterator(
    config,
    "train",
    global_batch_size=batch,
    sharding=None,
    seed=0,
    process_index=0,
    process_count=1,
    skips=SkipCounter(),
  )
  for _ in range(warmup):
    next(it)
  return it


def time_batches(it, batch: int, batches: int, min_seconds: float) -> tuple[float, float]:
  """(clips per second, CPU milliseconds of this process per clip) over at least `batches`
  batches and `min_seconds`.

  CPU time per clip hardly depends on what else runs on the machine; wall-clock rate does.
  """
  start, cpu = time.perf_counter(), time.process_time()
  n = 0
  while n < batches or time.perf_counter() - start < min_seconds:
    next(it)
    n += 1
  clips = n * batch
  return clips / (time.perf_counter() - start), 1e3 * (time.process_time() - cpu) / clips


def time_model(name: str, batch: int, frames: int, size: int, reps: int = 3) -> float:
  """Clips per second of the jitted eval-mode forward (best of `reps`)."""
  import jax

  from jaxres import models

  model = models.get(name, num_classes=400)
  x = jax.random.normal(jax.random.key(0), (batch, frames, size, size, 3))
  variables = jax.jit(lambda x: model.init(jax.random.key(0), x, train=False))(x)
  forward = jax.jit(lambda v, x: model.apply(v, x, train=False))
  forward(variables, x).block_until_ready()
  best = float("inf")
  for _ in range(reps):
    start = time.perf_counter()
    forward(variables, x).block_until_ready()
    best = min(best, time.perf_counter() - start)
  return batch / best


STAGES = ("decode", "hand-off", "resize+crop", "view+normalise")


def child_stages(args) -> None:
  """CPU ms per clip of each stage of a raw training clip, on one thread; prints JSON."""
  import glob

  import jaxres
  from jaxres.data import crop_window, transforms, video, views
  from jaxres.data.tfhost import tf

  tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  paths = sorted(glob.glob(os.path.join(args.workdir, "videos", "*", "*")))
  rng = np.random.default_rng(0)
  clips = 32
  starts = rng.integers(0, max(1, args.frames - args.clip_frames), clips)
  picks = [
    (paths[i % len(paths)], np.arange(s, s + args.clip_frames)) for i, s in enumerate(starts)
  ]
  seeds = [tf.constant([i, 7], tf.int64) for i in range(clips)]
  config = data_config(args, "folder", "")
  # Checkouts whose decoder keeps only the columns the crop window reads do so here too.
  narrowing = hasattr(crop_window, "columns_read")
  draws = [crop_window.window_draws(s).numpy() for s in seeds] if narrowing else []

  def read(i):
    path, idx = picks[i]
    if args.resize_in_decoder:  # scaled while decoding; "resize+crop" is then the cut alone
      size = lambda h, w: crop_window.window(h, w, args.resize, args.crop, draws[i])[:2]
      return video.read_frames(path, idx, threaded=False, size=size)
    if not narrowing:
      return video.read_frames(path, idx, threaded=False)
    columns = lambda h, w: crop_window.columns_read(h, w, args.resize, args.crop, draws[i])
    return video.read_frames(path, idx, threaded=False, columns=columns)

  frames = [read(i) for i in range(clips)]
  full = [video.read_frames(p, idx[:1], threaded=False).shape[1:3] for p, idx in picks]
  handed = frames  # what the decoder's tf.numpy_function returns
  if narrowing:
    crop = tf.function(
      lambda x, s, f: crop_window.resized_random_crop(x, args.resize, args.crop, s, full_size=f)
    )
  else:
    crop = tf.function(
      lambda x, s, f: crop_window.resized_random_crop(x, args.resize, args.crop, s)
    )
  if args.resize_in_decoder:

    def cut(x, s, f):
      y0, x0 = crop_window.window(*f, args.resize, args.crop, draws[int(s[0])])[2:]
      window = video.aligned_empty((len(x), args.crop, args.crop, 3))
      window[:] = x[:, y0 : y0 + args.crop, x0 : x0 + args.crop]
      return window

    crop = cut
    handed = [cut(x, s.numpy(), f) for x, s, f in zip(frames, seeds, full)]
    crops = [tf.constant(x) for x in handed]
    tensors = frames
  else:
    tensors = [tf.constant(f) for f in frames]
    full = [tf.constant(f, tf.int32) for f in full]
    crops = [
      tf.saturate_cast(tf.round(crop(x, s, f)), tf.uint8) for x, s, f in zip(tensors, seeds, full)
    ]

  hand = tf.function(lambda i: tf.numpy_function(lambda k: handed[int(k)], [i], tf.uint8))

  @tf.function
  def view(x, s):
    v = views.train_view(config, s, {"clips": x[None], "label": 0, "cropped": True})
    return transforms.normalize(v["video"][None], config.mean, config.std)

  work = {
    "decode": read,
    "hand-off": lambda i: hand(tf.constant(i)),
    "resize+crop": lambda i: crop(tensors[i], seeds[i], full[i]),
    "view+normalise": lambda i: view(crops[i], seeds[i]),
  }
  best = {}
  for name, fn in work.items():
    fn(0)  # traced and warm
    times = []
    for _ in range(max(1, args.rounds)):
      cpu = time.process_time()
      for i in range(clips):
        fn(i)
      times.append(1e3 * (time.process_time() - cpu) / clips)
    best[name] = min(times)
  print(json.dumps({"stages": best, "jaxres": os.path.dirname(jaxres.__file__)}))


RAW, PREPARED = "raw videos (decode per clip)", "prepared shards"
RAW_SCALED = "raw videos, resize_in_decoder"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_name() -> str:
  """The CPU's model name (from /proc/cpuinfo, else the platform's)."""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def data_config(args, kind: str, path: str, resize_in_decoder: bool = False):
  """The training data config the benchmark times (shuffle buffer 16; `resize_in_decoder` only
  where the checkout has the field)."""
  from jaxres.data.config import default_data_config

  config = default_data_config()
  config.num_frames, config.resize, config.crop_size = args.clip_frames, args.resize, args.crop
  config.shuffle_buffer = 16
  config.source, config.path = kind, path
  if resize_in_decoder:
    config.resize_in_decoder = True
  return config


def child_round(args) -> None:
  """One timed round of raw videos with whichever jaxres this process imports; prints JSON."""
  import jaxres

  config = data_config(args, "folder", os.path.join(args.workdir, "videos"), args.resize_in_decoder)
  it = pipeline_iterator(config, args.batch)
  rate, cpu_ms = time_batches(it, args.batch, args.batches, args.seconds)
  print(json.dumps({"rate": rate, "cpu_ms": cpu_ms, "jaxres": os.path.dirname(jaxres.__file__)}))


def compare_checkouts(args, other: str | None, mode: str = "--child-round") -> dict:
  """Raw-video rounds alternating between this checkout and `other`, each in a fresh process.

  Returns:
    `{"new": [(clips/s, CPU ms/clip), ...], "old": [...]}` in round order (`mode`
    "--child-stages": `{"new": [{stage: CPU ms/clip}, ...], ...}`); `other` None: this checkout
    alone (`{"new": [...]}`).
  """
  rounds = {"old": [], "new": []} if other is not None else {"new": []}
  flags = [
    f"--{name.replace('_', '-')}={getattr(args, name)}"
    for name in (
      "clip_frames",
      "crop",
      "resize",
      "batch",
      "batches",
      "seconds",
      "workdir",
      "frames",
      "rounds",
    )
  ]
  # The other checkout may not have the field: it times its own default.
  new_flags = ["--resize-in-decoder"] if args.resize_in_decoder else []
  script = os.path.abspath(__file__)
  for r in range(args.rounds):
    # Alternate which side goes first, so that neither always follows the other.
    order = [("old", other), ("new", ROOT)] if r % 2 == 0 else [("new", ROOT), ("old", other)]
    order = [(side, checkout) for side, checkout in order if checkout is not None]
    for side, checkout in order:
      env = {**os.environ, "PYTHONPATH": os.path.abspath(checkout)}
      done = subprocess.run(
        [sys.executable, script, mode, *flags, *(new_flags if side == "new" else [])],
        cwd=tempfile.gettempdir(),  # Not a checkout: jaxres comes from PYTHONPATH.
        env=env,
        capture_output=True,
        text=True,
        check=False,
      )
      if done.returncode:
        raise RuntimeError(f"{side} round failed:\n{done.stderr[-3000:]}")
      result = json.loads(done.stdout.strip().splitlines()[-1])
      if os.path.realpath(result["jaxres"]) != os.path.realpath(os.path.join(checkout, "jaxres")):
        raise RuntimeError(f"{side} round imported {result['jaxres']}, not {checkout}'s jaxres")
      if mode == "--child-stages":
        rounds[side].append(result["stages"])
        print(
          f"  round {r + 1} {side}: "
          + ", ".join(f"{k} {v:.2f}" for k, v in result["stages"].items())
        )
        continue
      rounds[side].append((result["rate"], result["cpu_ms"]))
      print(
        f"  round {r + 1} {side}: {result['rate']:.1f} clips/s, {result['cpu_ms']:.1f} CPU ms/clip"
      )
  return rounds


def main() -> None:
  # Under the malloc settings `jaxres train` runs with (freed memory kept, one arena), as the other
  # benchmarks: each clip's buffers otherwise come from fresh, page-faulting mmaps part of the time.
  host_memory.restart_retaining()
  parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument("--smoke", action="store_true", help="tiny sizes for CI")
  parser.add_argument("--videos", type=int, default=32)
  parser.add_argument("--frames", type=int, default=100, help="frames per source video")
  parser.add_argument("--height", type=int, default=240)
  parser.add_argument("--width", type=int, default=320)
  parser.add_argument("--suffix", default=".avi", help="container (.avi, .mp4, .webm, .mkv)")
  parser.add_argument("--codec", default=None, help="encoder (default: the container's)")
  parser.add_argument("--clip-frames", type=int, default=16)
  parser.add_argument("--crop", type=int, default=112)
  parser.add_argument("--resize", type=int, default=128)
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--batches", type=int, default=12, help="batches per timed round")
  parser.add_argument("--rounds", type=int, default=5, help="timed rounds per source (median)")
  parser.add_argument("--seconds", type=float, default=4.0, help="minimum seconds per round")
  parser.add_argument("--model", default="r2plus1d_18")
  parser.add_argument("--model-batch", type=int, default=2)
  parser.add_argument("--workers", type=int, default=0, help="prepare processes (0: CPU count)")
  parser.add_argument("--workdir", default=None, help="keep the videos and shards here")
  parser.add_argument("--json", default=None, help="write the results here")
  parser.add_argument(
    "--compare-with",
    default=None,
    metavar="CHECKOUT",
    help="time raw videos with this checkout's jaxres and CHECKOUT's, alternating",
  )
  parser.add_argument(
    "--resize-in-decoder",
    action="store_true",
    help="this checkout's rounds of --compare-with and --stages set data.resize_in_decoder",
  )
  parser.add_argument(
    "--stages", action="store_true", help="CPU ms per stage of a raw clip, one thread (see above)"
  )
  parser.add_argument("--child-round", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--child-stages", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child_round:
    child_round(args)
    return
  if args.child_stages:
    child_stages(args)
    return
  if args.smoke:
    args.videos, args.frames, args.height, args.width = 8, 24, 60, 80
    args.clip_frames, args.crop, args.resize, args.batch, args.batches = 8, 32, 40, 4, 3
    args.model, args.workers, args.rounds, args.seconds = "r3d_tiny", 1, 1, 0.0

  from jaxres.data.prepare import prepare_dataset

  args.workdir = workdir = os.path.abspath(args.workdir or tempfile.mkdtemp(prefix="jaxres-bench-"))
  src, out = os.path.join(workdir, "videos"), os.path.join(workdir, "prepared")
  start = time.perf_counter()
  if not os.path.isdir(src):
    write_videos(src, args.videos, args.frames, args.height, args.width, args.suffix, args.codec)
  written = time.perf_counter() - start
  shape = f"{args.clip_frames}x{args.crop}x{args.crop}"
  header = (
    f"input pipeline, training clips of {shape}, batch {args.batch}, {os.cpu_count()} CPUs "
    f"({cpu_name()}), source {args.videos} x {args.frames} frames {args.width}x{args.height} "
    f"{args.suffix}"
  )
  load_before = os.getloadavg()[0]
  if args.stages:
    rounds = compare_checkouts(args, args.compare_with, "--child-stages")
    sides = ("old", "new") if args.compare_with else ("new",)
    stages = {
      side: {k: float(np.median([r[k] for r in rounds[side]])) for k in STAGES} for side in sides
    }
    load = (load_before, os.getloadavg()[0])
    print(header)
    print("CPU ms per clip, one thread, median over processes of the best pass:")
    print(f"{'stage':<18}" + "".join(f"{side:>10}" for side in sides))
    for k in (*STAGES, "total"):
      values = [sum(stages[side].values()) if k == "total" else stages[side][k] for side in sides]
      print(f"{k:<18}" + "".join(f"{v:>10.2f}" for v in values))
    print(f"(load average {load[0]:.1f} before, {load[1]:.1f} after, on {os.cpu_count()} CPUs)")
    record = {"stages_cpu_ms_per_clip": stages, "stage_rounds": rounds}
  elif args.compare_with:
    rounds = compare_checkouts(args, args.compare_with)
    results = {side: float(np.median([r[0] for r in rs])) for side, rs in rounds.items()}
    cpu_ms = {side: float(np.median([r[1] for r in rs])) for side, rs in rounds.items()}
    ratio, cpu_ratio = results["new"] / results["old"], cpu_ms["old"] / cpu_ms["new"]
    load = (load_before, os.getloadavg()[0])
    print(header)
    print(f"{'raw videos, jaxres from':<40}{'clips/s':>10}{'CPU ms/clip':>13}")
    for side, checkout in (("old", args.compare_with), ("new", ROOT)):
      print(f"{side + ' (' + checkout + ')':<40}{results[side]:>10.1f}{cpu_ms[side]:>13.1f}")
    print(
      f"new / old: {ratio:.2f}x clips/s, {cpu_ratio:.2f}x less CPU per clip "
      f"(load average {load[0]:.1f} before, {load[1]:.1f} after, on {os.cpu_count()} CPUs)"
    )
    record = {
      "compare_with": os.path.abspath(args.compare_with),
      "clips_per_s": results,
      "cpu_ms_per_clip": cpu_ms,
      "rounds": rounds,
      "new_over_old": ratio,
      "cpu_ratio": cpu_ratio,
    }
  else:
    start = time.perf_counter()
    prepare_dataset(src, out, resize=args.resize, workers=args.workers or None, log=None)
    prepared = time.perf_counter() - start
    sources = {
      RAW: ("folder", src, False),
      RAW_SCALED: ("folder", src, True),
      PREPARED: ("prepared", out, False),
    }
    # Rounds alternate between the sources so that load from other processes hits both alike;
    # only one pipeline exists at a time (an idle one would keep filling its buffers).
    rounds = {source: [] for source in sources}
    for _ in range(args.rounds):
      for source, (kind, path, in_decoder) in sources.items():
        it = pipeline_iterator(data_config(args, kind, path, in_decoder), args.batch)
        rounds[source].append(time_batches(it, args.batch, args.batches, args.seconds))
        del it
        gc.collect()
    results = {source: float(np.median([r[0] for r in rs])) for source, rs in rounds.items()}
    cpu_ms = {source: float(np.median([r[1] for r in rs])) for source, rs in rounds.items()}
    load = (load_before, os.getloadavg()[0])
    try:
      model_rate = time_model(args.model, args.model_batch, args.clip_frames, args.crop)
    except Exception as e:  # noqa: BLE001 - the data figures stand on their own.
      print(f"(timing {args.model} failed: {e!r})")
      model_rate = float("nan")
    print(header)
    print(f"  (videos written in {written:.1f} s, prepared in {prepared:.1f} s)")
    print(f"{'source':<34}{'clips/s':>10}{'CPU ms/clip':>13}   (clips/s per round)")
    for source, rate in results.items():
      print(
        f"{source:<34}{rate:>10.1f}{cpu_ms[source]:>13.1f}   "
        f"({', '.join(f'{r[0]:.1f}' for r in rounds[source])})"
      )
    model_label = f"{args.model} forward (eval, batch {args.model_batch})"
    print(f"{model_label:<34}{model_rate:>10.1f}")
    ratio, cpu_ratio = results[PREPARED] / results[RAW], cpu_ms[RAW] / cpu_ms[PREPARED]
    print(
      f"prepared / raw: {ratio:.2f}x clips/s, {cpu_ratio:.2f}x less CPU per clip; raw videos "
      f"feed {results[RAW] / model_rate:.0f}x the model's forward rate (load average "
      f"{load[0]:.1f} before, {load[1]:.1f} after, on {os.cpu_count()} CPUs)"
    )
    scaled_ratio = results[RAW_SCALED] / results[RAW]
    print(
      f"resize_in_decoder / TensorFlow's resize: {scaled_ratio:.2f}x clips/s, "
      f"{cpu_ms[RAW] / cpu_ms[RAW_SCALED]:.2f}x less CPU per clip"
    )
    record = {
      "clips_per_s": results,
      "cpu_ms_per_clip": cpu_ms,
      "rounds": rounds,
      "cpu_ratio": cpu_ratio,
      "model": args.model,
      "model_clips_per_s": model_rate,
      "prepared_over_raw": ratio,
      "raw_over_model": results[RAW] / model_rate,
      "resize_in_decoder_over_raw": scaled_ratio,
    }
  if args.json:
    with open(args.json, "w") as f:
      json.dump(
        {
          "clip": shape,
          "cpus": os.cpu_count(),
          "cpu": cpu_name(),
          "date": time.strftime("%Y-%m-%d %H:%M"),
          "load_average": load,
          **record,
          "args": vars(args),
        },
        f,
        indent=1,
      )


if __name__ == "__main__":
  main()
