"""What every command's `--help` shares: its description's lines kept, and every default shown."""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
  """Keeps the description's line breaks and appends `(default: ...)` to every option's help.

  Example:
    >>> parser = argparse.ArgumentParser(prog="jaxres x", formatter_class=HelpFormatter)
  """
