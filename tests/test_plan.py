"""`jaxres plan`: per-device memory of the train step, replicated against FSDP, on 8 fake devices."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import pytest

from jaxres.commands import plan as plan_command
from jaxres.train import build_model, load_config
from jaxres.train import plan as plan_module
from jaxres.train.build import build_engine
from jaxres.train.plan import abstract_batch, format_bytes, parse_bytes, plan_memory

TINY = [
  "--config.model.conv_lowering=native",
  "--config.data.num_frames=4",
  "--config.data.crop_size=16",
  "--config.global_batch_size=8",
  "--config.parallel.fsdp_min_size=1",
]


def test_fsdp_keeps_an_eighth_of_the_state_per_device_on_eight():
  config = load_config("demo", TINY)
  plans = {p.layout: p for p in plan_memory(config, jax.devices()[:8])}
  replicated, fsdp = plans["replicated"], plans["fsdp"]
  params = sum(
    x.size * x.dtype.itemsize
    for x in jax.tree.leaves(
      jax.eval_shape(
        lambda: build_model(config).init(
          jax.random.key(0), jnp.zeros((1, 4, 16, 16, 3)), train=False
        )["params"]
      )
    )
  )
  assert replicated.params_bytes == params  # every parameter on every device
  assert 0 <= replicated.opt_state_bytes - params <= 16  # SGD momentum per parameter, a counter
  ratio = (fsdp.params_bytes + fsdp.opt_state_bytes) / (
    replicated.params_bytes + replicated.opt_state_bytes
  )
  assert 1 / 8 <= ratio < 1 / 8 + 0.01, ratio  # a few arrays no dimension of which divides by 8
  assert fsdp.batch_bytes == replicated.batch_bytes == 8 // 8 * 4 * 16 * 16 * 3 * 4 + 4
  assert replicated.temp_bytes > 0 and fsdp.total_bytes < replicated.total_bytes


def test_plan_command_prints_both_layouts_and_the_budget(capsys):
  assert (
    plan_command.main(["--config", "demo", "--devices", "8", "--device-memory", "1GiB", *TINY]) == 0
  )
  out = capsys.readouterr().out.splitlines()
  assert out[0] == (
    "r3d_tiny train step, global batch 8 (1 per device, grad_accum_steps 1, "
    "remat none), per device of 8:"
  )
  assert out[1].split()[:3] == ["layout", "params", "opt"] and out[1].endswith("fits 1.0 GiB")
  assert out[2].startswith("replicated") and out[2].endswith("yes")
  assert out[3].startswith("fsdp") and out[3].endswith("yes")
  assert (
    plan_command.main(["--config", "demo", "--devices", "8", "--device-memory", "100KiB", *TINY])
    == 1
  )
  out = capsys.readouterr().out
  assert "NO" in out and "Nothing fits 100.0 KiB: the smallest is fsdp" in out


def test_memory_sizes_read_and_print():
  assert parse_bytes("16GiB") == 16 * 2**30 and parse_bytes("80GB") == 80 * 10**9
  assert parse_bytes("1024") == 1024 and format_bytes(1536) == "1.5 KiB"
  with pytest.raises(ValueError, match="Cannot read a memory size from '16 gigs'"):
    parse_bytes("16 gigs")


def _compiled_on_every_device(config, devices, fsdp, mesh):
  """The plan as it was made before it was closed-form: the step compiled on every one of
  `devices`, each array's bytes summed per device over its sharding's device set."""
  c = ml_collections.ConfigDict(config.to_dict())
  c.parallel.mode, c.parallel.num_devices, c.parallel.fsdp, c.parallel.mesh = "jit", -1, fsdp, mesh
  engine, _, task = build_engine(c, devices=devices)
  batch = abstract_batch(c, engine, task)
  shape = jax.eval_shape(lambda b: task.model_input(task.prepare(b, None)), batch).shape
  state = engine.abstract_state(tuple(shape))
  step = engine._compile("train", state)  # pylint: disable=protected-access
  temp = step.lower(state, batch, jax.random.key(0)).compile().memory_analysis().temp_size_in_bytes

  def device_bytes(tree):
    per_device = {}
    for leaf in jax.tree.leaves(tree):
      size = math.prod(leaf.sharding.shard_shape(leaf.shape)) * jnp.dtype(leaf.dtype).itemsize
      for device in leaf.sharding.device_set:
        per_device[device] = per_device.get(device, 0) + size
    return max(per_device.values(), default=0)

  other = state.replace(params=None, opt_state=None)
  return (
    device_bytes(state.params),
    device_bytes(state.opt_state),
    device_bytes(other),
    device_bytes(batch),
    int(temp),
  )


@pytest.mark.parametrize(
  "num_devices",
  [pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow), 8],
)
def test_closed_form_plan_equals_compiling_on_every_device(num_devices):
  mesh = ["--config.parallel.mesh.fsdp=2"] if num_devices > 1 else []
  config = load_config("demo", TINY + mesh)
  devices = jax.devices()[:num_devices]
  plans = plan_memory(config, devices)
  layouts = [
    ("replicated", False, {"data": -1, "fsdp": 1}),
    ("fsdp", True, {"data": -1, "fsdp": 1}),
  ]
  if mesh:
    layouts.append(("mesh -1 x 2", False, {"data": -1, "fsdp": 2}))
  assert [p.layout for p in plans] == [name for name, _, _ in layouts]
  for plan, (name, fsdp, shape) in zip(plans, layouts):
    got = (p := plan).params_bytes, p.opt_state_bytes, p.other_state_bytes, p.batch_bytes
    want = _compiled_on_every_device(config, devices, fsdp, shape)
    assert got + (p.temp_bytes,) == want, name
    assert p.num_devices == num_devices


def test_a_hundred_thousand_devices_plan_without_a_device_each():
  n = 100_000
  config = load_config(
    "demo", TINY + [f"--config.global_batch_size={n}", "--config.parallel.mesh.fsdp=8"]
  )
  plans = {p.layout: p for p in plan_memory(config, num_devices=n)}
  assert set(plans) == {"replicated", "fsdp", "mesh -1 x 8"}
  small = {p.layout: p for p in plan_memory(load_config("demo", TINY), jax.devices()[:8])}
  replicated, fsdp, mesh = plans["replicated"], plans["fsdp"], plans["mesh -1 x 8"]
  # One clip per device, as 8 devices with a batch of 8: the same batch and temporaries.
  assert replicated.batch_bytes == small["replicated"].batch_bytes == 4 * 16 * 16 * 3 * 4 + 4
  assert replicated.temp_bytes == small["replicated"].temp_bytes
  assert replicated.params_bytes == small["replicated"].params_bytes  # the whole model each
  # No dimension of r3d_tiny divides by 100,000: FSDP over all of them keeps every array whole;
  # the 8-wide FSDP axis of the 12,500 x 8 mesh keeps an eighth, as FSDP on 8 devices does.
  assert fsdp.params_bytes == replicated.params_bytes
  assert mesh.params_bytes == small["fsdp"].params_bytes < replicated.params_bytes / 7
  assert mesh.opt_state_bytes == small["fsdp"].opt_state_bytes
  with pytest.raises(ValueError, match="global_batch_size=8 does not split over 1000000 devices"):
    plan_memory(load_config("demo", TINY), num_devices=10**6)


def test_plan_command_answers_for_a_million_devices(capsys):
  assert plan_command.COMPILE_DEVICES == plan_module.COMPILE_DEVICES
  n = 10**6
  args = ["--config", "demo", "--devices", str(n), *TINY, f"--config.global_batch_size={n}"]
  assert plan_command.main(args) == 0
  out = capsys.readouterr().out.splitlines()
  assert out[0].endswith(f"(1 per device, grad_accum_steps 1, remat none), per device of {n}:")
  assert [line.split()[0] for line in out[2:]] == ["replicated", "fsdp"]
