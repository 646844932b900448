"""`crosscheck`: the same random weights and inputs in every framework, every pair of outputs compared.

The reference framework's model (`zoo.REFERENCE_FRAMEWORK`, whose names and layouts the canonical
weights are) gets random values in every parameter and buffer (BatchNorm statistics and affine terms
included: defaults of 0 and 1 would hide mapping errors), the weights travel to the other frameworks
through the canonical format, and each framework predicts in inference mode.
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time

import numpy as np

import zoo

from .common import (UsageError, add_batch_size_option, add_frameworks_option, add_input_size_option,
                     add_json_option, add_models_arguments, add_seed_option, add_set_option, add_tol_option,
                     can_build, check_knobs, fmt_num, format_table, framework_installed, input_size_for, knob_label,
                     knob_variants, resolve_frameworks, selected_models, writable_file, write_json)
from .progress import Progress

DEFAULT_TOL = 1e-4


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "crosscheck", help="same random weights and inputs in every framework; compare every pair",
        description="The reference framework's weights randomised (BatchNorm statistics included), carried to "
                    "the other frameworks through the canonical format, the same inputs; every pair of frameworks "
                    "compared by relative error (||a-b|| / ||b||), max absolute error and top-1 agreement. "
                    "Exit status 1 when any pair exceeds the tolerance or fails to run.")
    add_models_arguments(parser)
    add_frameworks_option(parser)
    add_tol_option(parser, DEFAULT_TOL, "between two frameworks' outputs")
    add_batch_size_option(parser, 2)
    add_input_size_option(parser)
    add_seed_option(parser)
    add_set_option(parser)
    add_json_option(parser, "every pair's result")
    parser.set_defaults(run=run)


def relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    scale = float(np.linalg.norm(expected))
    diff = float(np.linalg.norm(got.astype(np.float64) - expected.astype(np.float64)))
    return diff / scale if scale > 0 else diff


def check_model(name: str, frameworks: list[str], *, batch: int = 2, input_size: int | None = None,
                seed: int = 0, tol: float = DEFAULT_TOL, overrides: dict | None = None) -> list[dict]:
    """One record per pair of `frameworks` for model `name` built with the knob `overrides`."""
    if len(frameworks) < 2:
        raise ValueError(f"a cross-check compares two frameworks or more; got {frameworks}")
    spec = zoo.get_spec(name)
    overrides = dict(overrides or {})
    size = input_size or spec.input_size[1]
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((batch, spec.in_channels, size, size)).astype(np.float32)
    reference_backend = zoo.backend(zoo.REFERENCE_FRAMEWORK)
    reference = reference_backend.randomize(zoo.create_model(name, zoo.REFERENCE_FRAMEWORK, **overrides), seed=seed)
    weights = reference_backend.export_weights(reference)
    outputs: dict[str, np.ndarray] = {}
    errors: dict[str, str] = {}
    seconds: dict[str, float] = {}
    for framework in frameworks:
        start = time.perf_counter()
        try:
            if not can_build(framework, name):
                raise RuntimeError(f"{framework} has no builder for the {spec.family} family here")
            backend = zoo.backend(framework)
            if framework == zoo.REFERENCE_FRAMEWORK:
                model = reference
            else:
                model = zoo.create_model(name, framework, **overrides)
                backend.load_weights(model, weights)
            outputs[framework] = np.asarray(backend.predict(model, images))
            del model
        except Exception as error:  # noqa: BLE001  (recorded; the other frameworks still run)
            errors[framework] = f"{type(error).__name__}: {error}"
        seconds[framework] = time.perf_counter() - start
    records = []
    for a, b in itertools.combinations(frameworks, 2):
        record = {"model": name, "overrides": overrides, "a": a, "b": b, "batch_size": batch, "input_size": size,
                  "seed": seed, "tol": tol,
                  "rel_error": None, "max_abs_error": None, "top1_agreement": None, "ok": False, "error": None}
        failed = [f"{fw}: {errors[fw]}" for fw in (a, b) if fw in errors]
        if failed:
            record["error"] = "; ".join(failed)
        else:
            got, expected = outputs[a], outputs[b]
            if got.shape != expected.shape:
                record["error"] = f"output shapes differ: {a} {got.shape}, {b} {expected.shape}"
            else:
                record["rel_error"] = relative_error(got, expected)
                record["max_abs_error"] = float(np.max(np.abs(got - expected)))
                record["top1_agreement"] = float(np.mean(got.argmax(1) == expected.argmax(1)))
                record["ok"] = bool(np.isfinite(record["rel_error"]) and record["rel_error"] <= tol)
        records.append(record)
    for record in records:
        record["seconds"] = {fw: round(seconds[fw], 3) for fw in (record["a"], record["b"]) if fw}
    return records


def release_memory(frameworks: list[str]) -> None:
    """Drop what each framework keeps between models (graphs, caches), so `--all` runs in bounded memory."""
    import gc

    for framework in frameworks:
        if zoo.FRAMEWORKS[framework].package in sys.modules:  # only those already running here
            zoo.backend(framework).release_memory()
    gc.collect()


def status(record: dict) -> str:
    if record["error"]:
        return "ERROR"
    if not record["ok"]:
        return "FAIL"
    if record["top1_agreement"] is not None and record["top1_agreement"] < 1:
        return "ok (top-1 near tie)"
    return "ok"


def table(records: list[dict]) -> str:
    rows = [("model", "pair", "rel. error", "max abs error", "top-1 agree", "status")]
    for r in records:
        pair = f"{r['a']} vs {r['b']}" if r["b"] else r["a"]
        label = knob_label(r.get("overrides") or {})
        agree = "-" if r["top1_agreement"] is None else f"{r['top1_agreement']:.0%}"
        rows.append((f"{r['model']} ({label})" if label else r["model"], pair, "-" if r["rel_error"] is None else f"{r['rel_error']:.2e}",
                     "-" if r["max_abs_error"] is None else f"{r['max_abs_error']:.2e}", agree, status(r)))
    return format_table(rows, align="llrrrl")


def crosscheck(names: list[str], frameworks: list[str], *, batch: int = 2, input_size: int | None = None,
               seed: int = 0, tol: float = DEFAULT_TOL, sizes: dict[str, int] | None = None,
               overrides: dict | None = None, show_progress: bool = True) -> list[dict]:
    if len(frameworks) < 2:
        raise ValueError(f"a cross-check compares two frameworks or more; got {frameworks}")
    overrides = dict(overrides or {})
    records = []
    with Progress(len(names), "crosscheck", enabled=show_progress) as progress:
        for name in names:
            progress.describe(name)
            size = (sizes or {}).get(name) or input_size_for(name, input_size, overrides)
            try:
                found = check_model(name, frameworks, batch=batch, input_size=size, seed=seed, tol=tol,
                                    overrides=overrides)
            except Exception as error:  # noqa: BLE001  (the reference itself failed)
                found = [{"model": name, "overrides": overrides, "a": zoo.REFERENCE_FRAMEWORK, "b": None,
                          "ok": False, "rel_error": None, "max_abs_error": None, "top1_agreement": None, "tol": tol,
                          "batch_size": batch, "input_size": size, "seed": seed,
                          "error": f"{type(error).__name__}: {error}"}]
            records += found
            release_memory(frameworks)
            worst = max((r["rel_error"] or 0.0 for r in found), default=0.0)
            progress.step(f"{name}: worst relative error {worst:.1e}, "
                          f"{sum(not r['ok'] for r in found)} failing pair(s)")
    return records


def run(args: argparse.Namespace) -> int:
    names = selected_models(args)
    frameworks = resolve_frameworks(args.frameworks)
    if len(frameworks) < 2:
        given = "--frameworks names" if args.frameworks else "installed here is"
        raise UsageError(f"crosscheck compares frameworks with each other and needs two or more; {given} only "
                         f"{frameworks[0]} (e.g. --frameworks {','.join(list(zoo.FRAMEWORKS)[:2])})")
    if not framework_installed(zoo.REFERENCE_FRAMEWORK):
        raise UsageError(f"crosscheck takes its random weights from {zoo.FRAMEWORKS[zoo.REFERENCE_FRAMEWORK].title}, "
                         "which is not installed here")
    [overrides] = knob_variants(args.knobs)
    for name in names:  # bad knobs, sizes and paths fail before any work
        check_knobs(name, overrides)
        input_size_for(name, args.input_size, overrides)
    if args.json:
        writable_file(args.json)
    records = crosscheck(names, frameworks, batch=args.batch_size, input_size=args.input_size, seed=args.seed,
                         tol=args.tol, overrides=overrides)
    print(table(records))
    failing = [r for r in records if not r["ok"]]
    worst = max((r["rel_error"] for r in records if r["rel_error"] is not None), default=None)
    print(f"\n{len(names)} model(s), {len(records)} pair(s), tolerance {args.tol:g} (relative); "
          f"worst relative error {fmt_num(worst)}; {len(failing)} failing")
    if args.json:
        write_json(args.json, {"tolerance": args.tol, "frameworks": frameworks, "overrides": overrides,
                               "records": records})
        print(f"results written to {args.json}")
    if failing:
        print("crosscheck FAILED: " + ", ".join(sorted({r["model"] for r in failing})), file=sys.stderr)
        return 1
    return 0
