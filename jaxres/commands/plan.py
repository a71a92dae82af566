"""`jaxres plan`: memory per device of a config's train step on N devices, before launching it.

  jaxres plan [--config NAME|FILE.py] [--devices N] [--device-memory 16GiB] [--config.key=value ...]

Plans for N devices in the replicated and FSDP layouts (and the config's two-axis parallel.mesh,
if set) and prints per device: parameters, optimiser state, other state (BatchNorm statistics,
EMA), the batch share and the compiler's temporaries, and whether the total fits --device-memory.
State and batch are exact, closed-form for any N (a million devices answer in seconds);
temporaries come from compiling (nothing runs) the same per-device step on min(N, 8) fake CPU
devices, the CPU compiler's, an estimate for accelerators. Size a pod run by raising global_batch_size (or
grad_accum_steps, model.remat) until the layout you want just fits.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from jaxres.commands.common import report
from jaxres.commands.help import HelpFormatter
from jaxres.train.config import split_overrides

_DEVICE_FLAG = "--xla_force_host_platform_device_count"
# As jaxres.train.plan.COMPILE_DEVICES, which imports JAX (this must be known before it starts).
COMPILE_DEVICES = 8


def _fake_cpu_env(num_devices: int) -> dict[str, str]:
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith(_DEVICE_FLAG)]
  env["XLA_FLAGS"] = " ".join(flags + [f"{_DEVICE_FLAG}={num_devices}"])
  return env


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(
    prog="jaxres plan", description=__doc__, formatter_class=HelpFormatter
  )
  parser.add_argument(
    "--config",
    default=None,
    metavar="NAME|FILE",
    help="a shipped config or a Python file with get_config() (default: demo)",
  )
  parser.add_argument("--devices", type=int, default=8, help="devices to plan for (default: 8)")
  parser.add_argument(
    "--device-memory",
    default=None,
    metavar="SIZE",
    help="memory per device to check against, e.g. 16GiB, 80GB (None: print "
    "the sizes without a verdict)",
  )
  parser.add_argument("--verbose", action="store_true", help="show the traceback of an error")
  args, overrides = split_overrides(argv)
  args = parser.parse_args(args)
  if args.devices < 1:
    return report(
      "jaxres plan", ValueError(f"--devices must be >= 1, got {args.devices}."), args.verbose, 2
    )

  # The step compiles on at most COMPILE_DEVICES fake devices, whatever --devices says.
  compile_on = min(args.devices, COMPILE_DEVICES)
  if "jax" not in sys.modules:  # the fake devices must be asked for before JAX starts
    os.environ.update(_fake_cpu_env(compile_on))
  import jax

  if jax.default_backend() != "cpu" or len(jax.devices()) < compile_on:
    # JAX already started with other devices (e.g. called from Python): plan in a fresh process.
    return subprocess.call(
      [sys.executable, "-m", "jaxres.cli", "plan", *argv], env=_fake_cpu_env(compile_on)
    )

  from jaxres.train.config import load_config
  from jaxres.train.plan import format_bytes, format_plans, parse_bytes, plan_memory

  try:
    budget = parse_bytes(args.device_memory) if args.device_memory else None
    config = load_config(args.config, overrides)
    plans = plan_memory(config, jax.devices()[:compile_on], num_devices=args.devices)
  except Exception as e:  # pylint: disable=broad-except  # a config or batch that does not fit
    return report("jaxres plan", e, args.verbose, 2)
  per_device = config.global_batch_size // args.devices
  print(
    f"{config.model.name} train step, global batch {config.global_batch_size} "
    f"({per_device} per device, grad_accum_steps {config.grad_accum_steps}, "
    f"remat {config.model.get('remat', 'none')}), per device of {args.devices}:"
  )
  print(format_plans(plans, budget))
  if budget is not None and not any(p.total_bytes <= budget for p in plans):
    best = min(plans, key=lambda p: p.total_bytes)
    print(
      f"Nothing fits {format_bytes(budget)}: the smallest is {best.layout} at "
      f"{format_bytes(best.total_bytes)}; lower global_batch_size, or raise grad_accum_steps, "
      "or set model.remat=block."
    )
    return 1
  return 0
