"""Memory per device of a config's train step before launching it: parameters, optimiser state,
the batch and the compiler's temporaries, in replicated and FSDP layouts.

The step is compiled (not run) for the devices given, e.g. fake CPU devices standing in for a pod
slice (`jaxres plan` starts them). State and batch sizes are exact for any backend: they follow
from the shardings. Temporaries are what XLA's compiler for those devices reserves
(`compiled.memory_analysis()`); on fake CPU devices they are an estimate of an accelerator's,
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


def _device_bytes(tree: Any) -> int:
  """Bytes of `tree`'s shards on its most loaded device."""
  per_device: dict[Any, int] = {}
  for leaf in jax.tree.leaves(tree):
    shard = leaf.sharding.shard_shape(leaf.shape)
    size = math.prod(shard) * jnp.dtype(leaf.dtype).itemsize
    for device in leaf.sharding.device_set:
      per_device[device] = per_device.get(device, 0) + size
  return max(per_device.values(), default=0)


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


def _layouts(config) -> list[tuple[str, dict]]:
  layouts = [
    ("replicated", {"fsdp": False, "mesh": {"data": -1, "fsdp": 1}}),
    ("fsdp", {"fsdp": True, "mesh": {"data": -1, "fsdp": 1}}),
  ]
  mesh = dict(config.parallel.mesh)
  if mesh.get("fsdp", 1) != 1:
    layouts.append((f"mesh {mesh.get('data', -1)} x {mesh['fsdp']}", {"fsdp": False, "mesh": mesh}))
  return layouts


def plan_memory(config, devices: Sequence[jax.Device] | None = None) -> list[MemoryPlan]:
  """Compiles `config`'s train step on `devices` in each layout and measures it per device.

  Args:
    config: a training config (`global_batch_size`, `data.num_frames`/`crop_size`, the model,
      `grad_accum_steps`, `model.remat` are read; `parallel.mode` is taken as "jit").
    devices: the devices (default: all).

  Returns:
    One `MemoryPlan` per layout: replicated, FSDP over all devices, and the config's own
    two-axis `parallel.mesh` when it has one.

  Example:
    >>> plans = plan_memory(load_config("demo"), jax.devices()[:8])
  """
  devices = list(jax.devices() if devices is None else devices)
  plans = []
  for name, parallel in _layouts(config):
    c = ml_collections.ConfigDict(config.to_dict())
    c.parallel.mode, c.parallel.num_devices, c.parallel.fsdp = "jit", -1, parallel["fsdp"]
    c.parallel.mesh = parallel["mesh"]
    engine, _, task = build_engine(c, devices=devices)
    batch = abstract_batch(c, engine, task)
    input_shape = jax.eval_shape(lambda b: task.model_input(task.prepare(b, None)), batch).shape
    state = engine.abstract_state(tuple(input_shape))
    step = engine._compile("train", state)  # pylint: disable=protected-access
    memory = step.lower(state, batch, jax.random.key(0)).compile().memory_analysis()
    other = state.replace(params=None, opt_state=None)
    plans.append(
      MemoryPlan(
        name,
        len(devices),
        _device_bytes(state.params),
        _device_bytes(state.opt_state),
        _device_bytes(other),
        _device_bytes(batch),
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
