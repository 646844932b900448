"""`crosscheck`: the same random weights and inputs in every framework, every pair of outputs compared.

The reference framework's model (`zoo.REFERENCE_FRAMEWORK`, whose names and layouts the canonical
weights are) gets random values in every parameter and buffer (BatchNorm statistics and affine terms
included: defaults of 0 and 1 would hide mapping errors), the weights travel to the other frameworks
through the canonical format, and each framework predicts in inference mode.

BatchNorm statistics are then set from a few random batches (`--bn-stats batches`, the default), as a
trained network has them: random statistics leave each layer off its intended scale, so that deep
networks' activations shrink or grow layer after layer and their rounding is not the one users meet.

float32 rounding alone moves a deep network's logits by more than 1e-4 (ResNet-152 at 224x224), so
each pair is judged against max(--tol, k x noise floor): the floor is the reference framework's own
float32 result against its float64 result on the same weights and inputs, the error a correct float32
implementation makes by rounding alone. Every record says which bound applied.
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time

import numpy as np

import zoo

from .files import writable_file, write_json
from .frameworks import can_build, framework_installed, resolve_frameworks
from .knobs import add_set_option, check_knobs, input_size_for, knob_label, knob_variants
from .options import (UsageError, add_batch_size_option, add_frameworks_option, add_input_size_option,
                      add_json_option, add_models_arguments, add_seed_option, add_tol_option, non_negative_float,
                      selected_models)
from .tables import fmt_num, format_table
from .progress import Progress

DEFAULT_TOL = 1e-4
# k of the bound max(--tol, k x floor). Each framework's float32 result lies about one floor from the
# exact one, and two of them may lie on opposite sides, 2 floors apart; where the floor decides (ResNet-152,
# SE-ResNet-152 at 224x224) pairs were measured at 0.8 to 1.0 floors, so 5 leaves room for kernels that
# round more than the reference's. A layout or mapping mistake moves the logits by 1e-2 or more; where
# 5 floors exceed that, float32 itself cannot tell such a mistake from rounding. TensorFlow's float32
# EfficientNets lie 3 (B0) to 8 (B7) floors from the others, its own float32 rounding being larger (the
# two agree to 1e-14 in float64): --tol covers them, up to 4.1e-5 at B7's 600x600.
NOISE_FACTOR = 5.0
TOL_BOUND, FLOOR_BOUND = "tol", "k x floor"  # the `bound_source` of a record
# Where BatchNorm statistics come from: forward passes over random batches, or random values alone.
BN_STATS = ("batches", "random")
CALIBRATION_BATCHES, CALIBRATION_BATCH_SIZE = 2, 8


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "crosscheck", help="same random weights and inputs in every framework; compare every pair",
        description="The reference framework's weights randomised (BatchNorm statistics from random batches), "
                    "carried to the other frameworks through the canonical format, the same inputs; every pair of "
                    "frameworks compared by relative error (||a-b|| / ||b||), max absolute error and top-1 "
                    "agreement, and judged against max(--tol, k x noise floor), the floor being the reference "
                    "framework's float32 result against its float64 one. "
                    "Exit status 1 when any pair exceeds its bound or fails to run.")
    add_models_arguments(parser)
    add_frameworks_option(parser)
    add_tol_option(parser, DEFAULT_TOL, "between two frameworks' outputs, whatever the noise floor")
    parser.add_argument("--noise-factor", type=non_negative_float, default=NOISE_FACTOR, metavar="K",
                        help=f"k of the bound max(--tol, k x noise floor); 0 judges by --tol alone "
                             f"(default {NOISE_FACTOR:g})")
    parser.add_argument("--bn-stats", choices=BN_STATS, default=BN_STATS[0],
                        help=f"BatchNorm running statistics: taken from {CALIBRATION_BATCHES} random batches of "
                             f"{CALIBRATION_BATCH_SIZE} images (as a trained network has them), or random values "
                             "(default batches)")
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


def bound_for(tol: float, noise_floor: float | None, noise_factor: float = NOISE_FACTOR) -> tuple[float, str]:
    """(the largest relative error a pair may show, which bound that is): max(tol, k x floor)."""
    if noise_floor is None or not np.isfinite(noise_floor) or noise_factor * noise_floor <= tol:
        return tol, TOL_BOUND
    return noise_factor * noise_floor, FLOOR_BOUND


def random_reference(name: str, overrides: dict, rng: np.random.Generator, *, seed: int, input_size: int,
                     bn_stats: str = "batches"):
    """The reference framework's model with random weights, its BatchNorm statistics from `bn_stats`."""
    if bn_stats not in BN_STATS:
        raise ValueError(f"bn_stats must be one of {', '.join(BN_STATS)}; got {bn_stats!r}")
    spec = zoo.get_spec(name)
    backend = zoo.backend(zoo.REFERENCE_FRAMEWORK)
    model = backend.randomize(zoo.create_model(name, zoo.REFERENCE_FRAMEWORK, **overrides), seed=seed)
    if bn_stats == "batches":
        shape = (CALIBRATION_BATCH_SIZE, spec.in_channels, input_size, input_size)
        batches = [rng.standard_normal(shape).astype(np.float32) for _ in range(CALIBRATION_BATCHES)]
        backend.calibrate_batchnorm(model, batches)
    return model


def reference_float64(name: str, overrides: dict, weights: dict, images: np.ndarray) -> np.ndarray:
    """The reference framework's logits in float64 on the same (float32) weights and inputs."""
    backend = zoo.backend(zoo.REFERENCE_FRAMEWORK)
    model = zoo.create_model(name, zoo.REFERENCE_FRAMEWORK, dtype="float64", **overrides)
    backend.load_weights(model, weights)
    return np.asarray(backend.predict(model, images.astype(np.float64)))


def check_model(name: str, frameworks: list[str], *, batch: int = 2, input_size: int | None = None,
                seed: int = 0, tol: float = DEFAULT_TOL, overrides: dict | None = None,
                noise_factor: float = NOISE_FACTOR, bn_stats: str = "batches") -> list[dict]:
    """One record per pair of `frameworks` for model `name` built with the knob `overrides`, each judged
    against max(tol, noise_factor x the reference framework's float32 noise floor on these weights)."""
    if len(frameworks) < 2:
        raise ValueError(f"a cross-check compares two frameworks or more; got {frameworks}")
    if not (np.isfinite(noise_factor) and noise_factor >= 0):
        raise ValueError(f"noise_factor must be a finite number >= 0; got {noise_factor!r}")
    spec = zoo.get_spec(name)
    overrides = dict(overrides or {})
    size = input_size or spec.input_size[1]
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((batch, spec.in_channels, size, size)).astype(np.float32)
    reference_backend = zoo.backend(zoo.REFERENCE_FRAMEWORK)
    reference = random_reference(name, overrides, rng, seed=seed, input_size=size, bn_stats=bn_stats)
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
    floor, floor_note = None, None
    start = time.perf_counter()
    try:
        if zoo.REFERENCE_FRAMEWORK in errors:
            raise RuntimeError(f"no float32 result of {zoo.REFERENCE_FRAMEWORK} to measure it on")
        reference_output = outputs.get(zoo.REFERENCE_FRAMEWORK)
        if reference_output is None:  # the reference is not one of the frameworks compared
            reference_output = np.asarray(reference_backend.predict(reference, images))
        floor = relative_error(reference_output, reference_float64(name, overrides, weights, images))
    except Exception as error:  # noqa: BLE001  (the pairs are still judged, against --tol alone)
        floor_note = f"noise floor not measured: {type(error).__name__}: {error}"
    floor_seconds = time.perf_counter() - start
    del reference
    bound, bound_source = bound_for(tol, floor, noise_factor)
    records = []
    for a, b in itertools.combinations(frameworks, 2):
        record = {"model": name, "overrides": overrides, "a": a, "b": b, "batch_size": batch, "input_size": size,
                  "seed": seed, "tol": tol, "bn_stats": bn_stats, "noise_floor": floor, "noise_factor": noise_factor,
                  "bound": bound, "bound_source": bound_source,
                  "rel_error": None, "max_abs_error": None, "top1_agreement": None, "ok": False, "error": None}
        if floor_note:
            record["noise_floor_note"] = floor_note
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
                record["ok"] = bool(np.isfinite(record["rel_error"]) and record["rel_error"] <= bound)
        records.append(record)
    for record in records:
        record["seconds"] = {fw: round(seconds[fw], 3) for fw in (record["a"], record["b"]) if fw}
        record["noise_floor_seconds"] = round(floor_seconds, 3)
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


def _sci(value: float | None) -> str:
    return "-" if value is None else f"{value:.2e}"


def table(records: list[dict]) -> str:
    rows = [("model", "pair", "rel. error", "noise floor", "bound", "max abs error", "top-1 agree", "status")]
    for r in records:
        pair = f"{r['a']} vs {r['b']}" if r["b"] else r["a"]
        label = knob_label(r.get("overrides") or {})
        agree = "-" if r["top1_agreement"] is None else f"{r['top1_agreement']:.0%}"
        bound = "-" if r.get("bound") is None else f"{r['bound']:.2e} ({r['bound_source']})"
        rows.append((f"{r['model']} ({label})" if label else r["model"], pair, _sci(r["rel_error"]),
                     _sci(r.get("noise_floor")), bound, _sci(r["max_abs_error"]), agree, status(r)))
    return format_table(rows, align="llrrrrrl")


def crosscheck(names: list[str], frameworks: list[str], *, batch: int = 2, input_size: int | None = None,
               seed: int = 0, tol: float = DEFAULT_TOL, sizes: dict[str, int] | None = None,
               overrides: dict | None = None, show_progress: bool = True, noise_factor: float = NOISE_FACTOR,
               bn_stats: str = "batches") -> list[dict]:
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
                                    overrides=overrides, noise_factor=noise_factor, bn_stats=bn_stats)
            except Exception as error:  # noqa: BLE001  (the reference itself failed)
                found = [{"model": name, "overrides": overrides, "a": zoo.REFERENCE_FRAMEWORK, "b": None,
                          "ok": False, "rel_error": None, "max_abs_error": None, "top1_agreement": None, "tol": tol,
                          "batch_size": batch, "input_size": size, "seed": seed, "bn_stats": bn_stats,
                          "noise_floor": None, "noise_factor": noise_factor, "bound": None, "bound_source": None,
                          "error": f"{type(error).__name__}: {error}"}]
            records += found
            release_memory(frameworks)
            worst = max((r["rel_error"] or 0.0 for r in found), default=0.0)
            progress.step(f"{name}: worst relative error {worst:.1e}, "
                          f"{sum(not r['ok'] for r in found)} failing pair(s)")
    return records


def summary_line(records: list[dict], tol: float, noise_factor: float) -> str:
    models = len(dict.fromkeys(r["model"] for r in records))
    failing = sum(not r["ok"] for r in records)
    worst = max((r["rel_error"] for r in records if r["rel_error"] is not None), default=None)
    by_floor = sum(r.get("bound_source") == FLOOR_BOUND for r in records)
    return (f"{models} model(s), {len(records)} pair(s), each judged by max(tol {tol:g}, {noise_factor:g} x noise "
            f"floor) of the relative error, {by_floor} by the floor; worst relative error {fmt_num(worst)}; "
            f"{failing} failing")


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
                         tol=args.tol, overrides=overrides, noise_factor=args.noise_factor, bn_stats=args.bn_stats)
    print(table(records))
    failing = [r for r in records if not r["ok"]]
    print("\n" + summary_line(records, args.tol, args.noise_factor))
    if args.json:
        write_json(args.json, {"tolerance": args.tol, "noise_factor": args.noise_factor, "bn_stats": args.bn_stats,
                               "frameworks": frameworks, "overrides": overrides, "records": records})
        print(f"results written to {args.json}")
    if failing:
        print("crosscheck FAILED: " + ", ".join(sorted({r["model"] for r in failing})), file=sys.stderr)
        return 1
    return 0
