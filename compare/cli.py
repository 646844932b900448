"""Command line of the compare tool: one module per sub-command, each with `add_parser(commands)`."""
from __future__ import annotations

import argparse
import importlib

# Sub-command modules of this package, in the order `--help` lists them.
COMMANDS = ("listing", "train", "gradcheck")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoo-compare",
        description="Cross-check and benchmark the Classic CNN Zoo across PyTorch, TensorFlow and MXNet.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        importlib.import_module(f"{__package__}.{module}").add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)
