"""Command line of the compare tool: one module per sub-command, each with `add_parser(commands)`.

With no sub-command, `python -m compare` runs the default tour (`tour.py`).
"""
from __future__ import annotations

import argparse
import importlib
import sys

import zoo

from .common import UsageError, load_plugins

# Sub-command modules of this package, in the order `--help` lists them.
COMMANDS = ("listing", "summary", "crosscheck", "bench", "train", "gradcheck")


def build_parser() -> argparse.ArgumentParser:
    *others, last = [fw.title for fw in zoo.FRAMEWORKS.values()]
    parser = argparse.ArgumentParser(
        prog="zoo-compare",
        description=f"Cross-check and benchmark the Classic CNN Zoo across {', '.join(others)} and {last}. "
                    "Without a sub-command: the default tour (a cross-check of one model per family and a "
                    "short CPU inference benchmark).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        importlib.import_module(f"{__package__}.{module}").add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        load_plugins()
        if not argv:
            from . import tour

            return tour.run_tour()
        args = parser.parse_args(argv)
        if getattr(args, "run", None) is None:
            parser.print_help()
            return 2
        return args.run(args)
    except (UsageError, zoo.UnknownModelError, zoo.FrameworkUnavailableError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
