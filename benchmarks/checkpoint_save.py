"""Saving a replicated train state on several CPU devices: orbax's replica-parallel default
against whole arrays (what `jaxres.train.Checkpointer` uses on CPU), side by side in one process.

Builds the `--config`'s train state on `--devices` fake CPU devices (replicated, as without FSDP),
then saves it `--saves` times with orbax's default `jax.Array` handler and `--saves` times with
replica-parallel saving off. The first save with the default pays one compiled slice per replica
and array; the later ones still dispatch them. Prints seconds per save, each way.

  XLA_FLAGS=--xla_force_host_platform_device_count=8 python -m benchmarks.checkpoint_save
  python -m benchmarks.checkpoint_save --config demo --saves 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time


def main(argv: list[str] | None = None) -> dict:
  """Runs the benchmark; returns (and with --json writes) seconds per save, each way."""
  parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument("--config", default="demo", help="a shipped config or a config file")
  parser.add_argument("--devices", type=int, default=8, help="fake CPU devices (set before jax)")
  parser.add_argument("--saves", type=int, default=3, help="saves each way")
  parser.add_argument("--shape", default="8,16,64,64,3", help="the model input the state is for")
  parser.add_argument("--json", default=None, help="write the results here")
  args = parser.parse_args(argv)
  if "jax" not in sys.modules:
    flag = f"--xla_force_host_platform_device_count={args.devices}"
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}"

  import jax
  import orbax.checkpoint as ocp

  from jaxres.train import build_engine, checkpoint, load_config

  devices = jax.devices()[: args.devices]
  config = load_config(args.config, [f"--config.parallel.num_devices={len(devices)}"])
  engine, _, _ = build_engine(config, devices=devices)
  state = engine.init(jax.random.key(0), tuple(int(s) for s in args.shape.split(",")))
  default_handler = ocp.type_handlers.get_type_handler(jax.Array)
  results = {"config": args.config, "devices": len(devices), "seconds": {}}
  with tempfile.TemporaryDirectory() as root:
    for way in ("orbax_default", "whole"):
      # The Checkpointer turns replica-parallel saving off (whole, the second way) ...
      saver = checkpoint.Checkpointer(os.path.join(root, way), keep=1, async_save=False)
      if way == "orbax_default":  # ... the first way puts orbax's own handler back
        ocp.type_handlers.register_type_handler(jax.Array, default_handler, override=True)
      seconds = []
      for step in range(args.saves):
        start = time.perf_counter()
        saver.save(step, state)
        seconds.append(time.perf_counter() - start)
      saver.close()
      results["seconds"][way] = seconds
      print(f"{way:>13}: " + ", ".join(f"{s:.2f}" for s in seconds) + " s per save")
  if args.json:
    with open(args.json, "w") as f:
      json.dump(results, f, indent=2)
  return results


if __name__ == "__main__":
  main()
