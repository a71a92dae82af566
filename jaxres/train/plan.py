"""Memory per device of a config's train step before launching it: parameters, optimiser state,
the batch and the compiler's temporaries, in replicated and FSDP layouts.

Closed-form for any device count (a pod of 100,000 answers in seconds): state and batch sizes
follow from the shapes and the sharding rule, exact for any backend, with no per-device object.
The temporaries are what XLA's compiler reserves (`compiled.memory_analysis()`) for the same
per-device batch compiled on at most `COMPILE_DEVICES` devices, e.g. fake CPU devices
(`jaxres plan` starts them); on fake CPU devices they are an estimate of an accelerator's,
which fuses and schedules differently (XLA's CPU scheduler, for one, does not shorten the life
of rematerialised activations, so `model.remat` shows there in the state, not the temporaries).

Example:
  >>> for row in plan_memory(load_config("kinetics400_r3d_18")):
  ...   print(row.layout, row.total_bytes / 2**30, "GiB")
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections

from jaxres import models
from jaxres.train import parallel
from jaxres.train.build import build_engine

_UNITS = {
  "": 1,
  "b": 1,
  "k": 1e3,
  "kb": 1e3,
  "kib": 2**10,
  "m": 1e6,
  "mb": 1e6,
  "mib": 2**20,
  "g": 1e9,
  "gb": 1e9,
  "gib": 2**30,
  "t": 1e12,
  "tb": 1e12,
  "tib": 2**40,
}


def parse_bytes(text: str) -> int:
  """`"16GiB"`, `"80GB"`, `"512MiB"` or a plain number of bytes -> bytes.

  Example:
    >>> parse_bytes("16GiB")
    17179869184
  """
  match = re.fullmatch(r"\s*([\d.]+)\s*([a-zA-Z]*)\s*", str(text))
  if not match or match.group(2).lower() not in _UNITS:
    raise ValueError(f"Cannot read a memory size from {text!r}; write e.g. 16GiB, 80GB or 512MiB.")
  return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
  """Bytes per device of one layout's train step (the largest over devices where they differ).

  Attributes:
    layout: "replicated", "fsdp" or "mesh data x fsdp".
    num_devices: devices the step runs on.
    params_bytes: parameters.
    opt_state_bytes: optimiser state.
    other_state_bytes: BatchNorm statistics, EMA parameters, step.
    batch_bytes: this device's share of the global batch.
    temp_bytes: the compiler's temporaries (activations kept for the backward pass among them).
  """

  layout: str
  num_devices: int
  params_bytes: int
  opt_state_bytes: int
  other_state_bytes: int
  batch_bytes: int
  temp_bytes: int

  @property
  def total_bytes(self) -> int:
    return (
      self.params_bytes
      + self.opt_state_bytes
      + self.other_state_bytes
      + self.batch_bytes
      + self.temp_bytes
    )


# Devices the step is compiled on for the temporaries: the first min(N, this) of them.
COMPILE_DEVICES = 8


def _per_device_bytes(tree: Any, num_shards: int, min_size: int) -> int:
  """Bytes of `tree`'s (shapes') shards on one device, each leaf split as `parallel.fsdp_spec`
  splits it over `num_shards` devices (1: replicated). Every device holds equal shards, since an
  array is split only along a dimension the device count divides."""
  total = 0
  for leaf in jax.tree.leaves(tree):
    shape = list(leaf.shape)
    spec = parallel.fsdp_spec(shape, num_shards, min_size) if num_shards > 1 else ()
    for axis, name in enumerate(spec):
      if name is not None:
        shape[axis] //= num_shards
    total += math.prod(shape) * jnp.dtype(leaf.dtype).itemsize
  return total


def abstract_batch(config, engine, task) -> dict[str, jax.ShapeDtypeStruct]:
  """The global batch `config` trains on, as shapes on the engine's batch sharding."""
  d = config.data
  frames = (d.num_frames,) if models.spec(config.model.name).input_rank == 5 else ()
  shape = (config.global_batch_size, *frames, d.crop_size, d.crop_size, 3)
  sharding = engine.batch_sharding
  batch = {"video": jax.ShapeDtypeStruct(shape, jnp.float32, sharding=sharding)}
  if task.name == "classification":
    batch["label"] = jax.ShapeDtypeStruct(shape[:1], jnp.int32, sharding=sharding)
  return batch


def _layouts(config, num_devices: int) -> list[tuple[str, bool, int, int]]:
  """`(name, fsdp, data, fsdp axis)` of each layout planned on `num_devices` devices."""
  layouts = [("replicated", False, num_devices, 1), ("fsdp", True, num_devices, 1)]
  mesh = dict(config.parallel.mesh)
  if mesh.get("fsdp", 1) != 1:
    data, fsdp = parallel.mesh_axes(num_devices, mesh)
    layouts.append((f"mesh {mesh.get('data', -1)} x {mesh['fsdp']}", False, data, fsdp))
  return layouts


def plan_memory(
  config, devices: Sequence[jax.Device] | None = None, *, num_devices: int | None = None
) -> list[MemoryPlan]:
  """Per-device memory of `config`'s train step on `num_devices` devices, in each layout.

  Closed-form for any device count: state and batch bytes follow from the shapes and the
  sharding rule (`parallel.fsdp_spec`), with no per-device object. The temporaries are the
  compiler's for the same per-device batch on the first min(N, `COMPILE_DEVICES`) of `devices`
  (the FSDP axis likewise capped): exactly today's program up to that count, and beyond it the
  same activations per device with the parameters gathered as they are on N.

  Args:
    config: a training config (`global_batch_size`, `data.num_frames`/`crop_size`, the model,
      `grad_accum_steps`, `model.remat` are read; `parallel.mode` is taken as "jit").
    devices: devices to compile on (default: all local ones); their kind sets the temporaries.
    num_devices: devices to plan for (default: `len(devices)`); may exceed `devices`.

  Returns:
    One `MemoryPlan` per layout: replicated, FSDP over all devices, and the config's own
    two-axis `parallel.mesh` when it has one.

  Raises:
    ValueError: the global batch does not split evenly over the devices and micro-batches, a
      mesh that does not fit, or fewer `devices` than the compile needs.

  Example:
    >>> plans = plan_memory(load_config("demo"), num_devices=100_000)
  """
  devices = list(jax.devices() if devices is None else devices)
  n = len(devices) if num_devices is None else int(num_devices)
  if n < 1:
    raise ValueError(f"num_devices must be >= 1, got {n}.")
  batch_size, accum = config.global_batch_size, config.grad_accum_steps
  if batch_size % (n * accum):
    raise ValueError(
      f"global_batch_size={batch_size} does not split over {n} devices x grad_accum_steps="
      f"{accum}; use a multiple of {n * accum}."
    )
  per_device = batch_size // n
  min_size = config.parallel.fsdp_min_size
  plans = []
  for name, fsdp, data, fsdp_axis in _layouts(config, n):
    small_fsdp = min(fsdp_axis, COMPILE_DEVICES)
    small_data = min(data, max(1, COMPILE_DEVICES // small_fsdp))
    k = small_data * small_fsdp
    if k > len(devices):
      raise ValueError(
        f"Planning for {n} devices compiles on {k}; only {len(devices)} exist (run `jaxres plan`, "
        "which starts them)."
      )
    c = ml_collections.ConfigDict(config.to_dict())
    c.parallel.mode, c.parallel.num_devices, c.parallel.fsdp = "jit", -1, fsdp
    c.parallel.mesh = {"data": small_data, "fsdp": small_fsdp}
    c.global_batch_size = per_device * k  # the same share per device as on n
    engine, _, task = build_engine(c, devices=devices[:k])
    batch = abstract_batch(c, engine, task)
    input_shape = jax.eval_shape(lambda b: task.model_input(task.prepare(b, None)), batch).shape
    state = engine.abstract_state(tuple(input_shape))
    step = engine._compile("train", state)  # pylint: disable=protected-access
    memory = step.lower(state, batch, jax.random.key(0)).compile().memory_analysis()
    shards = fsdp_axis if fsdp_axis > 1 else (n if fsdp else 1)
    per_batch = sum(
      math.prod(x.shape[1:]) * per_device * jnp.dtype(x.dtype).itemsize
      for x in jax.tree.leaves(batch)
    )
    plans.append(
      MemoryPlan(
        name,
        n,
        _per_device_bytes(state.params, shards, min_size),
        _per_device_bytes(state.opt_state, shards, min_size),
        _per_device_bytes(state.replace(params=None, opt_state=None), shards, min_size),
        per_batch,
        int(memory.temp_size_in_bytes),
      )
    )
  return plans


def format_bytes(n: float) -> str:
  """`1536` -> `"1.5 KiB"`."""
  for unit in ("B", "KiB", "MiB", "GiB"):
    if abs(n) < 1024 or unit == "GiB":
      return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
    n /= 1024
  return f"{n:.1f} GiB"


def format_plans(plans: Sequence[MemoryPlan], budget: int | None = None) -> str:
  """A table of `plans` per device, with whether each fits `budget` bytes."""
  columns = ("layout", "params", "opt state", "other state", "batch", "temporaries", "total")
  rows = [
    [p.layout]
    + [
      format_bytes(v)
      for v in (
        p.params_bytes,
        p.opt_state_bytes,
        p.other_state_bytes,
        p.batch_bytes,
        p.temp_bytes,
        p.total_bytes,
      )
    ]
    for p in plans
  ]
  if budget is not None:
    columns += ("fits " + format_bytes(budget),)
    for row, p in zip(rows, plans):
      row.append("yes" if p.total_bytes <= budget else "NO")
  widths = [max(len(str(r[i])) for r in [columns] + rows) for i in range(len(columns))]
  line = lambda r: "  ".join(
    str(v).ljust(w) if i == 0 else str(v).rjust(w) for i, (v, w) in enumerate(zip(r, widths))
  )
  return "\n".join([line(columns)] + [line(r) for r in rows])
