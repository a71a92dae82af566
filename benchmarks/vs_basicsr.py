"""jaxres against BasicSR 1.4.2 on the same CPU: video SR inference frames/s and peak memory.

EDSR, BasicVSR, IconVSR and BasicVSR++ at x4 on the same random LR clip, with the same weights:
BasicSR's network is built with a random initialisation (SPyNet's flows and the deformable
offsets pushed away from their near-zero initial values, as tests/test_parity_basicsr.py does, so
the alignment really moves features) and its state dict converted into jaxres
(`jaxres.convert.from_basicsr`); the two outputs must agree (relative error < 1e-3) or the model's
row fails. BasicVSR++ is BasicSR's CUDA network (built with `torch.cuda.is_available` patched, as
BasicSR leaves the deformable alignment out on CPU), its alignment through torchvision's
`deform_conv2d` on CPU.

Each side of each model runs in its own fresh process (spawned, so the malloc settings of
`jaxres.host_memory`, which the script restarts itself with, apply to both), and the two stay
alive side by side: after one untimed call each, every repetition times one torch call, then one
jaxres call, so load from other processes hits both alike. Frames/s is the clip's frames over
the median call; peak memory is each process's `VmHWM` after the timed calls (model, input,
compilation and every call's temporaries; the interpreter and libraries included). EDSR is a
per-frame network: the clip's frames are its batch.

Beside the model's own call, jaxres' upscale path (`jaxres.sr.upscale.Upscaler.frames`, what
`jaxres upscale` runs) over the same frames, for each `--upscale` setting: `chunk` frames kept per
window with `overlap` context frames on each side, `tile` px LR tiles overlapping by
`tile_overlap`; frames/s of a second pass (the first compiles, its seconds are recorded too).

  python -m benchmarks.vs_basicsr [--models edsr,basicvsr,iconvsr,basicvsrpp] [--frames 5]
      [--size 320x180] [--reps 3] [--threads 2] [--features 64] [--blocks N]
      [--upscale "chunk=5,tile=0;chunk=3,overlap=1,tile=96"] [--out results/vs_basicsr.json]

`--features` / `--blocks` shrink the networks (tests); by default each has its published size
(EDSR baseline 16 x 64; BasicVSR and IconVSR 30 x 64; BasicVSR++ 7 x 64). Exits 0 with a message
when torch or BasicSR is not installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time

import numpy as np

from benchmarks import harness
from jaxres import host_memory

SR_MODELS = ("edsr", "basicvsr", "iconvsr", "basicvsrpp")
# Published sizes: (features, blocks) and the jaxres model name of each BasicSR network.
PUBLISHED = {"edsr": (64, 16), "basicvsr": (64, 30), "iconvsr": (64, 30), "basicvsrpp": (64, 7)}
JAXRES_NAME = {"edsr": "edsr_baseline", "basicvsr": "basicvsr", "iconvsr": "iconvsr"}
JAXRES_NAME["basicvsrpp"] = "basicvsrpp"
DEFAULT_UPSCALE = "chunk=5,tile=0;chunk=3,overlap=1,tile=96"
AGREEMENT = 1e-3  # largest |jaxres - BasicSR| relative to BasicSR's largest output magnitude

_STATE: dict = {}  # what a worker process holds between calls: its network, input and output


def import_basicsr():
  """BasicSR's arch modules, or None when torch, torchvision or BasicSR is not installed.

  BasicSR 1.4.2 imports `torchvision.transforms.functional_tensor`, which torchvision renamed
  `_functional_tensor`; the old name is aliased first.
  """
  if harness.import_torch() is None:
    return None
  _, torchvision = harness.import_torch()
  sys.modules.setdefault(
    "torchvision.transforms.functional_tensor", torchvision.transforms._functional_tensor
  )
  try:
    import basicsr.archs.basicvsr_arch
    import basicsr.archs.basicvsrpp_arch
    import basicsr.archs.edsr_arch
  except ImportError:
    return None
  return basicsr.archs


def parse_upscale(spec: str) -> list[dict]:
  """`"chunk=5,tile=0;chunk=3,overlap=1,tile=96"` -> one `UpscaleOptions` keyword dict each.

  Example:
    >>> parse_upscale("chunk=5,tile=0")
    [{'chunk': 5, 'tile': 0}]
  """
  settings = []
  for part in filter(None, (p.strip() for p in spec.split(";"))):
    setting = {}
    for item in part.split(","):
      key, _, value = item.partition("=")
      if key.strip() not in ("chunk", "overlap", "tile", "tile_overlap") or not value:
        raise ValueError(f"--upscale: {item!r} is not chunk=N, overlap=N, tile=N or tile_overlap=N")
      setting[key.strip()] = int(value)
    settings.append(setting)
  return settings


def lr_clip(frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
  """A random LR clip `[1, T, h, w, 3]` in [0, 1], float32 (smooth enough for SPyNet to track)."""
  rng = np.random.default_rng(seed)
  coarse = rng.uniform(size=(1, frames, -(-height // 4) + 1, -(-width // 4) + 1, 3))
  clip = np.repeat(np.repeat(coarse, 4, axis=2), 4, axis=3)[:, :, :height, :width]
  return (0.7 * clip + 0.3 * rng.uniform(size=clip.shape)).astype(np.float32)


def _basicsr_network(name: str, features: int, blocks: int, seed: int):
  """BasicSR's network, random weights with moving flows and offsets, in eval mode."""
  import torch

  archs = import_basicsr()
  torch.manual_seed(seed)
  if name == "edsr":
    net = archs.edsr_arch.EDSR(3, 3, num_feat=features, num_block=blocks, upscale=4)
  elif name == "basicvsr":
    net = archs.basicvsr_arch.BasicVSR(num_feat=features, num_block=blocks)
  elif name == "iconvsr":
    net = archs.basicvsr_arch.IconVSR(
      num_feat=features, num_block=blocks, keyframe_stride=5, temporal_padding=2
    )
  elif name == "basicvsrpp":
    from unittest import mock

    # On CPU BasicSR builds BasicVSR++ without its deformable alignment: build the CUDA network.
    with mock.patch.object(torch.cuda, "is_available", return_value=True):
      net = archs.basicvsrpp_arch.BasicVSRPlusPlus(mid_channels=features, num_blocks=blocks)
  else:
    raise ValueError(f"No BasicSR peer for {name!r}; choose from {', '.join(SR_MODELS)}.")
  with torch.no_grad():
    spynet = getattr(net, "spynet", None)
    for module in spynet.basic_module if spynet is not None else ():
      module.basic_module[8].weight.mul_(10.0)  # flows of several pixels, not ~1
      module.basic_module[8].bias.normal_(0, 1.0)
    for module in net.modules():
      offset = getattr(module, "conv_offset", None)
      if isinstance(offset, torch.nn.Sequential):  # BasicVSR++'s offset stack: its last conv
        offset = offset[-1]
      if isinstance(offset, torch.nn.Conv2d):
        torch.nn.init.normal_(offset.weight, 0, 0.05)
        torch.nn.init.normal_(offset.bias, 0, 0.5)
  return net.eval()


def torch_setup(name: str, features: int, blocks: int, clip: np.ndarray, threads: int) -> dict:
  """(In a worker) builds BasicSR's `name` and its input; returns its state dict as numpy."""
  import torch

  torch.set_num_threads(threads)
  net = _basicsr_network(name, features, blocks, seed=0)
  x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(clip, -1, -3)))  # [1, T, 3, h, w]
  if name == "edsr":
    x = x[0]  # the frames as a batch

  def call():
    with torch.no_grad():
      return net(x)

  _STATE.update(call=call, to_numpy=lambda y: np.moveaxis(y.numpy(), -3, -1))
  return {k: v.numpy() for k, v in net.state_dict().items()}


def jaxres_setup(name: str, state_dict: dict, clip: np.ndarray) -> dict:
  """(In a worker) converts BasicSR's weights into jaxres' `name` and compiles its forward."""
  import jax

  from jaxres import models
  from jaxres.convert import from_basicsr, model_fields

  arch = JAXRES_NAME[name]
  fields = model_fields(state_dict, arch)
  model = models.get(arch, **fields)
  variables = jax.device_put(from_basicsr(state_dict, arch))
  x = clip[0] if name == "edsr" else clip
  start = time.perf_counter()
  forward = jax.jit(lambda v, x: model.apply(v, x, train=False)).lower(variables, x).compile()
  compile_s = time.perf_counter() - start
  x = jax.device_put(x)
  _STATE.update(
    call=lambda: jax.block_until_ready(forward(variables, x)),
    to_numpy=np.asarray,
    model=model,
    variables=variables,
    clip_model=name != "edsr",
  )
  return {"compile_s": compile_s, "fields": fields}


def timed_call() -> float:
  """(In a worker) seconds of one call of the worker's network; keeps the output."""
  start = time.perf_counter()
  _STATE["output"] = _STATE["call"]()
  return time.perf_counter() - start


def output() -> np.ndarray:
  """(In a worker) the last call's output, channels-last `[..., 4h, 4w, 3]` numpy."""
  return _STATE["to_numpy"](_STATE["output"])


def peak_memory() -> int:
  """(In a worker) the process's peak resident memory so far, bytes."""
  from jaxres.sr import memory_budget

  return memory_budget.peak_resident_bytes()


def upscale_path(clip: np.ndarray, setting: dict) -> dict:
  """(In a jaxres worker) `Upscaler.frames` over the clip's frames: a compiling pass, a timed one."""
  from jaxres.sr import upscale

  options = upscale.UpscaleOptions(**{"overlap": 0, "tile": 0, **setting})
  up = upscale.Upscaler(
    _STATE["model"], _STATE["variables"], 4, clip_model=_STATE["clip_model"], options=options
  )
  frames = list(clip[0])
  seconds = []
  for _ in range(2):
    start = time.perf_counter()
    out = list(up.frames(frames))
    seconds.append(time.perf_counter() - start)
  assert len(out) == len(frames)
  return {
    "setting": setting,
    "first_pass_s": seconds[0],
    "seconds": seconds[1],
    "frames_per_s": len(frames) / seconds[1],
  }


def compare(
  name: str,
  clip: np.ndarray,
  reps: int,
  threads: int,
  features: int | None = None,
  blocks: int | None = None,
  upscale_settings: list[dict] = (),
) -> dict:
  """Times BasicSR's and jaxres' `name` alternately, each in its own fresh process.

  Returns:
    A dict with both sides' per-call seconds, frames/s, peak memory, the throughput ratio
    (jaxres/BasicSR, > 1: jaxres faster), the outputs' relative difference and the upscale path's
    runs.

  Raises:
    AssertionError: the two outputs differ by more than `AGREEMENT`.
  """
  features = features or PUBLISHED[name][0]
  blocks = blocks or PUBLISHED[name][1]
  with contextlib.ExitStack() as stack:
    ref = stack.enter_context(harness.spawn_worker())
    jx = stack.enter_context(harness.spawn_worker())
    state_dict = ref.submit(torch_setup, name, features, blocks, clip, threads).result()
    setup = jx.submit(jaxres_setup, name, state_dict, clip).result()
    del state_dict
    times = {"basicsr": [], "jaxres": []}
    for rep in range(reps + 1):  # the first round untimed
      for side, worker in (("basicsr", ref), ("jaxres", jx)):
        seconds = worker.submit(timed_call).result()
        if rep:
          times[side].append(seconds)
    expected, got = ref.submit(output).result(), jx.submit(output).result()
    error = float(
      np.abs(got.astype(np.float64) - expected).max() / max(np.abs(expected).max(), 1e-12)
    )
    peaks = {"basicsr": ref.submit(peak_memory).result(), "jaxres": jx.submit(peak_memory).result()}
    upscale = [jx.submit(upscale_path, clip, s).result() for s in upscale_settings]
  if error >= AGREEMENT:
    raise AssertionError(f"{name}: jaxres and BasicSR differ by {error:.2e} (relative) >= 1e-3")
  frames = clip.shape[1]
  medians = {side: float(np.median(t)) for side, t in times.items()}
  return {
    "model": name,
    "features": features,
    "blocks": blocks,
    "clip": list(clip.shape),
    "seconds": medians,
    "all_seconds": times,
    "frames_per_s": {side: frames / s for side, s in medians.items()},
    "ratio": medians["basicsr"] / medians["jaxres"],
    # Fastest call against fastest call: less moved by other processes' load, which slows torch's
    # threaded calls far more than XLA's (one BasicSR call took 7 s, the next 33 s, on a shared CPU).
    "ratio_fastest": min(times["basicsr"]) / min(times["jaxres"]),
    "peak_bytes": peaks,
    "relative_error": error,
    "compile_s": setup["compile_s"],
    "upscale": upscale,
  }


def _gib(n: int) -> str:
  return f"{n / 2**30:.2f}"


def markdown(results: list[dict]) -> str:
  lines = [
    "| model | BasicSR frames/s | jaxres frames/s | ratio | ratio, fastest calls | BasicSR peak GiB "
    "| jaxres peak GiB | upscale path frames/s | rel. error |",
    "|---|---|---|---|---|---|---|---|---|",
  ]
  for r in results:
    fps, peak = r["frames_per_s"], r["peak_bytes"]
    ups = ", ".join(
      f"{u['frames_per_s']:.3f} ({','.join(f'{k}={v}' for k, v in u['setting'].items())})"
      for u in r["upscale"]
    )
    lines.append(
      f"| {r['model']} ({r['blocks']}x{r['features']}) | {fps['basicsr']:.3f} | "
      f"{fps['jaxres']:.3f} | **{r['ratio']:.2f}** | {r['ratio_fastest']:.2f} | "
      f"{_gib(peak['basicsr'])} | "
      f"{_gib(peak['jaxres'])} | {ups or '-'} | {r['relative_error']:.1e} |"
    )
  return "\n".join(lines)


def header_load(meta: dict) -> str:
  """ "load average A -> B" (1-minute averages at the start and the end of the run)."""
  start, end = meta["load_average_start"][:1], meta["load_average_end"][:1]
  return f"load average {start[0] if start else '?':.2f} -> {end[0] if end else '?':.2f}"


def _load_average() -> list[float]:
  try:
    return list(os.getloadavg())
  except OSError:
    return []


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="vs_basicsr", description=__doc__.split("\n")[0])
  parser.add_argument("--models", default=",".join(SR_MODELS))
  parser.add_argument("--frames", type=int, default=5)
  parser.add_argument("--size", default="320x180", help="LR frame size WxH")
  parser.add_argument("--reps", type=int, default=3)
  parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch intra-op threads")
  parser.add_argument("--features", type=int, default=None, help="width (default: published)")
  parser.add_argument("--blocks", type=int, default=None, help="depth (default: published)")
  parser.add_argument(
    "--upscale", default=DEFAULT_UPSCALE, help="upscale-path settings, ;-separated"
  )
  parser.add_argument(
    "--out",
    default="benchmarks/results/vs_basicsr.json",
    help="JSON results; a .md table is written beside it",
  )
  args = parser.parse_args(argv)
  names = args.models.split(",")
  unknown = set(names) - set(SR_MODELS)
  if unknown:
    parser.error(f"--models: unknown {sorted(unknown)}; choose from {','.join(SR_MODELS)}")
  try:
    settings = parse_upscale(args.upscale)
  except ValueError as e:
    parser.error(str(e))
  if import_basicsr() is None:
    print("vs_basicsr: skipped, PyTorch/BasicSR are not installed (pip install torch basicsr).")
    return 0
  width, height = (int(v) for v in args.size.lower().split("x"))
  clip = lr_clip(args.frames, height, width)
  meta = {
    "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "cpu": harness.cpu_description(),
    "cores": os.cpu_count(),
    "load_average_start": _load_average(),
    "reps": args.reps,
    "threads": args.threads,
    "lr_size": [width, height],
    "frames": args.frames,
    "malloc_retains_freed_memory": host_memory.retaining(),
  }
  results = []
  for name in names:
    r = compare(name, clip, args.reps, args.threads, args.features, args.blocks, settings)
    r["load_average_after"] = _load_average()
    results.append(r)
    print(
      f"{name:10s} {args.frames}x{width}x{height} x4  jaxres/BasicSR {r['ratio']:.2f}x  "
      f"(frames/s BasicSR {r['frames_per_s']['basicsr']:.3f}, jaxres "
      f"{r['frames_per_s']['jaxres']:.3f}; peak GiB {_gib(r['peak_bytes']['basicsr'])} / "
      f"{_gib(r['peak_bytes']['jaxres'])}; rel. error {r['relative_error']:.1e})",
      flush=True,
    )
  meta["load_average_end"] = _load_average()
  table = markdown(results)
  print("\n" + table)
  if args.out:
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
      json.dump({"meta": meta, "results": results}, f, indent=1)
    with open(os.path.splitext(args.out)[0] + ".md", "w") as f:
      f.write(
        f"{meta['time']}, {meta['cpu']}, {meta['cores']} cores, {args.frames} LR frames of "
        f"{width}x{height} at x4, medians of {args.reps}, {header_load(meta)}\n\n" + table + "\n"
      )
  return 0


if __name__ == "__main__":
  host_memory.restart_retaining()
  sys.exit(main())
