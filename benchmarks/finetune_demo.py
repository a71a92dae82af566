"""The fine-tuning demo's figures: transfer from the motion demo to the diagonal directions.

For each seed and convolution lowering: trains the `demo` config (the source), then
`demo_finetune` three ways at the same step count: from scratch, from the source
(`init_from`), and from the source with only the new classifier trained. Prints and writes the
final eval accuracies (`results/finetune_demo.json`).

Example:
  $ .venv/bin/python benchmarks/finetune_demo.py --seeds 0,1,2 --lowerings auto,native
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "finetune_demo.json")


def run_one(seed: int, lowering: str, root: str) -> dict[str, float]:
  """The eval accuracy of each variant for one seed and lowering."""
  from jaxres.train import load_config, train_and_evaluate

  quiet = [
    f"--config.seed={seed}",
    f"--config.model.conv_lowering={lowering}",
    "--config.progress_bar=False",
    "--config.plot=False",
    "--config.tensorboard=False",
  ]
  source = os.path.join(root, f"demo-{seed}-{lowering}")
  if not os.path.exists(os.path.join(source, "summary.json")):
    summary = train_and_evaluate(load_config("demo", quiet), source)
    with open(os.path.join(source, "summary.json"), "w") as f:
      json.dump({"eval": summary["eval"]}, f)
  with open(os.path.join(source, "summary.json")) as f:
    figures = {"source_demo": json.load(f)["eval"]["accuracy"]}
  variants = {
    "scratch": [],
    "finetuned": [f"--config.init_from={source}"],
    "head_only": [
      f"--config.init_from={source}",
      '--config.optimizer.trainable=("^fc/",)',
      "--config.optimizer.learning_rate=0.05",
    ],
  }
  for name, extra in variants.items():
    workdir = os.path.join(root, f"{name}-{seed}-{lowering}")
    summary = train_and_evaluate(load_config("demo_finetune", quiet + extra), workdir)
    figures[name] = float(summary["eval"]["accuracy"])
  return figures


def main() -> None:
  parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument("--seeds", default="0", help="comma-separated seeds")
  parser.add_argument("--lowerings", default="auto", help="comma-separated conv lowerings")
  parser.add_argument("--root", default=None, help="run folders (default: a temporary folder)")
  args = parser.parse_args()
  root = args.root or tempfile.mkdtemp(prefix="jaxres-finetune-")
  rows = []
  for lowering in args.lowerings.split(","):
    for seed in (int(s) for s in args.seeds.split(",")):
      figures = run_one(seed, lowering, root)
      rows.append({"seed": seed, "lowering": lowering, **figures})
      print(json.dumps(rows[-1]), flush=True)
  os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
  with open(RESULTS, "w") as f:
    json.dump(rows, f, indent=1)
  print(f"wrote {RESULTS}")


if __name__ == "__main__":
  main()
