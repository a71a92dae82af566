"""What every command's `--help` shares: its description's lines kept, and every default shown."""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
  """Keeps the description's line breaks and shows every option's default.

  `(default: X)` is appended to an option's help unless the help already explains its default
  (a `(None: ...)`, `(0: ...)` or `default` in it) or the option is a flag (off by default);
  a required option says `(required)` instead.

  Example:
    >>> parser = argparse.ArgumentParser(prog="jaxres x", formatter_class=HelpFormatter)
  """

  def _get_help_string(self, action: argparse.Action) -> str:
    text = action.help or ""
    explained = "default" in text or f"({action.default}:" in text
    flag = isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))  # pylint: disable=protected-access
    if action.required and action.option_strings:
      return f"{text} (required)"
    if explained or flag or action.default is argparse.SUPPRESS:
      return text
    return super()._get_help_string(action)
