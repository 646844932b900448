"""`list [PATTERN]`: the registered models, their size and cost, and which frameworks build them here."""
from __future__ import annotations

import argparse
import sys

import zoo

from . import flops
from .files import writable_file, write_json
from .frameworks import can_build
from .tables import fmt_num, format_table


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "list", help="the registered models",
        description="Every registered model: family, default input, trainable parameters, forward GFLOPs "
                    "(billions of multiply-adds per image, counted once, by the reference framework's backend, "
                    "without computing), the published top-1 accuracy of the canonical configuration (ImageNet "
                    "unless another dataset is named; --json has top-5, the source and the recipe) and the "
                    "frameworks that can build it here.")
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style pattern, e.g. 'resnet*'")
    parser.add_argument("--json", metavar="PATH", help="also write the rows to this JSON file")
    parser.set_defaults(run=run)


def accuracy(spec: zoo.ModelSpec) -> dict:
    """The spec's published accuracy: top1 and top5 in percent (None where no figure exists), the dataset,
    the source (or why there is no figure) and the training recipe."""
    return {"top1": spec.top1, "top5": spec.top5, "dataset": spec.accuracy_dataset,
            "accuracy_source": spec.accuracy_source, "recipe": spec.accuracy_recipe}


def _top1(record: dict) -> str:
    if record["top1"] is None:
        return "-"
    # A figure on another dataset than ImageNet (LeNet-5's MNIST, the CIFAR DenseNets) names it.
    other = "" if record["dataset"].startswith(("ImageNet", "ILSVRC")) else f" ({record['dataset'].split()[0]})"
    return f"{record['top1']:.2f}{other}"


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
            **accuracy(spec),
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
    rows = [("model", "family", "input", "params", "GFLOPs", "top-1 %", "frameworks")]
    for r in records:
        rows.append((r["model"], r["family"], "x".join(map(str, r["input"])), f"{r['params']:,}",
                     fmt_num(r["gflops"]), _top1(r),
                     ",".join(r["frameworks"]) or "none installed"))
    print(format_table(rows, align="lllrrrl"))
    print(f"\n{len(records)} model(s). GFLOPs: multiply-adds of convolutions and dense layers per image "
          f"at the default input, one count for every framework. top-1: the published accuracy of the reference "
          f"weights or the paper, '-' where none exists (the reason is in --json).")
    if note:
        print(note)
    if args.json:
        write_json(args.json, records)
    return 0
