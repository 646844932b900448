"""`efficiency`: published ImageNet top-1 against cost, one point per model.

Cost is the one operation counter's multiply-adds (the x axis, log scale) and the parameter count (the
marker's area); with `--bench DIR` a second panel puts the measured inference images/s of each framework
on the x axis instead, from a bench folder's results.json.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import zoo

from . import flops
from .files import writable_dir, write_json
from .frameworks import resolve_frameworks
from .options import UsageError, add_frameworks_option, add_out_option
from .tables import fmt_num, format_table


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "efficiency", help="published top-1 against multiply-adds and measured speed",
        description="Every registered model with a published ImageNet top-1 (`list` shows it, `list --json` its "
                    "source): top-1 against multiply-adds per image (log x), marker area by parameters, one "
                    "colour per family. With --bench DIR, a second panel: top-1 against the measured inference "
                    "images/s of each framework (the largest batch of DIR/results.json, canonical configurations). "
                    "Writes efficiency.png and efficiency.json (the data plotted) into --out.")
    add_frameworks_option(parser)
    add_out_option(parser, "runs/efficiency")
    parser.add_argument("--bench", metavar="DIR", help="a bench output folder (its results.json) for the speed panel")
    parser.set_defaults(run=run)


def imagenet(spec: zoo.ModelSpec) -> bool:
    """Whether the spec's published figure is an ImageNet top-1 (LeNet-5's is MNIST, the CIFAR DenseNets' CIFAR)."""
    return spec.top1 is not None and spec.accuracy_dataset.startswith(("ImageNet", "ILSVRC"))


def points() -> tuple[list[dict], list[dict]]:
    """(one record per model with an ImageNet top-1, the models left out with the reason)."""
    found, left_out = [], []
    for name in zoo.list_models():
        spec = zoo.get_spec(name)
        if not imagenet(spec):
            reason = (f"its figure is on {spec.accuracy_dataset.split(',')[0]}" if spec.top1 is not None
                      else spec.accuracy_source or "no published figure")
            left_out.append({"model": name, "reason": reason})
            continue
        found.append({"model": name, "family": spec.family, "top1": spec.top1, "top5": spec.top5,
                      "source": spec.accuracy_source, "params": spec.params, "input_size": spec.input_size[1],
                      "macs": flops.count_macs(name)})
    return found, left_out


def bench_speeds(folder: str, frameworks: list[str] | None) -> list[dict]:
    """Inference images/s per (model, framework) from DIR/results.json: the canonical configuration of
    the zoo's model at the largest batch size measured."""
    path = Path(folder) / "results.json"
    try:
        records = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"--bench {folder}: no results.json there (a `zoo-compare bench --out DIR` folder)") from None
    except (OSError, ValueError) as error:
        raise UsageError(f"--bench {folder}: cannot read {path}: {error}") from None
    if not isinstance(records, list):
        raise UsageError(f"--bench {folder}: {path} is not a list of bench records")
    best: dict[tuple[str, str], dict] = {}
    for r in records:
        if not isinstance(r, dict) or r.get("status") != "ok" or r.get("mode") != "infer" or r.get("knobs") \
                or r.get("implementation", "zoo") != "zoo" or (frameworks and r.get("framework") not in frameworks):
            continue
        key = (r["model"], r["framework"])
        if key not in best or r["batch_size"] > best[key]["batch_size"]:
            best[key] = r
    return [{"model": m, "framework": fw, "batch_size": r["batch_size"], "images_per_sec": r["images_per_sec"]}
            for (m, fw), r in best.items()]


def _family_colours(families: list[str]) -> dict[str, tuple]:
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    return {family: cmap(i % 20) for i, family in enumerate(families)}


def write_png(path: Path, data: list[dict], speeds: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 2 if speeds else 1
    fig, axes = plt.subplots(1, panels, figsize=(9 * panels, 7), squeeze=False)
    colours = _family_colours(list(dict.fromkeys(d["family"] for d in data)))
    # Marker area proportional to the parameter count, 25M parameters (ResNet-50) at 150 points^2.
    area = {d["model"]: max(8.0, 150 * d["params"] / 25e6) for d in data}
    ax = axes[0][0]
    for family, colour in colours.items():
        group = [d for d in data if d["family"] == family]
        ax.scatter([d["macs"] / 1e9 for d in group], [d["top1"] for d in group], s=[area[d["model"]] for d in group],
                   color=colour, alpha=0.7, edgecolors="black", linewidths=0.5, label=family)
    for d in data:
        ax.annotate(d["model"], (d["macs"] / 1e9, d["top1"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("GFLOPs per image (billions of multiply-adds), log scale")
    ax.set_ylabel("published ImageNet top-1 (%)")
    ax.set_title("accuracy against cost (marker area: parameters)")
    ax.legend(fontsize=7, markerscale=0.5, loc="lower right")
    ax.grid(True, which="both", alpha=0.3)
    if speeds:
        ax = axes[0][1]
        top1 = {d["model"]: d["top1"] for d in data}
        for fw in dict.fromkeys(s["framework"] for s in speeds):
            group = [s for s in speeds if s["framework"] == fw and s["model"] in top1]
            ax.scatter([s["images_per_sec"] for s in group], [top1[s["model"]] for s in group],
                       color=zoo.FRAMEWORKS[fw].colour if fw in zoo.FRAMEWORKS else None, alpha=0.8,
                       label=zoo.FRAMEWORKS[fw].title if fw in zoo.FRAMEWORKS else fw)
            for s in group:
                ax.annotate(s["model"], (s["images_per_sec"], top1[s["model"]]), fontsize=6, xytext=(3, 3),
                            textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("measured inference images/s (largest batch), log scale")
        ax.set_ylabel("published ImageNet top-1 (%)")
        ax.set_title("accuracy against measured speed")
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    frameworks = resolve_frameworks(args.frameworks, require_installed=False) if args.frameworks else None
    out = writable_dir(args.out)
    speeds = bench_speeds(args.bench, frameworks) if args.bench else []
    try:
        data, left_out = points()
    except flops.FlopsUnavailable as error:
        raise UsageError(f"efficiency needs the operation counter: {error}") from None
    if args.bench and not speeds:
        raise UsageError(f"--bench {args.bench}: no successful inference cell of a canonical model"
                         + (f" for {', '.join(frameworks)}" if frameworks else ""))
    rows = [("model", "family", "top-1 %", "GFLOPs", "params", "top-1 per GFLOP")]
    for d in sorted(data, key=lambda d: d["macs"]):
        rows.append((d["model"], d["family"], f"{d['top1']:.2f}", fmt_num(d["macs"] / 1e9), f"{d['params']:,}",
                     fmt_num(d["top1"] / (d["macs"] / 1e9))))
    print(format_table(rows, align="llrrrr"))
    if left_out:
        print("\nnot plotted: " + "; ".join(f"{m['model']} ({m['reason'].split(':')[0]})" for m in left_out))
    write_json(out / "efficiency.json", {"models": data, "not_plotted": left_out, "bench": speeds,
                                         "bench_folder": args.bench})
    written = [out / "efficiency.json"]
    try:
        write_png(out / "efficiency.png", data, speeds)
        written.append(out / "efficiency.png")
    except ImportError:
        print("matplotlib is not installed: no plot")
    print("\nwrote " + ", ".join(map(str, written)))
    return 0
