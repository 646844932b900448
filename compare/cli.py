"""Command line of the compare tool."""
from __future__ import annotations

import argparse
import sys

import zoo


def cmd_list(args: argparse.Namespace) -> int:
    names = zoo.list_models(args.pattern)
    if not names:
        print(f"no model matches {args.pattern!r}", file=sys.stderr)
        return 1
    rows = [("model", "family", "input", "params")]
    for name in names:
        spec = zoo.get_spec(name)
        rows.append((name, spec.family, "x".join(map(str, spec.input_size)), f"{spec.params:,}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zoo-compare", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="the registered models")
    listing.add_argument("pattern", nargs="?", default="*")
    listing.set_defaults(run=cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)
