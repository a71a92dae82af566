"""The collectives of the compiled train step on 8 fake CPU devices, read from its HLO text: what a
pod will run between devices.

- Data parallel: the gradients (every parameter's worth) are summed by all-reduce; nothing is
  all-gathered (no activation or parameter moves whole between devices).
- FSDP: every sharded parameter is all-gathered to its full size where it is used, and its
  gradient reduced and cut back to the shard. TPU and GPU compile that as a reduce-scatter; XLA's
  CPU backend emits the same as an all-reduce followed by a dynamic-slice to the shard (it runs no
  reduce-scatter-forming pass), so either form is accepted.
- No step has host transfers or callbacks (send/recv, infeed/outfeed, host custom-calls).

The model uses XLA's native convolution, which is what the default lowering ("auto") picks on TPU
and GPU. On CPU "auto" lowers convolutions to reshaped matrix products (im2col, Winograd), and the
SPMD partitioner then all-gathers some activations around those reshapes (r3d_tiny, 4 devices:
10 all-gathers, e.g. the stem's patches), a CPU-only cost that a pod does not pay.
"""

import math
import re

import jax
import jax.numpy as jnp
from tiny_models import TINY_VIDEO_SHAPE as SHAPE
from tiny_models import TinyVideoNet

from jaxres.train import ClassificationTask, JitEngine, create_optimizer, default_config, make_mesh

_RESULT = re.compile(r"= (\([^)]*\)|\S+) (all-reduce|all-gather|reduce-scatter|dynamic-slice)\(")
_ARRAY = re.compile(r"(?:f32|bf16|f16|s32|u32|pred)\[([\d,]*)\]")


def compiled_hlo(engine, shape=SHAPE) -> str:
  """The optimised HLO of `engine`'s train step for a classification batch of `shape`."""
  state = engine.abstract_state(shape)
  batch = {
    "video": jax.ShapeDtypeStruct(shape, jnp.float32),
    "label": jax.ShapeDtypeStruct(shape[:1], jnp.int32),
  }
  return engine._compile("train", state).lower(state, batch, jax.random.key(0)).compile().as_text()


def collectives(hlo: str) -> dict[str, list[tuple[int, ...]]]:
  """The result shapes of each collective (and dynamic-slice) in `hlo`, tuples flattened."""
  found: dict[str, list[tuple[int, ...]]] = {}
  for result, op in _RESULT.findall(hlo):
    shapes = [tuple(int(d) for d in dims.split(",") if d) for dims in _ARRAY.findall(result)]
    found.setdefault(op, []).extend(shapes)
  return found


def assert_no_host_traffic(hlo: str):
  for op in ("send", "recv", "infeed", "outfeed", "send-done", "recv-done"):
    assert not re.search(rf"\s{op}\(", hlo), op
  calls = re.findall(r'custom_call_target="([^"]+)"', hlo)
  assert not [c for c in calls if "callback" in c.lower() or "host" in c.lower()], calls


def _engine(fsdp, mesh=None):
  config = default_config()
  tx, schedule = create_optimizer(config)
  return JitEngine(
    TinyVideoNet(conv_lowering="native"),
    ClassificationTask(),
    tx,
    schedule,
    mesh=mesh or make_mesh(8),
    fsdp=fsdp,
    fsdp_min_size=256,
  )


def _param_shapes(engine):
  return [leaf.shape for leaf in jax.tree.leaves(engine.abstract_state(SHAPE).params)]


def test_data_parallel_all_reduces_gradients_and_gathers_nothing():
  engine = _engine(fsdp=False)
  hlo = compiled_hlo(engine)
  ops = collectives(hlo)
  assert "all-gather" not in ops and "reduce-scatter" not in ops, ops.keys()
  # One sum over devices for every gradient element (plus BatchNorm statistics and metrics).
  reduced = sum(math.prod(s) for s in ops["all-reduce"])
  assert reduced >= sum(math.prod(s) for s in _param_shapes(engine))
  assert_no_host_traffic(hlo)


def test_fsdp_gathers_parameters_and_reduce_scatters_gradients():
  engine = _engine(fsdp=True)
  hlo = compiled_hlo(engine)
  ops = collectives(hlo)
  state = engine.abstract_state(SHAPE)
  sharded = [
    (leaf.shape, leaf.sharding.shard_shape(leaf.shape))
    for leaf in jax.tree.leaves(state.params)
    if leaf.sharding.spec != jax.sharding.PartitionSpec()
  ]
  assert len(sharded) == 4  # conv1, conv2, conv3 and fc kernels (fsdp_min_size=256)
  gathered = [sorted(s) for s in ops["all-gather"]]
  reduced = [sorted(s) for s in ops.get("all-reduce", [])]
  scattered = [sorted(s) for s in ops.get("reduce-scatter", []) + ops.get("dynamic-slice", [])]
  for full, shard in sharded:
    # (layouts may transpose a kernel, e.g. fc's (64, 4) as [4,64]: compare sorted dimensions)
    assert sorted(full) in gathered, (full, ops["all-gather"])
    assert sorted(shard) in scattered, (shard, scattered)
    assert sorted(full) in reduced or "reduce-scatter" in ops, (full, reduced)
  assert_no_host_traffic(hlo)
