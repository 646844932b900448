"""`summary MODEL`: one table, layer by layer, side by side across the frameworks; mismatches marked."""
from __future__ import annotations

import argparse
import sys
from collections import Counter

import zoo

from . import flops
from .frameworks import can_build, resolve_frameworks
from .knobs import add_set_option, check_knobs, input_size_for, knob_label, knob_variants
from .options import UsageError, add_frameworks_option, add_input_size_option, add_model_argument, selected_model
from .tables import format_table
from .layers import LayerTable, layer_table, merge_order

MARK = "*"


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "summary", help="layer-by-layer table of one model across the frameworks",
        description="Layer by layer (canonical names: the reference framework's module paths): output shape "
                    "(C,H,W without the batch, for every framework) and trainable parameters, side by side; "
                    f"rows where the frameworks differ are marked {MARK!r}; totals at the bottom.")
    add_model_argument(parser)
    add_frameworks_option(parser)
    add_input_size_option(parser)
    add_set_option(parser)
    parser.add_argument("--all-layers", action="store_true",
                        help="also list layers only one framework has (padding, reshapes)")
    parser.set_defaults(run=run)


def collect(name: str, frameworks: list[str], input_size: int,
            overrides: dict | None = None) -> tuple[list[LayerTable], list[str]]:
    """Each framework's layer table, and notes on the frameworks that could not take part."""
    spec = zoo.get_spec(name)
    overrides = overrides or {}
    tables, notes = [], []
    for framework in frameworks:
        if not can_build(framework, name):
            notes.append(f"{framework}: has no builder for the {spec.family} family on this installation")
            continue
        model = zoo.create_model(name, framework, **overrides)
        tables.append(layer_table(framework, model, input_size, spec.in_channels))
        del model
    return tables, notes


def canonical_layers(tables: list[LayerTable]) -> set[str]:
    """Layers that make rows even without weights: the reference framework's module paths (the canonical
    names the other frameworks mirror) or, without the reference, the layers two frameworks or more have.
    A layer that only one framework's graph needs (explicit padding, a separate addition or activation)
    is left to --all-layers."""
    for table in tables:
        if table.framework == zoo.REFERENCE_FRAMEWORK:
            return set(table.layers)
    seen = Counter(name for table in tables for name in table.layers)
    return {name for name, count in seen.items() if count > 1}


def rows_for(tables: list[LayerTable], all_layers: bool = False) -> tuple[list[list[str]], int]:
    """Table rows (header first) and the number of rows marked as mismatches."""
    # Canonical layers and every layer that holds weights anywhere make the rows.
    canonical = canonical_layers(tables)

    def keep(table, name):
        return all_layers or not canonical or name in canonical or table.layers[name].state > 0

    header = ["layer", "type"]
    for table in tables:
        header += [f"{table.framework} output", f"{table.framework} params"]
    rows = [header + ["diff"]]
    mismatches = 0
    for name in merge_order(tables, keep):
        cells, shapes, counts = [], set(), set()
        kind = ""
        holds_weights = any(name in t.layers and t.layers[name].state for t in tables)
        for table in tables:
            layer = table.layers.get(name)
            # The reference framework's class names, where it has the layer.
            kind = kind or (layer.kind if layer and table.framework == zoo.REFERENCE_FRAMEWORK else "")
            if layer is None:
                cells += ["-", "-"]
                if holds_weights:
                    counts.add(None)
                continue
            kind = kind or layer.kind
            cells += ["x".join(map(str, layer.shape)) if layer.shape is not None else "?", f"{layer.params:,}"]
            if layer.shape is not None:
                shapes.add(layer.shape)
            counts.add((layer.params, layer.state))
        bad = len(shapes) > 1 or len(counts) > 1
        mismatches += bad
        rows.append([name, kind, *cells, MARK if bad else ""])
    total = ["total trainable", ""]
    state = ["total with BN statistics", ""]
    out = ["output", ""]
    for table in tables:
        total += ["", f"{table.params:,}"]
        state += ["", f"{table.params_total:,}"]
        out += ["x".join(map(str, table.output_shape or ())), ""]
    for line in (out, total, state):
        column = 3 if line is not out else 2
        values = {line[i] for i in range(column, len(line), 2)}
        bad = len(values) > 1
        mismatches += bad
        rows.append(line + [MARK if bad else ""])
    return rows, mismatches


def run(args: argparse.Namespace) -> int:
    name = selected_model(args)
    frameworks = resolve_frameworks(args.frameworks)
    [overrides] = knob_variants(args.knobs)
    check_knobs(name, overrides)
    input_size = input_size_for(name, args.input_size, overrides)
    spec = zoo.get_spec(name)
    tables, notes = collect(name, frameworks, input_size, overrides)
    if not tables:
        raise UsageError(f"no framework here can build {name}: " + "; ".join(notes))
    rows, mismatches = rows_for(tables, args.all_layers)
    body = rows[:-3]
    label = f" with {knob_label(overrides)}" if overrides else ""
    print(f"{name} ({spec.family}){label}, input {spec.in_channels}x{input_size}x{input_size}, "
          f"{len(body) - 1} layers")
    text = format_table(body + [[""] * len(rows[0])] + rows[-3:], align="ll" + "rr" * len(tables) + "l")
    print(text)
    if overrides:  # the operation counter builds the canonical configuration only
        print("\nforward GFLOPs: counted for the canonical configuration only (`zoo-compare list`)")
    else:
        try:
            macs = flops.count_macs(name, input_size)
            print(f"\nforward: {macs / 1e9:.3g} GFLOPs (multiply-adds per image)")
        except flops.FlopsUnavailable as error:
            print(f"\nforward GFLOPs unavailable: {error}")
    print(f"reference{' (canonical configuration)' if overrides else ''}: {spec.params:,} trainable / "
          f"{spec.params_total:,} total ({spec.source})")
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if mismatches:
        print(f"{mismatches} row(s) differ between frameworks (marked {MARK!r})")
    else:
        print(f"all {len(tables)} framework(s) agree on every layer's output shape and parameters")
    return 0
