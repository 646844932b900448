"""Command line of the compare tool: one module per sub-command, each with `add_parser(commands)`.

With no sub-command, `python -m compare` runs the default tour (`tour.py`). Every bad command line,
argparse's own complaints included, ends in one place: `main` prints `zoo-compare: error: ...` once
and returns 2.
"""
from __future__ import annotations

import importlib
import sys

import zoo

from .frameworks import load_plugins
from .options import PROG, ArgumentParser, UsageError

# Sub-command modules of this package, in the order `--help` lists them.
COMMANDS = ("listing", "summary", "arch", "efficiency", "crosscheck", "bench", "train", "gradcheck")


def build_parser() -> ArgumentParser:
    *others, last = [fw.title for fw in zoo.FRAMEWORKS.values()]
    parser = ArgumentParser(
        prog=PROG,
        description=f"Cross-check and benchmark the Classic CNN Zoo across {', '.join(others)} and {last}. "
                    "Without a sub-command: the default tour (a cross-check of one model per family and a "
                    "short CPU inference benchmark).",
    )
    # Sub-command parsers are made by the same class, so their errors take the same path.
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        importlib.import_module(f"{__package__}.{module}").add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        load_plugins()
        parser = build_parser()
        if not argv:
            from . import tour

            return tour.run_tour()
        args = parser.parse_args(argv)
        if getattr(args, "run", None) is None:
            parser.print_help()
            return 2
        return args.run(args)
    except (UsageError, zoo.UnknownModelError, zoo.FrameworkUnavailableError) as error:
        # Folded onto one line: some messages quote a reason that spans lines (a plugin's, a weight file's).
        message = " ".join(str(error).split())
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
