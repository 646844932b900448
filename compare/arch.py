"""`arch MODEL [MODEL ...]`: the architectures side by side, stage by stage.

The stages are the spec's outline (`config.outline()`: the stem, every stage the paper declares, the
head, each ending at a canonical module); parameters, multiply-adds, output shapes and receptive fields
come from the one operation counter (`flops.stage_profile`), so the stages add up to the figures of
`list` and `bench`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import zoo

from . import flops
from .files import writable_file, write_json
from .knobs import add_set_option, check_knobs, input_size_for, knob_label, knob_variants
from .options import UsageError, add_input_size_option, add_json_option, add_models_arguments, selected_models
from .tables import fmt_num, format_table

DESCRIPTION = (
    "Stage by stage (the stem, every stage the spec declares, the head): output channels x height x width, "
    "the stage's blocks, parameters and multiply-adds with their share of the model's total, and the "
    "theoretical receptive field of the stage's output in input pixels. Models are stacked one below the "
    "other in one table (a header row each), so any number of them reads in a 120-column terminal. Below "
    "each model: its totals, its depth (convolution and dense layers on the longest path from input to "
    "output, the way the papers count ResNet-50's 50; a squeeze-and-excitation gate does not deepen it) and "
    "the receptive field of its last stage. Counted once, by the reference framework's backend, without "
    "computing.")


def add_parser(commands) -> None:
    parser = commands.add_parser("arch", help="stage table of one or more models", description=DESCRIPTION)
    add_models_arguments(parser)
    add_set_option(parser)
    add_input_size_option(parser)
    add_json_option(parser, "the table's data")
    parser.add_argument("--png", metavar="PATH", help="also draw parameters and multiply-adds per stage")
    parser.set_defaults(run=run)


def describe(name: str, input_size: int | None = None, overrides: dict | None = None) -> dict:
    """The stage table of one model as plain data (what --json writes for it)."""
    overrides = overrides or {}
    size = input_size_for(name, input_size)
    profile = flops.stage_profile(name, size, overrides=overrides)
    total_params, total_macs = profile["params"], profile["macs"]
    stages = []
    for stage, counted in zip(profile["outline"], profile["stages"]):
        stages.append({
            "name": stage.name, "label": stage.label, "end": stage.end, "blocks": stage.blocks,
            "block": stage.block, "stride": stage.stride, "output": list(counted["shape"]),
            "params": counted["params"], "params_share": counted["params"] / total_params if total_params else 0.0,
            "macs": counted["macs"], "macs_share": counted["macs"] / total_macs if total_macs else 0.0,
            "receptive_field": counted["receptive_field"], "jump": counted["jump"],
        })
    last = stages[-2] if len(stages) > 1 else stages[-1]
    return {
        "model": name, "knobs": overrides, "family": zoo.get_spec(name).family, "input_size": size,
        "params": total_params, "macs": total_macs, "params_not_run": profile["params_not_run"],
        "depth": profile["depth"], "last_stage": last["name"], "receptive_field": last["receptive_field"],
        "stages": stages,
    }


def _shape(output: list[int]) -> str:
    return " x ".join(map(str, output))


def _share(value: float) -> str:
    return f"{100 * value:.1f}%"


def table(records: list[dict]) -> str:
    rows = [("stage", "output (C x H x W)", "params", "share", "MMACs", "share", "RF")]
    for r in records:
        knobs = f" [{knob_label(r['knobs'])}]" if r["knobs"] else ""
        rows.append((f"{r['model']}{knobs} at {r['input_size']}x{r['input_size']}", "", "", "", "", "", ""))
        for s in r["stages"]:
            rows.append((f"  {s['label']}", _shape(s["output"]), f"{s['params']:,}", _share(s["params_share"]),
                         fmt_num(s["macs"] / 1e6), _share(s["macs_share"]), fmt_num(s["receptive_field"])))
        if r["params_not_run"]:
            rows.append(("  not run in inference (auxiliary heads)", "", f"{r['params_not_run']:,}", "", "", "", ""))
        rows.append((f"  total: depth {r['depth']}, RF of {r['last_stage']} {fmt_num(r['receptive_field'])} px", "",
                     f"{r['params']:,}", "100%", fmt_num(r["macs"] / 1e6), "100%", ""))
    return format_table(rows, align="lrrrrrr")


def write_png(path: Path, records: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(records), 2, figsize=(12, 2.8 * len(records) + 0.6), squeeze=False)
    for row, r in zip(axes, records):
        labels = [s["name"] for s in r["stages"]]
        title = r["model"] + (f" [{knob_label(r['knobs'])}]" if r["knobs"] else "")
        for ax, key, unit, scale, colour in ((row[0], "params", "parameters (millions)", 1e6, "#4c72b0"),
                                             (row[1], "macs", "multiply-adds (millions)", 1e6, "#dd8452")):
            ax.bar(range(len(labels)), [s[key] / scale for s in r["stages"]], color=colour)
            ax.set_xticks(range(len(labels)))
            ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
            ax.set_ylabel(unit)
            ax.set_title(f"{title}: {fmt_num(r[key] / scale)} M in all", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    names = selected_models(args)
    overrides = knob_variants(args.knobs)[0]
    for name in names:
        check_knobs(name, overrides)
        input_size_for(name, args.input_size)
    json_path = writable_file(args.json) if args.json else None
    png_path = writable_file(args.png) if args.png else None
    try:
        records = [describe(name, args.input_size, overrides) for name in names]
    except flops.FlopsUnavailable as error:
        raise UsageError(f"arch needs the operation counter: {error}") from None
    print(table(records))
    print("\nMMACs: millions of multiply-adds of convolutions and dense layers per image.\n"
          "RF: theoretical receptive field of the stage's output, in input pixels (it may exceed the image).")
    if json_path:
        write_json(json_path, {"models": records})
        print(f"wrote {json_path}")
    if png_path:
        write_png(png_path, records)
        print(f"wrote {png_path}")
    return 0
