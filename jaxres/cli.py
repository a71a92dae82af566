"""The `jaxres` command line: a thin dispatcher to subcommands.

Each subcommand lives in its own module with a `main(argv) -> int` function that parses its own
arguments, so importing the CLI stays cheap and subcommands stay independent.

Example:
  $ jaxres forward --model r3d_18
  $ jaxres convert r3d_18-weights.pth out.msgpack --arch r3d_18
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import tempfile

from jaxres import host_memory

# name -> (module, one-line help). Modules are imported only when their command runs.
COMMANDS: dict[str, tuple[str, str]] = {
  "forward": ("jaxres.commands.forward", "run one model forward on a generated clip and time it"),
  "convert": (
    "jaxres.commands.convert",
    "convert a torchvision or PyTorchVideo state_dict to jaxres variables",
  ),
  "bench": ("jaxres.commands.bench", "benchmark compiled models (throughput, GFLOP/s); --vs torch"),
  "train": ("jaxres.commands.train", "train a config (default: the demo) in a work directory"),
  "eval": ("jaxres.commands.eval", "evaluate a run's checkpoint on its config's eval data"),
  "evaluate": (
    "jaxres.commands.evaluate",
    "PSNR/SSIM of an SR run vs bicubic on whole videos or frame folders (Vid4, REDS4)",
  ),
  "plan": ("jaxres.commands.plan", "memory per device of a config's train step on N devices"),
  "prepare": (
    "jaxres.commands.prepare",
    "decode a video folder once into TFRecord shards for training",
  ),
  "upscale": (
    "jaxres.commands.upscale",
    "super-resolve a video with a trained SR model (chunked, tiled)",
  ),
  "predict": (
    "jaxres.commands.predict",
    "classify video files with a trained model (top-k classes)",
  ),
  "features": (
    "jaxres.commands.features",
    "write per-window features of videos (a model's inner layer) as .npy files",
  ),
  "export": (
    "jaxres.commands.export",
    "export a trained model for serving (jax.export, TF SavedModel)",
  ),
  "weights": ("jaxres.commands.weights", "list, download or import published checkpoints by name"),
  "data": ("jaxres.commands.data", "print the built-in demo data's folder (jaxres data path)"),
}


# Top-level modules of the optional extras (pyproject.toml) -> the extra that installs them.
EXTRA_MODULES = {
  "tensorflow": "video",
  "tensorflow_datasets": "video",
  "orbax": "video",
  "ml_collections": "video",
  "av": "video",
  "imageio": "video",
  "tqdm": "video",
  "matplotlib": "video",
  "torch": "torch",
  "torchvision": "torch",
}


# Commands whose work imports TensorFlow (the input pipeline, video decoding, checkpoints).
TF_COMMANDS = ("train", "eval", "evaluate", "prepare", "upscale", "predict", "features", "export")


def quiet_tensorflow_startup() -> None:
  """Imports TensorFlow with its start-up lines kept out of the output.

  TensorFlow's C++ side prints through absl before any logging is set up (the
  "All log messages before absl::InitializeLog()" warning, oneDNN and CPU-feature notes), which
  `TF_CPP_MIN_LOG_LEVEL` no longer silences; so the import runs with file descriptor 2 pointing at
  a temporary file, which is replayed only if the import fails. `TF_CPP_MIN_LOG_LEVEL=2` (unless
  set) keeps later info and warning lines out too. Does nothing when TensorFlow is not installed
  (or cannot be imported: the command's own import then names what is missing).
  `jaxres COMMAND --verbose` skips all this.

  Example:
    >>> quiet_tensorflow_startup()   # before anything imports tensorflow
  """
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  try:
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
      return
  except ImportError:  # not installed (or hidden): the command's own imports say what to install
    return
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      importlib.import_module("tensorflow")
    except BaseException as error:
      os.dup2(saved, 2)
      captured.seek(0)
      sys.stderr.write(captured.read().decode(errors="replace"))
      if not isinstance(error, ImportError):
        raise
    finally:
      os.dup2(saved, 2)
      os.close(saved)


def _usage() -> str:
  lines = ["usage: jaxres COMMAND [ARGS...]", "", "commands:"]
  width = max(len(name) for name in COMMANDS)
  lines += [f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items()]
  lines += ["", "`jaxres COMMAND --help` describes each command."]
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  """Runs `jaxres COMMAND ARGS...`; returns the process exit code."""
  argv = list(sys.argv[1:] if argv is None else argv)
  if not argv or argv[0] in ("-h", "--help"):
    print(_usage())
    return 0
  name, rest = argv[0], argv[1:]
  if name not in COMMANDS:
    print(f"jaxres: unknown command {name!r}.\n\n{_usage()}", file=sys.stderr)
    return 2
  try:
    if name in TF_COMMANDS and "--verbose" not in rest:
      quiet_tensorflow_startup()
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)
  except ModuleNotFoundError as error:
    extra = EXTRA_MODULES.get((error.name or "").partition(".")[0])
    if extra is None:
      raise
    print(
      f"jaxres {name} needs {error.name!r}, which comes with the {extra!r} extra: "
      f"pip install 'jaxres[{extra}]'.",
      file=sys.stderr,
    )
    return 1


def entry() -> None:
  """The `jaxres` script: restarts retaining freed host memory (`host_memory`), then runs main."""
  host_memory.restart_retaining()
  sys.exit(main())


if __name__ == "__main__":
  entry()
