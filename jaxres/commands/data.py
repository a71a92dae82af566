"""`jaxres data path`: where a config's built-in demo data live (written there first if missing).

  jaxres data path [CONFIG] [--no-write] [--config.key=value ...]

Prints the folder of the generated data a `data.source = "demo"` config trains on: `demo` (the
default; also `demo_2d`) the motion videos, `demo_finetune` the diagonal ones, `sr_edsr_demo` /
`sr_basicvsr_demo` the pans over photographs. The folder is a UCF101-style folder (one subfolder
per class, `trainlist01.txt`, `testlist01.txt`), so it stands in wherever a video folder is asked
for, e.g. `jaxres predict "$(jaxres data path)/up/up_g00.mp4" --checkpoint runs/demo`. Only the
folder is printed on stdout.
"""

from __future__ import annotations

import argparse
import sys

from jaxres.commands.common import add_verbose_argument, report
from jaxres.commands.help import HelpFormatter


def main(argv: list[str]) -> int:
  from jaxres import configs
  from jaxres.train.config import split_overrides

  parser = argparse.ArgumentParser(
    prog="jaxres data", description=__doc__, formatter_class=HelpFormatter
  )
  parser.add_argument("action", choices=("path",), help="what to do: print the data's folder")
  parser.add_argument(
    "config",
    nargs="?",
    default="demo",
    metavar="CONFIG",
    help="a config whose data.source is demo (" + ", ".join(_demo_configs(configs)) + ") or a "
    "Python file with get_config()",
  )
  parser.add_argument(
    "--no-write", action="store_true", help="print the folder without writing the data there"
  )
  add_verbose_argument(parser)
  args, overrides = split_overrides(argv)
  args = parser.parse_args(args)
  try:
    print(demo_data_path(args.config, overrides, write=not args.no_write))
  except (KeyError, ValueError, FileNotFoundError, ImportError) as e:
    return report("jaxres data", e, args.verbose, 2)
  sys.stdout.flush()
  return 0


def demo_data_path(config_name: str, overrides: list[str] = (), *, write: bool = True) -> str:
  """The folder of the demo data `config_name` trains on, written there first when `write`.

  Args:
    config_name: a shipped config name or a config file whose `data.source` is "demo".
    overrides: `--config.key=value` items (e.g. `--config.data.demo.seed=1`).
    write: write the data if they are not there yet (a complete set is reused).

  Returns:
    The folder (`jaxres.data.catalog.demo_root`).

  Raises:
    ValueError: the config's data are not the built-in demo (the message names `data.source`).

  Example:
    >>> demo_data_path("sr_edsr_demo", write=False)
    '/home/me/.cache/jaxres/photos-v8-t8-s128-seed0'
  """
  from jaxres.data import catalog
  from jaxres.train.config import load_config

  data = load_config(config_name, list(overrides)).data
  if data.source != "demo":
    raise ValueError(
      f"config {config_name} reads data.source={data.source!r} from {data.path or '-'}, not "
      "the built-in demo data; give a config whose data.source is 'demo' (e.g. demo)."
    )
  return catalog.ensure_demo_data(data) if write else catalog.demo_root(data)


def _demo_configs(configs) -> list[str]:
  return [name for name in configs.names() if "demo" in name]
