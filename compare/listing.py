"""`list [PATTERN]`: the registered models."""
from __future__ import annotations

import argparse
import sys

import zoo


def add_parser(commands) -> None:
    parser = commands.add_parser("list", help="the registered models")
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style pattern, e.g. 'resnet*'")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
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
