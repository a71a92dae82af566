"""What the benchmarks share: jitted jaxres forward and train steps, torchvision twins, timing.

The jaxres train step is the engine's step reduced to its arithmetic: forward in train mode (BatchNorm
batch statistics), softmax cross-entropy, gradients, SGD with momentum 0.9, jitted with the state
donated. The torch train step does the same in eager mode: forward, cross-entropy, backward, SGD step.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import multiprocessing
import platform
import re
import sys
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxres import models

TORCHVISION_VIDEO = ("r3d_18", "mc3_18", "r2plus1d_18")
TORCH_MEMORY_FORMATS = (
  "channels_first",
  "channels_last",
)  # channels_last: torch.channels_last(_3d)


def median_time(fn: Callable[[], Any], reps: int = 1) -> float:
  """Median wall time of `fn()` over `reps` calls (seconds); results are waited for."""
  times = []
  for _ in range(reps):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def spawn_worker() -> concurrent.futures.ProcessPoolExecutor:
  """A one-process pool in a fresh (spawned) interpreter: one library's side of a comparison.

  Spawned, it re-reads the malloc settings from the environment and starts with an empty heap.

  Example:
    >>> with spawn_worker() as worker:
    ...   seconds = worker.submit(timed_call).result()
  """
  return concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))


def cpu_description() -> str:
  """The CPU's model name and vector units, e.g. "Intel(R) Xeon(R) Processor (avx2,avx512f)".

  Recorded with every result because the jaxres/torch ratios depend on the CPU: the same code
  measured train-step ratios of 1.06 on the machine of 2026-11-23 and 0.77 on the AVX-512 one of
  2026-12-01, where torch ran 1.8x faster (figures in the git history of benchmarks/README.md).
  """
  try:
    with open("/proc/cpuinfo") as f:
      info = f.read()
  except OSError:
    return platform.processor() or platform.machine()
  model = re.search(r"^model name\s*:\s*(.+)$", info, re.M)
  flags = re.search(r"^flags\s*:\s*(.+)$", info, re.M)
  have = set(flags.group(1).split()) if flags else set()
  units = [u for u in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if u in have]
  return f"{model.group(1).strip() if model else platform.machine()} ({','.join(units)})"


def input_shape(name: str, batch: int, frames: int, size: int) -> tuple[int, ...]:
  frames_ = (frames,) if models.spec(name).input_rank == 5 else ()
  return (batch, *frames_, size, size, 3)


@dataclasses.dataclass
class JaxBench:
  """A model's jitted forward and train step with their inputs; call `forward()` / `train()`."""

  forward: Callable[[], Any]
  train: Callable[[], Any]
  forward_compiled: Any
  train_compiled: Any
  compile_s: dict


def jax_bench(name: str, shape, num_classes: int = 400, **model_kwargs) -> JaxBench:
  """Builds, compiles (timed) and warms up jaxres' forward and train step for `name` at `shape`."""
  model = models.get(name, num_classes=num_classes, **model_kwargs)
  x = jax.random.normal(jax.random.key(0), shape, jnp.float32)
  labels = jnp.arange(shape[0]) % num_classes
  variables = jax.jit(functools.partial(model.init, train=False))(jax.random.key(1), x)
  tx = optax.sgd(0.01, momentum=0.9)

  def forward(variables, x):
    return model.apply(variables, x, train=False)

  def train_step(state, x, labels):
    params, batch_stats, opt_state = state

    def loss_fn(params):
      logits, updates = model.apply(
        {"params": params, "batch_stats": batch_stats}, x, train=True, mutable=["batch_stats"]
      )
      loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
      return loss, updates["batch_stats"]

    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), batch_stats, opt_state), loss

  compile_s = {}
  start = time.perf_counter()
  fwd = jax.jit(forward).lower(variables, x).compile()
  compile_s["forward"] = time.perf_counter() - start
  # Copies: the step donates its state, and the forward keeps using `variables`.
  state = jax.tree.map(
    jnp.copy, (variables["params"], variables["batch_stats"], tx.init(variables["params"]))
  )
  start = time.perf_counter()
  step = jax.jit(train_step, donate_argnums=(0,)).lower(state, x, labels).compile()
  compile_s["train"] = time.perf_counter() - start
  holder = {"state": state}

  def run_train():
    holder["state"], loss = step(holder["state"], x, labels)
    return loss

  bench = JaxBench(lambda: fwd(variables, x), run_train, fwd, step, compile_s)
  jax.block_until_ready((bench.forward(), bench.train()))  # warm-up
  return bench


def peak_bytes(compiled) -> int | None:
  """XLA's estimate of the memory a compiled function needs: arguments, outputs and temporaries."""
  try:
    m = compiled.memory_analysis()
    return int(
      m.argument_size_in_bytes
      + m.output_size_in_bytes
      + m.temp_size_in_bytes
      - m.alias_size_in_bytes
    )
  except Exception:  # not every backend reports it
    return None


def import_torch():
  """(torch, torchvision) or None when they are not installed."""
  try:
    import torch
    import torchvision
  except ImportError:
    return None
  return torch, torchvision


# jaxres models whose torch twin is PyTorchVideo's (`create_x3d` at the X3D size's depth).
PYTORCHVIDEO_X3D = {"x3d_xs": 2.2, "x3d_s": 2.2, "x3d_m": 2.2, "x3d_l": 5.0}
# PyTorchVideo ResNet-family models with a torch twin here (`create_csn`, `create_slowfast`,
# `create_resnet` for slow_r50, `create_r2plus1d`).
PYTORCHVIDEO_RESNET = ("csn_r101", "slowfast_r50", "slow_r50", "r2plus1d_r50")
SLOWFAST_ALPHA = 4  # slowfast_r50's slow pathway takes every 4th frame (PyTorchVideo's 8x8 model)


def _import_pytorchvideo_models():
  _, torchvision = import_torch()
  # PyTorchVideo imports a module torchvision has renamed.
  sys.modules.setdefault(
    "torchvision.transforms.functional_tensor", torchvision.transforms._functional_tensor
  )
  import pytorchvideo.models.csn
  import pytorchvideo.models.r2plus1d
  import pytorchvideo.models.resnet
  import pytorchvideo.models.slowfast
  import pytorchvideo.models.x3d

  return pytorchvideo.models


def _square(name: str, shape) -> None:
  if shape[-2] != shape[-3]:
    raise ValueError(
      f"{name}: the PyTorchVideo peer takes square crops, not {shape[-3]}x{shape[-2]}; pass --size."
    )


def pytorchvideo_x3d(name: str, shape) -> Callable[..., Any]:
  """A `constructor(num_classes=...)` of PyTorchVideo's X3D for clips of `shape` (jaxres' layout).

  Built for that clip (its head pools over a fixed window sized from the clip), returning logits
  (no softmax) and without dropout, like the jaxres train step here (which passes no dropout rng).
  """
  create_x3d = _import_pytorchvideo_models().x3d.create_x3d
  _square(name, shape)

  def constructor(num_classes):
    return create_x3d(
      input_clip_length=shape[1],
      input_crop_size=shape[2],
      model_num_class=num_classes,
      depth_factor=PYTORCHVIDEO_X3D[name],
      dropout_rate=0.0,
      head_activation=None,
    )

  return constructor


def pytorchvideo_resnet(name: str, shape) -> Callable[..., Any]:
  """A `constructor(num_classes=...)` of a PyTorchVideo ResNet (`PYTORCHVIDEO_RESNET`) for `shape`.

  The hub models' heads average-pool over a fixed window sized for their default clip ((4, 7, 7)
  for CSN and R(2+1)D-50, (8, 7, 7) for Slow-R50; (8, 7, 7) and (32, 7, 7) for SlowFast's
  pathways), which does not fit other clips; jaxres' heads pool globally. So the peer is the hub
  model's builder (`create_csn` at depth 101 with a max-pooled stem, `create_slowfast` at depth 50
  with 7x1x1 fusion convs, `create_resnet` with a 1x7x7 stem for slow_r50, `create_r2plus1d`) with
  the head pools set to the clip's final feature maps (a global pool, the hub kernels at the
  default clip): both compute the same logits. No dropout and no softmax (R(2+1)D-50's hub head
  ends with one), like the jaxres train step here.

  Args:
    name: one of `PYTORCHVIDEO_RESNET`.
    shape: the jaxres input shape [B, T, H, W, 3] (H == W).

  Returns:
    `constructor(num_classes)` -> torch.nn.Module. SlowFast's takes [slow, fast] pathways
    (`torch_input`), the others the clip.

  Example:
    >>> model = pytorchvideo_resnet("csn_r101", (2, 8, 64, 64, 3))(num_classes=400)
  """
  pv = _import_pytorchvideo_models()
  torch, _ = import_torch()
  _square(name, shape)
  frames, size = shape[1], shape[2]
  final = -(-size // 32)  # every spatial stride-2 conv or pool pads: each halves, rounding up
  if name == "csn_r101":

    def constructor(num_classes):
      return pv.csn.create_csn(
        model_depth=101,
        stem_pool=torch.nn.MaxPool3d,
        head_pool_kernel_size=(-(-frames // 8), final, final),
        model_num_class=num_classes,
        dropout_rate=0.0,
      )
  elif name == "slowfast_r50":
    slow = frames // SLOWFAST_ALPHA
    if slow < 1:
      raise ValueError(f"slowfast_r50 needs at least {SLOWFAST_ALPHA} frames, not {frames}.")

    def constructor(num_classes):
      return pv.slowfast.create_slowfast(
        model_depth=50,
        slowfast_fusion_conv_kernel_size=(7, 1, 1),
        head_pool_kernel_sizes=((slow, final, final), (frames, final, final)),
        model_num_class=num_classes,
        dropout_rate=0.0,
      )
  elif name == "slow_r50":  # no temporal downsampling

    def constructor(num_classes):
      return pv.resnet.create_resnet(
        model_depth=50,
        stem_conv_kernel_size=(1, 7, 7),
        head_pool_kernel_size=(frames, final, final),
        model_num_class=num_classes,
        dropout_rate=0.0,
      )
  elif name == "r2plus1d_r50":  # temporal strides 1, 1, 2, 2

    def constructor(num_classes):
      return pv.r2plus1d.create_r2plus1d(
        head_pool_kernel_size=(-(-frames // 4), final, final),
        head_activation=None,
        model_num_class=num_classes,
        dropout_rate=0.0,
      )
  else:
    raise ValueError(
      f"No PyTorchVideo ResNet peer for {name!r}; choose from {', '.join(PYTORCHVIDEO_RESNET)}."
    )
  return constructor


def torch_input(name: str, x):
  """The clip `x` [B, C, T, H, W] as `name`'s torch peer takes it.

  SlowFast: [slow, fast] as PyTorchVideo's `PackPathway` transform makes them (slow: frames
  `linspace(0, T - 1, T // 4)` of the clip; fast: the clip). Its data pipeline does this, so it is
  outside torch's timed calls; jaxres' model picks the same frames inside (a gather, negligible).
  """
  if name != "slowfast_r50":
    return x
  import torch

  index = torch.linspace(0, x.shape[2] - 1, x.shape[2] // SLOWFAST_ALPHA).long()
  return [torch.index_select(x, 2, index), x]


def _fresh(inputs):
  return list(inputs) if isinstance(inputs, list) else inputs


@dataclasses.dataclass
class TorchBench:
  forward: Callable[[], Any]
  train: Callable[[], Any]
  memory_format: str
  model: Any  # the torch.nn.Module the two calls run


def torch_benches(
  name: str,
  shape,
  num_classes: int = 400,
  threads: int | None = None,
  memory_formats: Sequence[str] = TORCH_MEMORY_FORMATS,
) -> dict[str, TorchBench]:
  """torchvision's `name` (PyTorchVideo's for X3D, CSN, SlowFast), eager float32, once per format.

  Each format gets its own copy of the model (the same initial weights) and of the input, so the
  formats can be timed alternately and the faster one taken per task: a one-call probe picked
  channels-first for r2plus1d_18's train step in one run where channels-last was faster in others.
  `shape` is jaxres' channels-last shape; torch gets the same clip channels-first.

  Args:
    name: a torchvision video (or image) model name, e.g. "r3d_18", or "x3d_xs" ... "x3d_l",
      "csn_r101", "slowfast_r50" (PyTorchVideo's, `pytorchvideo_resnet`).
    shape: the jaxres input shape, e.g. (4, 16, 112, 112, 3).
    num_classes: classifier width.
    threads: torch intra-op threads (None leaves torch's default).
    memory_formats: a subset of `TORCH_MEMORY_FORMATS`.

  Returns:
    {format: TorchBench} with warmed-up `forward()` (eval, no grad) and `train()` (forward,
    cross-entropy, backward, SGD momentum step).

  Example:
    >>> benches = torch_benches("r3d_18", (4, 16, 112, 112, 3), threads=2)
    >>> benches["channels_last"].train()
  """
  torch, torchvision = import_torch()
  if threads:
    torch.set_num_threads(threads)
  if name in PYTORCHVIDEO_X3D:
    constructor = pytorchvideo_x3d(name, shape)
  elif name in PYTORCHVIDEO_RESNET:
    constructor = pytorchvideo_resnet(name, shape)
  else:
    constructor = getattr(torchvision.models.video, name, None) or getattr(torchvision.models, name)
  initial = constructor(num_classes=num_classes).state_dict()
  x = torch.randn(shape[0], shape[-1], *shape[1:-1])
  labels = torch.arange(shape[0]) % num_classes
  layouts = {
    "channels_first": torch.contiguous_format,
    "channels_last": torch.channels_last_3d if x.ndim == 5 else torch.channels_last,
  }
  benches = {}
  for fmt in memory_formats:
    model = constructor(num_classes=num_classes)
    model.load_state_dict(initial)
    model.to(memory_format=layouts[fmt])
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xf = torch_input(name, x)
    # SlowFast's pathways: a list, copied for each call (its model overwrites the list it gets).
    xf = (
      [p.contiguous(memory_format=layouts[fmt]) for p in xf]
      if isinstance(xf, list)
      else xf.contiguous(memory_format=layouts[fmt])
    )

    def forward(model=model, xf=xf):
      model.eval()
      with torch.no_grad():
        return model(_fresh(xf))

    def train(model=model, opt=opt, xf=xf):
      model.train()
      opt.zero_grad(set_to_none=True)
      loss = torch.nn.functional.cross_entropy(model(_fresh(xf)), labels)
      loss.backward()
      opt.step()
      return loss

    forward(), train()  # warm-up
    benches[fmt] = TorchBench(forward, train, fmt, model)
  return benches
