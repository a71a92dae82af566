"""Decode a video folder once into sharded TFRecords of JPEG frames (the format of `records`).

Frame folders (`layout`, see `jaxres.data.sequences`) are prepared the same way, one record per
sequence (`fps` 0): with `resize=0` their image files are stored as they are (PNG stays lossless,
`image_format` "any" in the manifest) after checking that every one decodes; otherwise they are
shrunk and re-encoded as JPEG like video frames. A sequence with a corrupt or missing image is
skipped and listed like an unreadable video.

Work is split by shard: video `i` of a split (sorted by path) goes to shard `i % num_shards`, and
worker processes each write whole shards. A shard is written under a temporary name, renamed into
place, then marked done with a small `.{shard}.done.json` holding what it contains; a rerun after
an interruption keeps the done shards and writes only the rest. `prepare.json` records the plan
(source, options, videos per shard) so a rerun with different inputs fails instead of mixing data.
Unreadable videos are skipped, named in a warning and listed in the manifest with the reason.

Example:
  >>> manifest = prepare_dataset("/data/UCF-101", "/data/ucf101-prepared",
  ...                            split_lists={"train": "trainlist01.txt", "eval": "testlist01.txt"})
  >>> manifest["splits"]["train"]["num_videos"]
  9537
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import ctypes.util
import hashlib
import io
import json
import logging
import math
import multiprocessing
import os
import signal
import sys
import time

from jaxres.atomic_files import write_atomic
from jaxres.data import records, sequences, sources
from jaxres.data.skips import SKIPPED, SkipCounter

logger = logging.getLogger("jaxres.data")
PLAN = "prepare.json"


def encode_frames(frames, resize: int, quality: int) -> tuple[list[bytes], int, int]:
  """JPEG-encodes uint8 `[T, H, W, 3]` frames, first shrinking them to short side `resize`.

  Args:
    frames: the video.
    resize: shrink so the short side is at most this (0: keep); never enlarges.
    quality: JPEG quality.

  Returns:
    `(jpegs, height, width)`: one JPEG per frame and the stored size.

  Example:
    >>> jpegs, h, w = encode_frames(read_video("v.avi").frames, 128, 90)
  """
  from PIL import Image

  height, width = frames.shape[1:3]
  if resize and min(height, width) > resize:  # Only ever shrink; training resizes anyway.
    scale = resize / min(height, width)
    height, width = round(height * scale), round(width * scale)
  out = []
  for frame in frames:
    image = Image.fromarray(frame)
    if image.size != (width, height):
      image = image.resize((width, height), Image.BILINEAR)  # PIL filters when shrinking.
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    out.append(buffer.getvalue())
  return out, height, width


def _read_files(folder: str, names: list[str]) -> list[bytes]:
  out = []
  for name in names:
    with open(os.path.join(folder, name), "rb") as f:
      out.append(f.read())
  return out


def _read_frame_folder(path: str, rel: str, expected: int, resize: int, quality: int, frames: dict):
  """`(encoded frames, encoded LR frames or None, height, width)` of a sequence folder: the files
  themselves when `resize` is 0 (each checked to decode; LR ones checked to pair), else JPEGs
  shrunk like video frames."""
  from jaxres.data import frames as frames_io

  names = frames_io.list_frames(path, frames["pattern"], expected)
  if frames.get("lr_src"):
    lr_folder = os.path.join(frames["lr_src"], rel)
    decoded, _ = frames_io.read_paired(
      path, lr_folder, range(len(names)), scale=frames["lr_scale"], pattern=frames["pattern"]
    )
    lr = _read_files(lr_folder, names)
  else:
    decoded = frames_io.read_frames(path, range(len(names)), names=names)
    lr = None
  if resize:  # (never with LR frames: prepare_dataset refuses that)
    jpegs, height, width = encode_frames(decoded, resize, quality)
    return jpegs, lr, height, width
  return _read_files(path, names), lr, decoded.shape[1], decoded.shape[2]


def write_shard(
  out: str, file: str, videos: list[dict], resize: int, quality: int, frames: dict | None = None
) -> dict:
  """Decodes `videos` and writes them as one shard `out/file` (run in a worker process).

  Args:
    out: output folder.
    file: shard file name.
    videos: dicts with `path` (absolute), `rel`, `label`, `video_id`.
    resize: shrink frames so the short side is at most this (0: keep).
    quality: JPEG quality.
    frames: None for video files; for frame folders (`path` is a sequence folder)
      `{"pattern": glob of its images, "lr_src": LR root mirroring the source or "",
      "lr_scale": int}`.

  Returns:
    `{"file", "videos": [{path, label, video_id, num_frames, fps}], "skipped": [{path, reason,
    detail}]}` (also written to the shard's done file).
  """
  import tensorflow as tf

  tf.config.set_visible_devices([], "GPU")
  from jaxres.data import video as video_io

  result = {"file": file, "videos": [], "skipped": []}
  tmp = os.path.join(out, f".{file}.tmp")
  with tf.io.TFRecordWriter(tmp) as writer:
    for video in videos:
      try:
        lr = None
        if frames:
          jpegs, lr, height, width = _read_frame_folder(
            video["path"], video["rel"], video.get("num_frames", 0), resize, quality, frames
          )
          fps = 0.0
        else:
          decoded = video_io.read_video(video["path"])
          jpegs, height, width = encode_frames(decoded.frames, resize, quality)
          fps = decoded.fps
      except video_io.DecodeError as e:  # (frame folders' FrameError is one)
        result["skipped"].append({"path": video["rel"], "reason": e.reason, "detail": e.detail})
        continue
      except FileNotFoundError:
        result["skipped"].append({"path": video["rel"], "reason": "missing", "detail": ""})
        continue
      except Exception as e:  # noqa: BLE001 - a bad file must not stop the whole job.
        result["skipped"].append({"path": video["rel"], "reason": "corrupt", "detail": repr(e)})
        continue
      writer.write(
        records.encode_record(
          jpegs,
          label=video["label"],
          video_id=video["video_id"],
          fps=fps,
          height=height,
          width=width,
          path=video["rel"],
          lr_frames=lr,
        )
      )
      result["videos"].append(
        {
          "path": video["rel"],
          "label": video["label"],
          "video_id": video["video_id"],
          "num_frames": len(jpegs),
          "fps": fps,
        }
      )
  os.replace(tmp, os.path.join(out, file))
  done = os.path.join(out, f".{file}.done.json")
  write_atomic(done, json.dumps(result))
  return result


def die_with_parent(parent_pid: int) -> None:
  """Makes this worker process end when `parent_pid` does, however it ends (kill -9 included).

  A pool worker blocks reading its task queue, which it holds open itself, so it would never see
  its parent die and would live on forever. On Linux the kernel sends SIGKILL on the parent's death
  (`prctl(PR_SET_PDEATHSIG)`); a parent already gone before that call is caught by its pid. On
  other systems a thread polls the parent's pid.

  Args:
    parent_pid: the pid of the process that started the pool.

  Example:
    >>> ProcessPoolExecutor(4, initializer=die_with_parent, initargs=(os.getpid(),))
  """
  if sys.platform.startswith("linux"):
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
  else:
    import threading

    def watch():
      while os.getppid() == parent_pid:
        time.sleep(1.0)
      os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
  if os.getppid() != parent_pid:  # it died before the kernel was told
    os._exit(1)


# The numeric options of a prepare run: (parameter, command-line option, test, allowed range).
_OPTION_RULES = (
  ("resize", "--resize", lambda v: v >= 0, ">= 0 (0: keep the source size)"),
  ("quality", "--quality", lambda v: 1 <= v <= 100, "in 1..100"),
  ("num_shards", "--shards", lambda v: v >= 0, ">= 0 (0: automatic)"),
  ("workers", "--workers", lambda v: v is None or v >= 0, ">= 0 (0: the CPU count)"),
  ("holdout_fraction", "--holdout-fraction", lambda v: 0 <= v < 1, "in [0, 1)"),
  ("lr_scale", "--lr-scale", lambda v: v >= 1, ">= 1"),
)


def check_options(src: str, out: str, *, lr_src: str = "", **values) -> None:
  """Refuses options that cannot give a usable dataset, before any work: one line each, naming
  the command-line option (`--quality 500`, an `--lr` folder that does not exist, an output
  folder inside the source, where it would be read as one more class).

  Args:
    src: the source folder.
    out: the output folder.
    lr_src: the LR frame folders ("" for none).
    **values: `prepare_dataset`'s numeric options by parameter name (`resize`, `quality`,
      `num_shards`, `workers`, `holdout_fraction`, `lr_scale`); those absent are not checked.

  Raises:
    ValueError: an option out of its range, or an output folder inside the source.
    FileNotFoundError: no `lr_src` folder.

  Example:
    >>> check_options("/data/UCF-101", "/data/ucf101-prepared", quality=500)
    Traceback (most recent call last):
    ValueError: --quality must be in 1..100, got 500.
  """
  for name, option, allowed, said in _OPTION_RULES:
    if name in values and not allowed(values[name]):
      raise ValueError(f"{option} must be {said}, got {values[name]}.")
  real_src, real_out = os.path.realpath(src), os.path.realpath(out)
  if real_out == real_src or real_out.startswith(real_src.rstrip(os.sep) + os.sep):
    raise ValueError(
      f"The output folder {out!r} is inside the source {src!r}, where it would be read as "
      "data (a class folder of its own); write it outside the source."
    )
  if lr_src and not os.path.isdir(lr_src):
    raise FileNotFoundError(f"The LR folder (--lr) {lr_src!r} does not exist.")


def _check_lr_scale(plan: dict[str, list[list[dict]]], frames: dict) -> None:
  """Compares the first HR frame of the first sequence that has an LR twin with that twin, so a
  wrong `--lr-scale` is refused before any work rather than skipping every sequence."""
  from PIL import Image

  from jaxres.data import frames as frames_io

  for shards in plan.values():
    for video in (v for shard in shards for v in shard):
      try:
        names = frames_io.list_frames(video["path"], frames["pattern"])
      except (OSError, frames_io.FrameError):
        continue  # skipped later, with its reason
      lr_path = os.path.join(frames["lr_src"], video["rel"], names[0]) if names else ""
      if not os.path.isfile(lr_path):
        continue
      try:
        with Image.open(os.path.join(video["path"], names[0])) as hr, Image.open(lr_path) as lr:
          hr_size, lr_size = hr.size, lr.size
      except OSError:
        continue  # an unreadable image: skipped later, with its reason
      scale = frames["lr_scale"]
      if (lr_size[0] * scale, lr_size[1] * scale) != hr_size:
        raise ValueError(
          f"--lr-scale {scale} does not fit the frames: {video['rel']}/{names[0]} is "
          f"{hr_size[0]}x{hr_size[1]} and its LR frame {lr_size[0]}x{lr_size[1]}; pass the "
          "HR/LR factor of the --lr folder."
        )
      return


def _check_usable(plan: dict[str, list[list[dict]]], results: dict | None = None) -> None:
  """Refuses a split that holds no example: none planned (everything filtered out) or, after the
  work (`results`: shard file -> its result), every one skipped."""
  for split, shards in plan.items():
    planned = sum(len(shard) for shard in shards)
    if not planned:
      raise ValueError(
        f"No example to prepare in split {split!r}: the source and lists select none."
      )
    if results is None:
      continue
    files = [records.shard_name(split, i, len(shards)) for i in range(len(shards))]
    if not any(results[f]["videos"] for f in files):
      reasons: dict[str, int] = {}
      for item in (s for f in files for s in results[f]["skipped"]):
        reasons[item["reason"]] = reasons.get(item["reason"], 0) + 1
      said = ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items()))
      raise ValueError(
        f"No usable example in split {split!r}: all {planned} were skipped ({said}); no "
        "manifest.json was written."
      )


def _plan(
  src: str,
  split_lists: dict[str, str],
  holdout_fraction: float,
  num_shards: int,
  skips: SkipCounter,
  layout: str,
  holdout_sequences: tuple[str, ...],
) -> tuple[tuple[str, ...], dict[str, list[list[dict]]]]:
  plan = {}
  class_names = None
  for split, list_path in split_lists.items():
    if layout:
      listed = sequences.frame_sequences(
        src,
        layout,
        list_path,
        split=split,
        holdout_fraction=holdout_fraction,
        holdout_sequences=holdout_sequences,
      )
    else:
      listed = sources.folder_videos(
        src, list_path, split=split, holdout_fraction=holdout_fraction, skips=skips
      )
    class_names = listed.class_names
    n = num_shards or min(len(listed.entries), max(16, math.ceil(len(listed.entries) / 256)))
    shards = [[] for _ in range(n)]
    for entry in listed.entries:
      shards[entry.video_id % n].append(
        {
          "path": entry.path,
          "rel": os.path.relpath(entry.path, src),
          "label": entry.label,
          "video_id": entry.video_id,
          **({"num_frames": entry.num_frames} if layout else {}),
        }
      )
    plan[split] = shards
  return class_names, plan


def prepare_dataset(
  src: str,
  out: str,
  *,
  split_lists: dict[str, str] | None = None,
  holdout_fraction: float = 0.0,
  resize: int = 128,
  quality: int = 90,
  num_shards: int = 0,
  workers: int | None = None,
  layout: str = "",
  holdout_sequences: tuple[str, ...] = (),
  frame_pattern: str = "*",
  lr_src: str = "",
  lr_scale: int = 4,
  skips: SkipCounter = SKIPPED,
  log=print,
) -> dict:
  """Prepares `src` (class subfolders of videos, or frame folders) into `out`; resumes an
  interrupted run.

  Args:
    src: video folder, or the root of frame folders (`data.path` of `source="frames"`).
    out: output folder (created).
    split_lists: split name -> split list file ("" for all videos, see `sources.folder_videos`;
      frame folders: sequence lists, see `sequences.frame_sequences`).
      Default: `{"train": trainlist01.txt, "eval": testlist01.txt}` when both are in `src`, else
      `{"train": ""}` (plus `"eval"` when `holdout_fraction > 0` or `holdout_sequences`; Vimeo:
      both, from its `sep_*list.txt`).
    holdout_fraction: per-class holdout for `eval` when there are no lists.
    resize: shrink frames so the short side is at most this (0: keep the source size).
    quality: JPEG quality (1-100).
    num_shards: shards per split (0: `max(16, videos / 256)`, at most one per video).
    workers: processes (None or 0: the CPU count).
    skips: counter for skipped files.
    layout: "" for video files, else a frame-folder layout (`"sequences"`, `"vimeo"`,
      `"rawframes"`).
    holdout_sequences: frame folders without lists: these sequences are `eval`, not `train`.
    frame_pattern: the glob frame images match (`"img_*"`: MMAction2 folders holding flow too).
    lr_src: frame folders: LR folders mirroring `src` with the same image names (REDS
      `train_sharp_bicubic/X4`), stored as they are next to the HR frames (needs `resize=0`);
      train from them with `data.lr_scale` set and no `data.lr_path`.
    lr_scale: the HR/LR factor `lr_src` must have.
    log: progress printer (None for silence).

  Returns:
    The manifest (also written to `out/manifest.json`).

  Raises:
    FileNotFoundError: empty folder, missing listed files, no `lr_src` folder.
    ValueError: an option out of range or `out` inside `src` (`check_options`), LR frames not
      `1/lr_scale` of the HR ones, a split with no usable example (none selected, or all
      skipped: then no manifest is written), or `out` holds an unfinished run with a
      different plan.

  Example:
    >>> prepare_dataset(write_demo_dataset("/tmp/demo"), "/tmp/demo-prepared")
  """
  log = log or (lambda *a, **k: None)
  check_options(
    src,
    out,
    lr_src=lr_src,
    resize=resize,
    quality=quality,
    num_shards=num_shards,
    workers=workers,
    holdout_fraction=holdout_fraction,
    lr_scale=lr_scale,
  )
  if layout and layout not in sequences.LAYOUTS:
    raise ValueError(f"layout must be one of {sequences.LAYOUTS}, got {layout!r}.")
  holdout_sequences = tuple(holdout_sequences)
  if lr_src and (not layout or resize):
    raise ValueError("Paired LR frames (--lr) need frame folders (--layout) and --resize 0.")
  if split_lists is None and layout:
    split_lists = {"train": ""}
    if layout == "vimeo" or holdout_fraction > 0 or holdout_sequences:
      split_lists["eval"] = ""
  if split_lists is None:
    train_list, test_list = (os.path.join(src, f) for f in ("trainlist01.txt", "testlist01.txt"))
    if os.path.isfile(train_list) and os.path.isfile(test_list):
      split_lists = {"train": train_list, "eval": test_list}
    else:
      split_lists = {"train": ""}
      if holdout_fraction > 0:
        split_lists["eval"] = ""
  class_names, plan = _plan(
    src, split_lists, holdout_fraction, num_shards, skips, layout, holdout_sequences
  )
  image_format = "any" if layout and not resize else "jpeg"
  frame_opts = (
    {
      "pattern": frame_pattern,
      "lr_src": os.path.abspath(lr_src) if lr_src else "",
      "lr_scale": lr_scale,
    }
    if layout
    else None
  )
  _check_usable(plan)
  if lr_src:
    _check_lr_scale(plan, frame_opts)
  os.makedirs(out, exist_ok=True)
  plan_doc = {
    "version": records.FORMAT_VERSION,
    "src": os.path.abspath(src),
    "resize": resize,
    "quality": quality,
    "class_names": list(class_names),
    **(
      {
        "layout": layout,
        "holdout_sequences": list(holdout_sequences),
        "frame_pattern": frame_pattern,
      }
      if layout
      else {}
    ),
    **({"lr_src": os.path.abspath(lr_src), "lr_scale": lr_scale} if lr_src else {}),
    "shards": {s: [[v["rel"] for v in shard] for shard in shards] for s, shards in plan.items()},
  }
  digest = hashlib.sha256(json.dumps(plan_doc, sort_keys=True).encode()).hexdigest()
  plan_path = os.path.join(out, PLAN)
  if os.path.isfile(plan_path):
    with open(plan_path) as f:
      if json.load(f).get("digest") != digest:
        raise ValueError(
          f"{out!r} holds a prepare run with different inputs or options; use a new "
          "output folder (or delete it)."
        )
  else:
    with open(plan_path, "w") as f:
      json.dump({"digest": digest, **plan_doc}, f)

  tasks, results = [], {}
  for split, shards in plan.items():
    for i, videos in enumerate(shards):
      file = records.shard_name(split, i, len(shards))
      done = os.path.join(out, f".{file}.done.json")
      if os.path.isfile(done) and os.path.isfile(os.path.join(out, file)):
        with open(done) as f:
          results[file] = json.load(f)
      else:
        tasks.append((out, file, videos, resize, quality, frame_opts))
  if results:
    log(f"prepare: resuming, {len(results)} shard(s) already done, {len(tasks)} to write")
  start = time.perf_counter()
  every = max(1, len(tasks) // 10)
  progress = lambda n: (
    (n % every == 0 or n == len(tasks))
    and log(f"prepare: {n}/{len(tasks)} shards ({time.perf_counter() - start:.1f} s)")
  )
  workers = max(1, min(workers or os.cpu_count() or 1, len(tasks) or 1))
  if tasks and workers == 1:
    for n, task in enumerate(tasks, 1):
      results[task[1]] = write_shard(*task)
      progress(n)
  elif tasks:
    context = multiprocessing.get_context("spawn")  # TF and PyAV are not fork-safe.
    with concurrent.futures.ProcessPoolExecutor(
      workers, mp_context=context, initializer=die_with_parent, initargs=(os.getpid(),)
    ) as pool:
      futures = [pool.submit(write_shard, *task) for task in tasks]
      for n, future in enumerate(concurrent.futures.as_completed(futures), 1):
        result = future.result()
        results[result["file"]] = result
        progress(n)

  _check_usable(plan, results)
  manifest = {
    "version": records.FORMAT_VERSION,
    "format": "tfrecord",
    "image_format": image_format,
    "src": os.path.abspath(src),
    "resize": resize,
    "quality": quality,
    "class_names": list(class_names),
    "splits": {},
    **({"lr_scale": lr_scale} if lr_src else {}),
  }
  for split, shards in plan.items():
    entries, skipped = [], []
    for i in range(len(shards)):
      result = results[records.shard_name(split, i, len(shards))]
      entries.append(
        {"file": result["file"], "num_videos": len(result["videos"]), "videos": result["videos"]}
      )
      skipped += result["skipped"]
    for item in skipped:
      skips.record(os.path.join(src, item["path"]), item["reason"], item["detail"])
    manifest["splits"][split] = {
      "num_videos": sum(s["num_videos"] for s in entries),
      "shards": entries,
      "skipped": sorted(skipped, key=lambda s: s["path"]),
    }
  sources.write_class_names(out, class_names)
  write_atomic(os.path.join(out, records.MANIFEST), json.dumps(manifest, indent=1))
  for split, info in manifest["splits"].items():
    log(
      f"prepare: {split}: {info['num_videos']} videos in {len(info['shards'])} shards, "
      f"{len(info['skipped'])} skipped"
    )
  return manifest
