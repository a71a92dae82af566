"""Parallelism around the pure steps: `jax.jit` over a device mesh (default) or `jax.pmap`.

Both engines have the same methods, so the loop does not know which one it drives:

- `abstract_state(input_shape)`: the state's shapes, dtypes and shardings, from `jax.eval_shape`
  (what checkpoints restore into);
- `init(rng, input_shape)`: the state, initialised by a jitted function straight into its shardings;
- `train_step(state, batch, rng)`, `eval_step(state, batch)`: the compiled steps (state donated);
- `put_batch(batch)`: numpy or global arrays -> the layout the steps take;
- `to_global(state)` / `from_global(state)`: between the engine's layout and the global one saved
  in checkpoints (the identity under jit).

Under jit the mesh has one axis, "data", or two, ("data", "fsdp"). Batches are split over every
axis. Parameters and optimiser state are replicated; with `fsdp=True` on the one-axis mesh they
are split over "data" too, and on the two-axis mesh always over "fsdp" (each array along its
largest dimension that the axis size divides; arrays smaller than `fsdp_min_size` stay
replicated), so a d x f mesh keeps d replicas of the state, each split f ways. XLA gathers the
parameters where they are used, so the step is the same function either way.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxres.train.state import TrainState, init_state
from jaxres.train.steps import make_eval_step, make_train_step

DATA_AXIS = "data"
FSDP_AXIS = "fsdp"
PMAP_AXIS = "batch"


def make_mesh(
  num_devices: int = -1,
  devices: Optional[Sequence[jax.Device]] = None,
  shape: Optional[Mapping[str, int]] = None,
) -> Mesh:
  """A mesh over `num_devices` devices (-1: all, across all hosts).

  Args:
    num_devices: how many of `devices` to use (-1: all).
    devices: the devices (default: `jax.devices()`, in order, so each host's devices are
      neighbours on the last axis).
    shape: `{"data": d, "fsdp": f}` for a two-axis mesh (one of them may be -1: the rest of the
      devices); None or `fsdp` 1: the one-axis "data" mesh.

  Returns:
    The `Mesh`.

  Raises:
    ValueError: more devices asked for than exist, or a shape that does not multiply to them.

  Example:
    >>> mesh = make_mesh()                                   # every device, axis "data"
    >>> mesh = make_mesh(4)                                  # the first 4
    >>> mesh = make_mesh(shape={"data": 2, "fsdp": -1})      # 2 x (devices / 2)
  """
  devices = list(jax.devices() if devices is None else devices)
  if num_devices > 0:
    if num_devices > len(devices):
      raise ValueError(f"Asked for {num_devices} devices, only {len(devices)} exist.")
    devices = devices[:num_devices]
  data, fsdp = mesh_axes(len(devices), shape)
  if fsdp == 1:
    return Mesh(np.array(devices), (DATA_AXIS,))
  return Mesh(np.array(devices).reshape(data, fsdp), (DATA_AXIS, FSDP_AXIS))


def mesh_axes(num_devices: int, shape: Optional[Mapping[str, int]] = None) -> tuple[int, int]:
  """The sizes `(data, fsdp)` of the mesh `shape` over `num_devices` devices (see `make_mesh`).

  Raises:
    ValueError: an axis other than "data" and "fsdp", or sizes that do not multiply to
      `num_devices`.

  Example:
    >>> mesh_axes(8, {"data": 2, "fsdp": -1})
    (2, 4)
  """
  shape = dict(shape or {})
  if set(shape) - {DATA_AXIS, FSDP_AXIS}:
    raise ValueError(f"parallel.mesh has axes {sorted(shape)}; only 'data' and 'fsdp' exist.")
  data, fsdp = int(shape.get(DATA_AXIS, -1)), int(shape.get(FSDP_AXIS, 1))
  n = num_devices
  if fsdp == -1 and data > 0 and n % data == 0:
    fsdp = n // data
  if data == -1 and fsdp > 0 and n % fsdp == 0:
    data = n // fsdp
  if data < 1 or fsdp < 1 or data * fsdp != n:
    raise ValueError(
      f"parallel.mesh {dict(shape)} does not fit {n} devices: data x fsdp must be "
      f"{n} (set one of them to -1 for the rest)."
    )
  return data, fsdp


def fsdp_spec(
  shape: Sequence[int], num_shards: int, min_size: int, axis_name: str = DATA_AXIS
) -> P:
  """The PartitionSpec that splits the largest dimension of `shape` divisible by `num_shards`
  over the mesh axis `axis_name`."""
  if num_shards == 1 or math.prod(shape) < min_size:
    return P()
  for axis in sorted(range(len(shape)), key=lambda a: -shape[a]):
    if shape[axis] % num_shards == 0:
      return P(*([None] * axis + [axis_name]))
  return P()


def batch_spec(mesh: Mesh) -> P:
  """Batches split their leading axis over every axis of `mesh`."""
  names = tuple(mesh.axis_names)
  return P(names[0] if len(names) == 1 else names)


def state_shardings(
  abstract_state: Any, mesh: Mesh, *, fsdp: bool = False, fsdp_min_size: int = 2**12
) -> Any:
  """NamedShardings for every leaf of `abstract_state`: replicated, or FSDP-split (see module notes).

  Args:
    abstract_state: a pytree of arrays or ShapeDtypeStructs.
    mesh: the mesh (axis "data", or "data" and "fsdp").
    fsdp: split large arrays over "data" instead of replicating them (one-axis mesh; a mesh with
      an "fsdp" axis always splits them over it).
    fsdp_min_size: arrays with fewer elements stay replicated.

  Returns:
    A pytree of `NamedSharding`s of the same structure.

  Example:
    >>> shardings = state_shardings(jax.eval_shape(init, key), mesh, fsdp=True)
  """
  axis = FSDP_AXIS if FSDP_AXIS in mesh.axis_names else DATA_AXIS
  split = fsdp or axis == FSDP_AXIS

  def one(leaf):
    spec = fsdp_spec(leaf.shape, mesh.shape[axis], fsdp_min_size, axis) if split else P()
    return NamedSharding(mesh, spec)

  return jax.tree.map(one, abstract_state)


def _sync_hosts(name: str) -> None:
  """Waits until every process reaches `name` (the coordinator's barrier, not a device collective)."""
  from jax._src import distributed as jax_distributed  # pylint: disable=import-outside-toplevel

  jax_distributed.global_state.client.wait_at_barrier(name, 600_000)


def put_global(batch: Any, sharding: jax.sharding.Sharding) -> Any:
  """Global arrays of `batch` with `sharding`; numpy input must be the whole global batch on every host."""

  def one(x):
    if isinstance(x, jax.Array) and x.sharding == sharding:
      return x
    if isinstance(x, jax.Array) and x.is_fully_addressable:
      return jax.device_put(x, sharding)
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

  return jax.tree.map(one, batch)


class JitEngine:
  """The steps compiled with `jax.jit` and `NamedSharding`s on a mesh (see the module notes).

  Args:
    model: the flax module (without `bn_axis_name`: batch statistics are global under jit).
    task: the task.
    tx: the optimiser.
    schedule: its learning-rate schedule.
    mesh: the device mesh (`make_mesh`): axis "data", or "data" and "fsdp".
    fsdp: shard parameters and optimiser state over "data" (a mesh with "fsdp" always shards
      them over that axis).
    fsdp_min_size: see `state_shardings`.
    ema_decay: > 0 keeps EMA parameters.
    grad_accum_steps: micro-batches per step (`jaxres.train.steps.make_train_step`).
    keep_statistics: see `make_train_step` (frozen BatchNorm statistics).

  Example:
    >>> engine = JitEngine(model, task, tx, schedule, mesh=make_mesh(), fsdp=True)
    >>> state = engine.init(jax.random.key(0), (8, 8, 32, 32, 3))
    >>> state, metrics = engine.train_step(state, engine.put_batch(batch), jax.random.key(1))
  """

  def __init__(
    self,
    model,
    task,
    tx,
    schedule,
    *,
    mesh: Mesh,
    fsdp: bool = False,
    fsdp_min_size: int = 2**12,
    ema_decay: float = 0.0,
    grad_accum_steps: int = 1,
    keep_statistics=None,
  ):
    self.model, self.task, self.tx, self.mesh = model, task, tx, mesh
    self.fsdp, self.fsdp_min_size, self.ema = fsdp, fsdp_min_size, ema_decay > 0
    self.replicated = NamedSharding(mesh, P())
    self.batch_sharding = NamedSharding(mesh, batch_spec(mesh))
    self._train = make_train_step(
      model,
      task,
      tx,
      schedule,
      ema_decay=ema_decay,
      grad_accum_steps=grad_accum_steps,
      keep_statistics=keep_statistics,
    )
    self._eval = make_eval_step(model, task)
    self._compiled: dict[tuple, Any] = {}
    self._started: set[tuple] = set()

  @property
  def num_devices(self) -> int:
    return self.mesh.size

  def _init_fn(self, input_shape):
    return lambda rng: init_state(self.model, self.tx, rng, input_shape, ema=self.ema)

  def abstract_state(self, input_shape) -> TrainState:
    shapes = jax.eval_shape(self._init_fn(input_shape), jax.random.key(0))
    shardings = self.state_shardings(shapes)
    return jax.tree.map(
      lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh), shapes, shardings
    )

  def state_shardings(self, abstract_state) -> Any:
    return state_shardings(
      abstract_state, self.mesh, fsdp=self.fsdp, fsdp_min_size=self.fsdp_min_size
    )

  def init(self, rng: jax.Array, input_shape) -> TrainState:
    shardings = self.state_shardings(jax.eval_shape(self._init_fn(input_shape), rng))
    return jax.jit(self._init_fn(input_shape), out_shardings=shardings)(rng)

  def _compile(self, kind: str, state):
    shardings = jax.tree.map(lambda x: x.sharding, state)
    key = (kind, jax.tree.structure(state))
    if key not in self._compiled:
      if kind == "train":
        self._compiled[key] = jax.jit(
          self._train,
          donate_argnums=(0,),
          in_shardings=(shardings, self.batch_sharding, self.replicated),
          out_shardings=(shardings, self.replicated),
        )
      else:
        self._compiled[key] = jax.jit(
          self._eval, in_shardings=(shardings, self.batch_sharding), out_shardings=self.replicated
        )
    return self._compiled[key]

  def _run(self, kind: str, state, *args):
    step = self._compile(kind, state)
    key = (kind, jax.tree.structure(state))
    if jax.process_count() > 1 and key not in self._started:
      # Hosts compile at different speeds (one may hit the compilation cache, another not); the
      # first collective of a new program sets up its communicator with a fixed 30 s deadline
      # on CPU (gloo). Compile first, meet, then run.
      step.lower(state, *args).compile()
      _sync_hosts(f"jaxres_compiled_{kind}_{len(self._started)}")
      self._started.add(key)
    return step(state, *args)

  def train_step(self, state, batch, rng):
    return self._run("train", state, batch, rng)

  def eval_step(self, state, batch):
    return self._run("eval", state, batch)

  def put_batch(self, batch):
    return put_global(batch, self.batch_sharding)

  def to_global(self, state):
    return state

  def from_global(self, state):
    return state


class PmapEngine:
  """The same steps under `jax.pmap` over the local devices (for users of the pmap style).

  The state is replicated, with a leading device axis; batches are split into per-device slices.
  The model must be built with `bn_axis_name=PMAP_AXIS` so BatchNorm averages its statistics
  over devices (the loop's `build` does this). Single-host only.

  Example:
    >>> model = jaxres.models.get("r3d_tiny", bn_axis_name=PMAP_AXIS)
    >>> engine = PmapEngine(model, task, tx, schedule)
  """

  def __init__(
    self,
    model,
    task,
    tx,
    schedule,
    *,
    devices=None,
    ema_decay: float = 0.0,
    grad_accum_steps: int = 1,
    keep_statistics=None,
  ):
    if jax.process_count() > 1:
      raise NotImplementedError("The pmap engine is single-host; use parallel.mode='jit'.")
    self.model, self.task, self.tx = model, task, tx
    self.devices = list(devices or jax.local_devices())
    self.ema = ema_decay > 0
    # Arrays with a leading device axis, one slice per device, are what pmap takes as its own.
    self._stacked = NamedSharding(Mesh(np.array(self.devices), (PMAP_AXIS,)), P(PMAP_AXIS))
    self._train = jax.pmap(
      make_train_step(
        model,
        task,
        tx,
        schedule,
        ema_decay=ema_decay,
        axis_name=PMAP_AXIS,
        grad_accum_steps=grad_accum_steps,
        keep_statistics=keep_statistics,
      ),
      axis_name=PMAP_AXIS,
      in_axes=(0, 0, None),
      donate_argnums=(0,),
      devices=self.devices,
    )
    self._eval = jax.pmap(make_eval_step(model, task), axis_name=PMAP_AXIS, devices=self.devices)

  @property
  def num_devices(self) -> int:
    return len(self.devices)

  def _init_fn(self, input_shape):
    return lambda rng: init_state(self.model, self.tx, rng, input_shape, ema=self.ema)

  def abstract_state(self, input_shape) -> TrainState:
    shapes = jax.eval_shape(self._init_fn(input_shape), jax.random.key(0))
    sharding = jax.sharding.SingleDeviceSharding(self.devices[0])
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes)

  def init(self, rng, input_shape):
    # Every device runs the same initialisation, so nothing is built on one device and copied.
    init = jax.pmap(
      lambda _, k: self._init_fn(input_shape)(k), in_axes=(0, None), devices=self.devices
    )
    return init(np.arange(self.num_devices), rng)

  def train_step(self, state, batch, rng):
    state, metrics = self._train(state, batch, rng)
    return state, jax.tree.map(lambda m: m[0], metrics)

  def eval_step(self, state, batch):
    values = self._eval(state, batch)
    return jax.tree.map(lambda v: v.reshape((-1,) + v.shape[2:]), values)

  def put_batch(self, batch):
    n = self.num_devices

    def one(x):
      x = np.asarray(x)
      if x.shape[0] % n:
        raise ValueError(f"Batch size {x.shape[0]} is not divisible by {n} devices.")
      return jax.device_put(x.reshape((n, -1) + x.shape[1:]), self._stacked)

    return jax.tree.map(one, batch)

  def to_global(self, state):
    return jax.tree.map(lambda x: x[0], state)

  def from_global(self, state):
    n = self.num_devices
    return jax.tree.map(
      lambda x: jax.device_put(np.broadcast_to(np.asarray(x)[None], (n,) + x.shape), self._stacked),
      state,
    )
