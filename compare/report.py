"""Tables and plots of benchmark results, made from the records alone (so a JSON file can be re-reported)."""
from __future__ import annotations

import importlib.util
import json
import platform
from collections import Counter
from pathlib import Path

import zoo

from .files import atomic_write_text
from .knobs import knob_label
from .tables import fmt_num, format_table

# Results written before `memory_exact` was recorded said so at the end of their memory method.
_REUSED_NOTE = "; worker reused"


def _knobs(record: dict) -> dict:
    return record.get("knobs") or {}


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def variant_name(record: dict) -> str:
    """The model as the tables and plots name it: 'densenet121 [memory_efficient=True]' for a --set variant."""
    knobs = knob_label({k: _tuples(v) for k, v in _knobs(record).items()})
    return f"{record['model']} [{knobs}]" if knobs else record["model"]


def _knobs_key(record: dict) -> str:
    return json.dumps(_knobs(record), sort_keys=True)


def _variants(records: list[dict]) -> list[tuple[str, str, str]]:
    """(model, knobs key, name) of every model variant in `records`, in first-seen order of the models,
    each model's variants side by side."""
    found = list(dict.fromkeys((r["model"], _knobs_key(r), variant_name(r)) for r in records))
    first: dict[str, int] = {}
    for model, _, _ in found:
        first.setdefault(model, len(first))
    return sorted(found, key=lambda entry: first[entry[0]])


def memory_exact(record: dict) -> bool:
    """Whether the cell's peak memory is its own (not raised or hidden by earlier cells of its worker)."""
    if "memory_exact" in record:
        return bool(record["memory_exact"])
    return _REUSED_NOTE not in (record.get("memory_method") or "")


def _frameworks(records: list[dict]) -> list[str]:
    present = {r["framework"] for r in records}
    return [fw for fw in zoo.FRAMEWORKS if fw in present]


def _ok(records, **match) -> list[dict]:
    return [r for r in records if r.get("status") == "ok" and all(r.get(k) == v for k, v in match.items())]


def _find(records, knobs: str | None = None, **match) -> dict | None:
    """The last record matching every field of `match` and, where given, the knobs (as `_knobs_key`)."""
    found = [r for r in records if all(r.get(k) == v for k, v in match.items())
             and (knobs is None or _knobs_key(r) == knobs)]
    return found[-1] if found else None


def _cell(record: dict | None) -> str:
    if record is None:
        return "-"
    if record.get("status") == "ok":
        return fmt_num(record["images_per_sec"])
    return "skipped" if record.get("status") == "skipped" else "FAILED"


def speed_tables(records: list[dict], *, markdown: bool = False) -> list[tuple[str, str]]:
    """(title, table) per (mode, batch size): images/s of every model in every framework."""
    frameworks = _frameworks(records)
    zoo_records = [r for r in records if r.get("implementation", "zoo") == "zoo"]
    with_reference = {fw for fw in frameworks
                      if any(r.get("implementation") == "reference" and r["framework"] == fw for r in records)}
    out = []
    keys = sorted({(r["mode"], r["batch_size"]) for r in zoo_records}, key=lambda k: (k[0] != "infer", k[1]))
    for mode, batch in keys:
        header = ["model", "GFLOPs"]
        for fw in frameworks:
            header.append(f"{fw} img/s")
            if fw in with_reference:
                header += [f"{fw} reference", f"{fw} zoo/ref"]
        rows, variants = [header], {}
        # One row per model and knob combination, the combinations of a model side by side.
        models = _variants([r for r in zoo_records if (r["mode"], r["batch_size"]) == (mode, batch)])
        for model, knobs, name in models:
            some = _find(zoo_records, knobs, model=model, mode=mode, batch_size=batch, status="ok")
            row = [name, fmt_num(some.get("gflops")) if some else "-"]
            for fw in frameworks:
                mine = _find(zoo_records, knobs, model=model, framework=fw, mode=mode, batch_size=batch)
                row.append(_cell(mine))
                if fw in with_reference:
                    ref = _find(records, model=model, framework=fw, mode=mode, batch_size=batch,
                                implementation="reference")
                    if ref is None:
                        row += ["none", "-"]
                    elif ref.get("status") == "skipped":
                        row += ["not installed" if "not installed" in (ref.get("error") or "") else "skipped", "-"]
                    else:
                        row.append(_cell(ref))
                        both = mine and mine.get("status") == "ok" and ref.get("status") == "ok"
                        mark = " +" if ref.get("reference_variant") else ""
                        row.append(f"{mine['images_per_sec'] / ref['images_per_sec']:.2f}{mark}" if both else "-")
                        if mark:
                            variants[f"{fw} {model}"] = f"{ref['reference_name']} is {ref['reference_variant']}"
            rows.append(row)
        device = ", ".join(sorted({str(r.get("device")) for r in zoo_records if r["mode"] == mode}))
        table = format_table(rows, align="l" + "r" * (len(header) - 1), markdown=markdown)
        if variants:
            table += "\n\n" + "\n".join(f"+ {where}: {what}." for where, what in variants.items())
        out.append((f"{mode}, batch {batch} ({device}): images/s, higher is better", table))
    return out


def detail_table(records: list[dict], *, markdown: bool = True) -> str:
    """Every measured cell. Peak memory marked ~ is not the cell's own (see `memory_paragraph`); where the
    shares on one device are of more than one yardstick, a column says which GFLOP/s each one divides by."""
    several = any(len(sticks) > 1 for sticks in yardsticks(records).values())
    # On a GPU the datasheet names, the share of its dense peak stands beside the probe's.
    datasheet = any(r.get("datasheet_share") is not None for r in records if r.get("status") == "ok")
    rows = [("model", "framework", "impl", "mode", "batch", "device", "images/s", "latency ms (p25-p75)",
             "compile s", "peak MB", "GFLOP/s", "% of peak") + (("% of datasheet",) if datasheet else ())
            + (("of GFLOP/s",) if several else ())]
    for r in records:
        if r.get("status") != "ok":
            continue
        spread = f"{r['latency_ms']:.3g} ({r['latency_p25_ms']:.3g}-{r['latency_p75_ms']:.3g})"
        share = "-" if r.get("peak_share") is None else f"{100 * r['peak_share']:.1f}%"
        memory = fmt_num(r.get("peak_memory_mb"))
        if r.get("peak_memory_mb") is not None and not memory_exact(r):
            memory += " ~"
        row = (variant_name(r), r["framework"], r.get("implementation", "zoo"), r["mode"], r["batch_size"],
               r.get("device"), fmt_num(r["images_per_sec"]), spread, fmt_num(r.get("compile_s")),
               memory, fmt_num(r.get("gflops_per_sec")), share)
        if datasheet:
            row += ("-" if r.get("datasheet_share") is None else f"{100 * r['datasheet_share']:.1f}%",)
        rows.append(row + ((fmt_num(r.get("machine_peak_gflops_per_sec")),) if several else ()))
    return format_table(rows, align="llllrlrrrrrr" + "r" * (datasheet + several), markdown=markdown)


def yardsticks(records: list[dict]) -> dict[str, Counter]:
    """{device: Counter((peak GFLOP/s, which probe): cells)} over the cells that have a share of peak."""
    found: dict[str, Counter] = {}
    for r in records:
        if r.get("status") == "ok" and r.get("peak_share") is not None:
            stick = (r.get("machine_peak_gflops_per_sec"), r.get("machine_peak_source") or "the best probe")
            found.setdefault(str(r.get("device")), Counter())[stick] += 1
    return found


def yardstick_paragraph(records: list[dict]) -> str:
    """Which peak every '% of peak' divides by: one sentence per device."""
    parts = []
    for device, sticks in yardsticks(records).items():
        if len(sticks) == 1:
            (peak, source), = sticks
            parts.append(f"on {device} against {fmt_num(peak)} GFLOP/s ({source})")
        else:
            listed = ", ".join(f"{fmt_num(peak)} GFLOP/s ({source}) for {n} cell(s)"
                               for (peak, source), n in sticks.most_common())
            parts.append(f"on {device} against {len(sticks)} yardsticks: {listed}; the last column of "
                         f"'Every cell' says which")
    text = ("% of peak: " + "; ".join(parts) + ".") if parts else ""
    sheets = Counter((r["datasheet_peak_gflops_per_sec"], r["datasheet_source"]) for r in records
                     if r.get("status") == "ok" and r.get("datasheet_share") is not None)
    if sheets:
        text += (" % of datasheet: against " + ", ".join(f"{fmt_num(peak)} GFLOP/s ({source})"
                                                          for (peak, source), _ in sheets.most_common()) + ".")
    return text.strip()


def memory_paragraph(records: list[dict]) -> str:
    """How peak memory was measured, each method said once, and which figures are not a cell's own."""
    measured = [r for r in records if r.get("status") == "ok" and r.get("memory_method")]
    if not measured:
        return ""
    methods = dict.fromkeys(r["memory_method"].split(_REUSED_NOTE)[0] for r in measured)
    text = "Peak memory: " + "; ".join(methods) + "."
    train = [r for r in measured if r["mode"] == "train"]
    if train and all(memory_exact(r) for r in train):
        text += (" Each training cell's peak is its own: it ran in a fresh worker process wherever the "
                 "framework cannot reset its peak statistics between cells.")
    if not all(memory_exact(r) for r in measured):
        text += (" Figures marked ~ come from a worker that had run earlier cells, whose freed memory the "
                 "framework may reuse uncounted (--fresh-workers makes every figure exact).")
    return text


# ---------------------------------------------------------------- DenseNet memory against depth

MEMORY_EFFICIENT = "memory_efficient"


def densenet_depth(config) -> int:
    """A DenseNet's layer count L as the paper counts it: the stem convolution, two convolutions per dense
    layer (one without the bottleneck), one per transition and the classifier; 121 for DenseNet-121
    (2 * (6 + 12 + 24 + 16) + 1 + 3 + 1), 100 for the CIFAR DenseNet-BC with 3 blocks of 16 layers."""
    per_layer = 2 if config.bottleneck else 1
    return per_layer * sum(config.block_config) + 1 + (len(config.block_config) - 1) + 1


def _densenet_config(record: dict):
    """The record's DenseNet config with its knobs applied; None for a model this process does not know."""
    try:
        spec = zoo.get_spec(record["model"])
        knobs = {k: _tuples(v) for k, v in _knobs(record).items()}
        return spec.configure(**knobs) if knobs else spec.config
    except (KeyError, TypeError, ValueError):
        return None


def fit_exponent(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of log y against log x: b in y ~ a * x**b; None below two distinct x."""
    if len({x for x, _ in points}) < 2:
        return None
    import math

    logs = [(math.log(x), math.log(y)) for x, y in points]
    mean_x = sum(x for x, _ in logs) / len(logs)
    mean_y = sum(y for _, y in logs) / len(logs)
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in logs)
    return covariance / sum((x - mean_x) ** 2 for x, _ in logs)


def memory_depth_series(records: list[dict]) -> dict:
    """DenseNet training cells with their own peak memory, grouped for the memory-against-depth plot.

    {"groups": {(input size, batch size): {framework: {memory_efficient: {depth: record}}}},
     "left_out": cells whose peak is not their own (see `memory_exact`), which are not used}.
    Two cells of one framework at one depth and knob value (two growth rates, say) keep the last."""
    groups: dict = {}
    left_out = 0
    for r in records:
        if (r.get("status") != "ok" or r.get("mode") != "train" or r.get("family") != "densenet"
                or r.get("implementation", "zoo") != "zoo" or r.get("peak_memory_mb") is None):
            continue
        config = _densenet_config(r)
        if config is None:
            continue
        if not memory_exact(r):
            left_out += 1
            continue
        by_knob = groups.setdefault((int(r["input_size"]), int(r["batch_size"])), {}).setdefault(r["framework"], {})
        by_knob.setdefault(bool(config.memory_efficient), {})[densenet_depth(config)] = r
    return {"groups": dict(sorted(groups.items())), "left_out": left_out}


def _group_title(key: tuple[int, int]) -> str:
    size, batch = key
    return f"{size}x{size}, batch {batch}"


def _plotted(series: dict) -> dict:
    """The groups with at least two depths: the ones with a line to draw and an exponent to fit."""
    return {key: by_fw for key, by_fw in series["groups"].items()
            if len({d for by_knob in by_fw.values() for cells in by_knob.values() for d in cells}) >= 2}


def memory_depth_tables(records: list[dict], *, markdown: bool = True) -> list[tuple[str, str]]:
    """(title, table) per (input size, batch size) with DenseNets at two or more depths: the fitted exponent
    of peak memory against depth per framework and memory_efficient value, then at each depth the peaks and
    times per step, and the memory_efficient / plain ratio of both."""
    out = []
    for key, by_fw in _plotted(memory_depth_series(records)).items():
        rows = [("framework", "memory_efficient", "depths", "exponent")]
        for fw in [fw for fw in zoo.FRAMEWORKS if fw in by_fw]:
            for efficient, cells in sorted(by_fw[fw].items()):
                slope = fit_exponent([(d, r["peak_memory_mb"]) for d, r in cells.items()])
                rows.append((fw, str(efficient), ",".join(str(d) for d in sorted(cells)),
                             "-" if slope is None else f"{slope:.2f}"))
        exponents = format_table(rows, align="lllr", markdown=markdown)
        rows = [("framework", "depth", "plain peak MB", "efficient peak MB", "peak ratio", "plain ms/step",
                 "efficient ms/step", "time ratio")]
        for fw in [fw for fw in zoo.FRAMEWORKS if fw in by_fw]:
            plain, efficient = by_fw[fw].get(False, {}), by_fw[fw].get(True, {})
            for depth in sorted(set(plain) | set(efficient)):
                a, b = plain.get(depth), efficient.get(depth)
                rows.append((fw, depth, fmt_num(a and a["peak_memory_mb"]), fmt_num(b and b["peak_memory_mb"]),
                             f"{b['peak_memory_mb'] / a['peak_memory_mb']:.2f}" if a and b else "-",
                             fmt_num(a and a["latency_ms"]), fmt_num(b and b["latency_ms"]),
                             f"{b['latency_ms'] / a['latency_ms']:.2f}" if a and b else "-"))
        ratios = format_table(rows, align="lrrrrrrr", markdown=markdown)
        out.append((f"DenseNet training peak memory against depth, {_group_title(key)}",
                    exponents + "\n\n" + ratios))
    return out


def memory_depth_paragraph(records: list[dict]) -> str:
    series = memory_depth_series(records)
    if not _plotted(series):
        return ""
    text = ("Depth is the DenseNet's layer count L (the stem convolution, two convolutions per bottleneck dense "
            "layer, one per transition, the classifier). The exponent is the least-squares slope of log peak "
            "memory against log depth; a ratio is memory_efficient=True over plain at the same depth. Only "
            "training cells whose peak memory is their own (memory_exact) are used")
    left_out = series["left_out"]
    return text + (f"; {left_out} cell(s) whose peak is not their own are left out." if left_out else ".")


def _round_ticks(low: float, high: float) -> list[float]:
    """1-2-5 steps from below `low` to above `high`, for a log axis that spans less than a decade or two."""
    import math

    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    steps = [m * 10.0 ** e for e in decades for m in (1, 2, 5)]
    below = max((t for t in steps if t <= low), default=steps[0])
    above = min((t for t in steps if t >= high), default=steps[-1])
    return [t for t in steps if below <= t <= above]


def plot_memory_vs_depth(out: Path, records: list[dict], plt) -> Path | None:
    """DIR/memory_vs_depth.png: DenseNet training peak memory against depth, log-log, one panel per (input
    size, batch size), one colour per framework, solid plain and dashed memory_efficient."""
    groups = _plotted(memory_depth_series(records))
    if not groups:
        return None
    colours = {fw: info.colour for fw, info in zoo.FRAMEWORKS.items()}
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 4.5), squeeze=False)
    for ax, (key, by_fw) in zip(axes[0], groups.items()):
        depths = set()
        for fw in [fw for fw in zoo.FRAMEWORKS if fw in by_fw]:
            for efficient, cells in sorted(by_fw[fw].items()):
                xs = sorted(cells)
                depths.update(xs)
                ax.plot(xs, [cells[d]["peak_memory_mb"] for d in xs], "--" if efficient else "-", marker="o",
                        color=colours.get(fw), label=f"{fw}{', memory_efficient' if efficient else ''}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        # Log axes would label only the powers of ten; the depths measured are what a reader looks up.
        ax.set_xticks(sorted(depths))
        ax.set_xticklabels([str(d) for d in sorted(depths)])
        peaks = [r["peak_memory_mb"] for by_knob in by_fw.values() for cells in by_knob.values()
                 for r in cells.values() if r["peak_memory_mb"] > 0]
        if peaks:  # labelled 1-2-5 steps: the decades alone leave one label or none on a short span
            ticks = _round_ticks(min(peaks), max(peaks))
            ax.set_yticks(ticks)
            ax.set_yticklabels([f"{t:,.0f}" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("depth L (layers)")
        ax.set_ylabel("training peak memory (MB)")
        ax.set_title(f"DenseNet, {_group_title(key)}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "memory_vs_depth.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def machine_table(machine: dict, *, markdown: bool = True) -> str:
    """One row per framework with its matrix-product probe; the best probe per device is the machine's peak
    that the shares are computed against, marked *."""
    best = {}
    for m in machine.values():
        if m.get("peak_gflops_per_sec"):
            best[m.get("device")] = max(best.get(m.get("device"), 0.0), m["peak_gflops_per_sec"])
    rows = [("framework", "version", "device", "threads", "fp32 matmul GFLOP/s (* = peak)", "16-bit peak", "note")]
    for fw in zoo.FRAMEWORKS:
        if fw not in machine:
            continue
        m = machine[fw]
        rows.append((fw, m.get("framework_version", "-"), m.get("device") or "-", m.get("threads", "-"),
                     fmt_num(m.get("peak_gflops_per_sec"))
                     + (" *" if m.get("peak_gflops_per_sec") and m["peak_gflops_per_sec"] == best.get(m.get("device")) else ""),
                     fmt_num(m.get("amp_peak_gflops_per_sec")),
                     m.get("unavailable") or m.get("device_note") or ""))
    return format_table(rows, align="lllrrrl", markdown=markdown)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write_report(out: Path, records: list[dict], machine: dict, *, plots: bool = True) -> list[Path]:
    """DIR/report.md and, with matplotlib, DIR/images_per_sec.png, DIR/speed_vs_gflops.png and, for
    DenseNet training cells at two or more depths, DIR/memory_vs_depth.png."""
    import os

    written = []
    if plots:
        written = write_plots(out, records)
    lines = ["# Classic CNN Zoo benchmark", "",
             f"Machine: {_cpu_name()}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}.", "",
             "## Frameworks and machine peak", "", machine_table(machine), ""]
    methods = sorted({r["method"] for r in records if r.get("method")})
    if methods:
        lines += ["## How each framework was run", ""] + [f"- `{m}`" for m in methods] + [""]
    lines += ["Timing: rounds of N iterations (N set so that a round lasts at least the minimum round time), "
              "the device synchronised before every clock read, warm-up and compilation excluded; latency is "
              "the median over rounds of round time / N, the spread is the 25th-75th percentile; the "
              "frameworks' rounds are interleaved. GFLOPs are multiply-adds per image (one count for all "
              "frameworks); achieved GFLOP/s counts 2 FLOPs per multiply-add and a training step as 3x "
              "the forward pass.", ""]
    for paragraph in (yardstick_paragraph(records), memory_paragraph(records)):
        if paragraph:
            lines += [paragraph, ""]
    for title, table in speed_tables(records, markdown=True):
        lines += [f"## {title}", "", table, ""]
    depth_tables = memory_depth_tables(records)
    for index, (title, table) in enumerate(depth_tables):
        lines += [f"## {title}", ""] + ([memory_depth_paragraph(records), ""] if index == 0 else []) + [table, ""]
    lines += ["## Every cell", "", detail_table(records), ""]
    problems = [r for r in records if r.get("status") != "ok"]
    if problems:
        lines += ["## Failed or skipped cells", ""]
        lines += [f"- {variant_name(r)} / {r['framework']} / {r.get('implementation', 'zoo')} / {r['mode']} / "
                  f"batch {r['batch_size']}: **{r.get('status')}**: {r.get('error')}" for r in problems]
        lines.append("")
    if written:
        lines += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in written] + [""]
    elif plots and importlib.util.find_spec("matplotlib") is None:
        lines += ["## Plots", "", "None: matplotlib is not installed here.", ""]
    atomic_write_text(out / "report.md", "\n".join(lines))
    return written


def write_plots(out: Path, records: list[dict]) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    ok = [r for r in records if r.get("status") == "ok" and r.get("implementation", "zoo") == "zoo"]
    if not ok:
        return []
    frameworks = _frameworks(ok)
    colours = {fw: info.colour for fw, info in zoo.FRAMEWORKS.items()}
    written = []

    keys = sorted({(r["mode"], r["batch_size"]) for r in ok}, key=lambda k: (k[0] != "infer", k[1]))
    models = _variants(ok)
    fig, axes = plt.subplots(len(keys), 1, figsize=(max(6, 1.2 * len(models) + 2), 3.2 * len(keys)), squeeze=False)
    width = 0.8 / max(1, len(frameworks))
    for ax, (mode, batch) in zip(axes[:, 0], keys):
        for i, fw in enumerate(frameworks):
            values = []
            for model, knobs, _ in models:
                record = _find(ok, knobs, model=model, framework=fw, mode=mode, batch_size=batch)
                values.append(record["images_per_sec"] if record else 0)
            positions = [x + (i - (len(frameworks) - 1) / 2) * width for x in range(len(models))]
            ax.bar(positions, values, width, label=fw, color=colours.get(fw))
        ax.set_xticks(range(len(models)))
        ax.set_xticklabels([name for _, _, name in models], rotation=30, ha="right")
        ax.set_yscale("log")
        ax.set_ylabel("images/s")
        ax.set_title(f"{mode}, batch {batch}")
        ax.legend()
    fig.tight_layout()
    path = out / "images_per_sec.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)

    fig, ax = plt.subplots(figsize=(7, 5))
    for fw in frameworks:
        points = [r for r in ok if r["framework"] == fw and r.get("gflops")]
        if not points:
            continue
        ax.scatter([r["gflops"] for r in points], [r["images_per_sec"] for r in points], label=fw,
                   color=colours.get(fw), alpha=0.8)
        for r in points:
            ax.annotate(variant_name(r), (r["gflops"], r["images_per_sec"]), fontsize=7, alpha=0.7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("GFLOPs per image (multiply-adds)")
    ax.set_ylabel("images/s")
    ax.set_title("speed against model cost (every mode and batch size)")
    ax.legend()
    fig.tight_layout()
    path = out / "speed_vs_gflops.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)

    path = plot_memory_vs_depth(out, ok, plt)
    if path is not None:
        written.append(path)
    return written


def console_summary(records: list[dict], machine: dict) -> str:
    parts = ["frameworks and machine peak:", machine_table(machine, markdown=False)]
    for title, table in speed_tables(records):
        parts += ["", title, table]
    problems = [r for r in records if r.get("status") != "ok"]
    if problems:
        parts += ["", f"{len(problems)} cell(s) failed or were skipped:"]
        parts += [f"  {variant_name(r)} {r['framework']} {r['mode']} b{r['batch_size']}: {r.get('error')}"
                  for r in problems[:20]]
    return "\n".join(parts)
