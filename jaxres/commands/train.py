"""`jaxres train`: train a config (default: the demo on generated videos) in a work directory.

  jaxres train [--config NAME|FILE.py] [--workdir DIR] [--config.key=value ...]

Resumes from the latest checkpoint in DIR. Multi-host: pass --coordinator-address/--num-processes/
--process-id on every host (or set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID;
SLURM, Open MPI and TPU pods are detected by themselves).
"""

from __future__ import annotations

import argparse
import json
import os

from jaxres.atomic_files import check_output
from jaxres.commands.common import add_common_arguments, report, setup
from jaxres.commands.help import HelpFormatter
from jaxres.train.config import split_overrides


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(
    prog="jaxres train",
    description=__doc__,
    formatter_class=HelpFormatter,
    epilog="Any --config.key=value sets a config field; misspelt keys are errors.",
  )
  add_common_arguments(parser)
  args, overrides = split_overrides(argv)
  args = parser.parse_args(args)
  try:
    config, workdir = setup(args, overrides)
    check_output(workdir, kind="folder", option="--workdir")  # a file or read-only: one line
  except (KeyError, ValueError, FileNotFoundError) as e:
    return report("jaxres train", e, args.verbose, 2)

  import jax

  from jaxres.train.loop import NonFiniteLossError, train_and_evaluate
  from jaxres.train.run import RunLockedError

  if jax.process_index() == 0:
    print(
      f"Training {config.model.name} on {jax.device_count()} {jax.default_backend()} device(s) "
      f"({jax.process_count()} process(es)) in {workdir}",
      flush=True,
    )
  try:
    summary = train_and_evaluate(config, workdir)
  except NonFiniteLossError as e:
    return report("jaxres train", e, args.verbose, 1)
  except (ValueError, FileNotFoundError, RunLockedError) as e:  # config, data, devices, checkpoints
    return report("jaxres train", e, args.verbose, 2)
  except Exception as e:  # pylint: disable=broad-except  # anything else: still one line
    return report("jaxres train", e, args.verbose, 1)
  if jax.process_index() == 0 and summary["already_finished"]:
    kept = os.path.isfile(os.path.join(workdir, "summary.json"))  # none where nothing ever ran
    print(
      f"{workdir} already finished at step {summary['step']}"
      + ("; its summary.json is kept" if kept else "; nothing to train")
      + " (raise --config.num_train_steps to train on)."
    )
  elif jax.process_index() == 0:
    ev = summary["eval"]
    shown = ", ".join(f"{k} {v:.4f}" for k, v in ev.items() if not k.startswith("num_"))
    state = "stopped early at" if summary["stopped_early"] else "finished at"
    print(f"{state} step {summary['step']} in {summary['wall_time_s']:.1f} s; eval: {shown or '-'}")
    with open(os.path.join(workdir, "summary.json"), "w") as f:
      json.dump(summary, f, indent=2, default=float)
    print("\n".join(closing_lines(summary, config, workdir, args.config or "demo")))
  return 0


def closing_lines(summary: dict, config, workdir: str, config_name: str = "demo") -> list[str]:
  """What a user reads last: the result against its baseline, the run folder, how to look at it.

  Classification reports accuracy against chance (1 / classes); super-resolution the PSNR-Y gain
  over bicubic on the eval crops the run scored, then the commands that measure whole held-out
  frames (`jaxres evaluate`) and upscale a video (`jaxres upscale`). Both name the demo data's
  folder when they trained on it, the run folder, its TensorBoard and curve files and the other
  files the run wrote there. Every command printed runs as it is.

  Args:
    summary: `train_and_evaluate`'s summary (`eval` metrics, `plot`).
    config: the run's config.
    workdir: the run folder.
    config_name: the `--config` the run was given (for `jaxres data path`).

  Returns:
    The lines, without newlines.

  Example:
    >>> closing_lines({"eval": {"accuracy": 0.96875}}, config, "runs/demo")[0]
    'eval accuracy 0.9688 (chance 0.25)'
  """
  ev, lines = summary.get("eval", {}), []
  data = config.get("data") if hasattr(config, "get") else getattr(config, "data", None)
  super_resolution = "psnr_y" in ev and "psnr_y_bicubic" in ev
  if "accuracy" in ev:
    num_classes = config.model.get("num_classes", 0)
    chance = f" (chance {1 / num_classes:.3g})" if num_classes else ""
    lines.append(f"eval accuracy {ev['accuracy']:.4f}{chance}")
  elif super_resolution:
    crops = f" {data.crop_size}x{data.crop_size}" if data is not None and data.crop_size else ""
    lines.append(
      f"eval PSNR-Y {ev['psnr_y']:.2f} dB, bicubic {ev['psnr_y_bicubic']:.2f} dB: "
      f"gain {ev['psnr_y'] - ev['psnr_y_bicubic']:+.2f} dB over bicubic on the{crops} eval crops"
    )
  demo_folder = _demo_folder(data)
  if demo_folder:
    lines.append(f"data: {demo_folder} (jaxres data path {config_name})")
  lines.append(f"run folder: {workdir}")
  if config.tensorboard:
    lines.append(f"  tensorboard --logdir {os.path.join(workdir, 'tensorboard')}")
  if summary.get("plot"):
    lines.append(f"  curves: {summary['plot']}")
  written = [
    name
    for name in ("config.json", "classes.txt", "metrics.jsonl", "summary.json", "checkpoints/")
    if os.path.exists(os.path.join(workdir, name))
  ]
  if written:
    lines.append(f"  files: {', '.join(written)}")
  if super_resolution:
    video = _held_out_video(data, demo_folder)
    if video:
      name = os.path.splitext(os.path.basename(video))[0]
      upscaled = os.path.join(workdir, f"{name}_upscaled.mp4")
    else:
      video, upscaled = "IN.mp4", "OUT.mp4"
    lines.append(f"whole held-out frames: jaxres evaluate --checkpoint {workdir}")
    lines.append(f"upscale a video: jaxres upscale {video} {upscaled} --checkpoint {workdir}")
  return lines


def _demo_folder(data) -> str:
  """The demo data's folder when `data` reads the built-in demo, else ""."""
  if data is None or data.get("source") != "demo":
    return ""
  from jaxres.data import catalog  # pylint: disable=import-outside-toplevel

  return catalog.demo_root(data)


def _held_out_video(data, demo_folder: str) -> str:
  """The first video of the demo's eval list (a real file to upscale), or "" when unknown."""
  from jaxres.data.split_lists import EVAL_LIST  # pylint: disable=import-outside-toplevel

  path = os.path.join(demo_folder, EVAL_LIST) if demo_folder else ""
  if not path or not os.path.isfile(path):
    return ""
  with open(path) as f:
    first = f.readline().split()
  return os.path.join(demo_folder, first[0]) if first else ""
