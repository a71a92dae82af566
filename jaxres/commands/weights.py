"""`jaxres weights list | download NAME... | import FILE NAME`: published checkpoints by name.

`list` shows every entry with its published figures and whether it is cached; `download` fetches,
verifies and converts entries into the cache (`$JAXRES_CACHE_DIR`, default `~/.cache/jaxres`;
`$JAXRES_WEIGHTS_MIRROR` fetches from a mirror by file name); `import` puts a file fetched by
other means into the cache after the same checks. Use them with `jaxres predict --weights NAME`,
`jaxres upscale --weights NAME`, `jaxres export --weights NAME` or
`jaxres.load_pretrained(NAME)`.

Example:
  $ jaxres weights list
  $ jaxres weights download x3d_m.kinetics400
  $ jaxres weights import ~/downloads/r3d_18-b3b3357e.pth r3d_18.kinetics400
"""

from __future__ import annotations

import argparse
import os
import sys

from jaxres.commands.help import HelpFormatter


def _figures(metrics) -> str:
  return ", ".join(f"{k} {v:g}" for k, v in metrics.items())


def _list(weights) -> int:
  rows = [("NAME", "MODEL", "PUBLISHED", "CACHED")]
  for name in weights.names():
    entry = weights.get(name)
    cached = "yes" if os.path.isfile(weights.cached_file(entry)) else ""
    rows.append((name, entry.arch, _figures(entry.metrics), cached))
  widths = [max(len(r[i]) for r in rows) for i in range(3)]
  for row in rows:
    print("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths)) + "  " + row[3])
  print(
    f"\n{len(rows) - 1} entries; cache: {weights.cache_dir()}; sources: "
    "`jaxres weights list --sources`"
  )
  return 0


def _sources(weights) -> int:
  for name in weights.names():
    entry = weights.get(name)
    print(f"{name}\n  file:    {entry.url}\n  figures: {_figures(entry.metrics)} ({entry.source})")
  return 0


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(
    prog="jaxres weights", description=__doc__, formatter_class=HelpFormatter
  )
  sub = parser.add_subparsers(dest="action", required=True)
  listing = sub.add_parser("list", help="every entry, its published figures, whether cached")
  listing.add_argument(
    "--sources", action="store_true", help="also each file's URL and the figures' source"
  )
  download = sub.add_parser("download", help="fetch, verify and convert entries into the cache")
  download.add_argument("names", nargs="+", metavar="NAME")
  download.add_argument("--no-progress", action="store_true", help="hide the progress bar")
  imports = sub.add_parser("import", help="put a file fetched by other means into the cache")
  imports.add_argument("file", metavar="FILE")
  imports.add_argument("name", metavar="NAME")
  args = parser.parse_args(argv)

  from jaxres import weights  # pylint: disable=import-outside-toplevel

  try:
    if args.action == "list":
      return _sources(weights) if args.sources else _list(weights)
    if args.action == "download":
      entries = [weights.get(name) for name in args.names]  # every name checked first
      for entry in entries:
        weights.load_variables(entry, progress=not args.no_progress)
        print(f"{entry.name}: {weights.cached_file(entry)}")
      return 0
    entry = weights.get(args.name)
    path = weights.import_file(entry, args.file)
    weights.load_variables(entry, progress=False)  # converts now, so the file is known to fit
    print(f"{entry.name}: imported {args.file} as {path}")
    return 0
  except KeyError as error:
    print(f"jaxres weights: {error.args[0]}", file=sys.stderr)
  except (weights.WeightsError, FileNotFoundError, ValueError) as error:
    print(f"jaxres weights: {error}", file=sys.stderr)
  return 1
