"""`list [PATTERN]`: the registered models, their size and cost, and which frameworks build them here."""
from __future__ import annotations

import argparse
import sys

import zoo

from . import flops
from .common import can_build, fmt_num, format_table, writable_file, write_json


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "list", help="the registered models",
        description="Every registered model: family, default input, trainable parameters, forward GFLOPs "
                    "(billions of multiply-adds per image, counted once, by the reference framework's backend, "
                    "without computing) and the frameworks that can build it here.")
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style pattern, e.g. 'resnet*'")
    parser.add_argument("--json", metavar="PATH", help="also write the rows to this JSON file")
    parser.set_defaults(run=run)


def model_rows(names: list[str]) -> tuple[list[dict], str | None]:
    """One record per model, and a note when the operation counter is unavailable."""
    note = None
    records = []
    for name in names:
        spec = zoo.get_spec(name)
        macs = None
        if note is None:
            try:
                macs = flops.count_macs(name)
            except flops.FlopsUnavailable as error:
                if "not installed" in str(error):
                    note = f"GFLOPs not shown: {error}"
                else:
                    print(f"warning: {error}", file=sys.stderr)
        records.append({
            "model": name, "family": spec.family, "input": list(spec.input_size),
            "params": spec.params, "params_total": spec.params_total,
            "gflops": None if macs is None else macs / 1e9,
            "frameworks": [fw for fw in zoo.FRAMEWORKS if can_build(fw, name)],
        })
    return records, note


def run(args: argparse.Namespace) -> int:
    names = zoo.list_models(args.pattern)
    if not names:
        print(f"zoo-compare: error: no model matches {args.pattern!r} "
              f"({len(zoo.list_models())} registered; try `zoo-compare list`)", file=sys.stderr)
        return 2
    if args.json:
        writable_file(args.json)
    records, note = model_rows(names)
    rows = [("model", "family", "input", "params", "GFLOPs", "frameworks")]
    for r in records:
        rows.append((r["model"], r["family"], "x".join(map(str, r["input"])), f"{r['params']:,}",
                     fmt_num(r["gflops"]),
                     ",".join(r["frameworks"]) or "none installed"))
    print(format_table(rows, align="lllrrl"))
    print(f"\n{len(records)} model(s). GFLOPs: multiply-adds of convolutions and dense layers per image "
          f"at the default input, one count for every framework.")
    if note:
        print(note)
    if args.json:
        write_json(args.json, records)
    return 0
