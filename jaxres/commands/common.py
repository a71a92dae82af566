"""What several commands share: the run arguments, one-line error reports and the run set-up.

Commands import these from here, never from one another, so each command module stays
independent of the others (an import-linter `independence` contract in `.importlinter`).

Example:
  >>> parser = argparse.ArgumentParser(prog="jaxres eval")
  >>> add_common_arguments(parser)
  >>> report("jaxres eval", FileNotFoundError("No checkpoint in runs/x."), verbose=False, code=1)
  1
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
  """Adds the options of a command that runs a config in a run folder (`train`, `eval`).

  Args:
    parser: the command's parser; gets --config, --workdir, the multi-host options and --verbose.
  """
  from jaxres import configs  # pylint: disable=import-outside-toplevel

  parser.add_argument(
    "--config",
    default=None,
    metavar="NAME|FILE",
    help="a shipped config (" + ", ".join(configs.names()) + ") or a Python file with "
    "get_config() (None: demo)",
  )
  parser.add_argument("--workdir", default=None, help="run folder (None: runs/<config name>)")
  parser.add_argument(
    "--coordinator-address",
    default=None,
    help="host:port of process 0 (None: detected, or one process)",
  )
  parser.add_argument(
    "--num-processes",
    type=int,
    default=None,
    help="processes (hosts) in the job (None: detected, or 1)",
  )
  parser.add_argument(
    "--process-id", type=int, default=None, help="this process's index (None: detected, or 0)"
  )
  add_verbose_argument(parser)


def add_verbose_argument(parser: argparse.ArgumentParser) -> None:
  """Adds --verbose: TensorFlow's start-up lines (`jaxres.cli`) and tracebacks for `report`."""
  parser.add_argument(
    "--verbose",
    action="store_true",
    help="show TensorFlow's start-up lines and an error's traceback (not just one line)",
  )


def check_option(option: str, value, ok: bool, allowed: str) -> None:
  """Raises ValueError naming a command-line option whose value is out of its range.

  Args:
    option: the option as typed (`--frames`).
    value: its value.
    ok: whether the value is allowed.
    allowed: the allowed range, said to the user (`">= 1"`).

  Raises:
    ValueError: `--frames must be >= 1, got 0.` when not `ok`.

  Example:
    >>> check_option("--frames", args.frames, args.frames >= 1, ">= 1")
  """
  if not ok:
    raise ValueError(f"{option} must be {allowed}, got {value}.")


def report(prog: str, error: BaseException, verbose: bool, code: int) -> int:
  """Prints `error` as one line (or its traceback with --verbose); returns the exit code.

  What jaxres raises on purpose (ValueError, OSError, KeyError, ArithmeticError, a locked run)
  already says what to do, so only its message is shown; anything else also names its type.

  Args:
    prog: the command, printed first (`jaxres eval`).
    error: what went wrong.
    verbose: print the traceback before the line.
    code: the exit code to return.

  Returns:
    `code`.
  """
  if verbose:
    traceback.print_exception(error)
  known_types = (ValueError, OSError, KeyError, ArithmeticError)
  run = sys.modules.get("jaxres.train.run")  # loaded if the error is its RunLockedError; the
  if run is not None:  # core install (`jaxres forward`) lacks what it imports
    known_types += (run.RunLockedError,)
  known = isinstance(error, known_types)
  text = (error.args[0] if isinstance(error, KeyError) and error.args else str(error)).strip()
  text = text.splitlines()[0] if text else ""
  if not known or not text:
    text = f"{type(error).__name__}: {text}" + ("" if verbose else " (--verbose shows where)")
  print(f"{prog}: {text}", file=sys.stderr)
  return code


def setup(args: argparse.Namespace, overrides: list[str]):
  """Starts multi-host JAX if asked, then loads the config; returns `(config, workdir)`.

  Args:
    args: parsed `add_common_arguments` options.
    overrides: the `--config.key=value` arguments.

  Returns:
    The loaded config and the run folder (`--workdir`, else `runs/<config name>`).
  """
  processes, process = args.num_processes, args.process_id
  check_option("--num-processes", processes, processes is None or processes >= 1, ">= 1")
  check_option(
    "--process-id",
    process,
    process is None or 0 <= process < (processes or process + 1),
    f"in 0..{processes - 1} (one less than --num-processes)" if processes else ">= 0",
  )
  from jaxres.train import distributed  # pylint: disable=import-outside-toplevel

  distributed.initialize(args.coordinator_address, args.num_processes, args.process_id)
  from jaxres.train.config import load_config  # pylint: disable=import-outside-toplevel

  config = load_config(args.config, overrides)
  name = os.path.splitext(os.path.basename(args.config or "demo"))[0]
  return config, args.workdir or os.path.join("runs", name)
