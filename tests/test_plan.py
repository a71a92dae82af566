"""`jaxres plan`: per-device memory of the train step, replicated against FSDP, on 8 fake devices."""

import jax
import jax.numpy as jnp
import pytest

from jaxres.commands import plan as plan_command
from jaxres.train import build_model, load_config
from jaxres.train.plan import format_bytes, parse_bytes, plan_memory

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
