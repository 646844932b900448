"""The default tour (`python -m compare` with no arguments): a cross-check of one model per family, then a
short CPU inference benchmark of four models (one small, one ResNet, one DenseNet, one mobile network)
in every installed framework. Models are picked from whatever is registered, so the tour works on any
subset of the zoo; a missing pick is replaced or left out, and the tour says which.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import zoo

from . import crosscheck as crosscheck_module
from .bench import run_bench
from . import report
from .files import writable_dir, write_json
from .frameworks import can_build, resolve_frameworks
from .options import PROG, UsageError

# Named defaults, preferred as a family's representative when registered.
PREFERRED = ("lenet5", "alexnet", "vgg16", "nin", "googlenet", "resnet18", "se_resnet50", "densenet121",
             "mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "shufflenet_v1_g3", "shufflenet_v2_x1_0",
             "efficientnet_b0")
# (role, preferred models, family name fragments that qualify) of the benchmark's four models.
BENCH_ROLES = (
    ("small", ("lenet5", "alexnet", "nin"), ("lenet", "alexnet", "nin")),
    ("ResNet", ("resnet50", "resnet18", "resnet34"), ("resnet",)),
    ("DenseNet", ("densenet121", "densenet169"), ("densenet",)),
    ("mobile", ("mobilenet_v2", "mobilenet_v3_large", "shufflenet_v2_x1_0", "mobilenet_v1", "efficientnet_b0"),
     ("mobilenet", "shufflenet", "efficientnet")),
)
CROSSCHECK_SIZE = 96   # the cross-check runs each model at this size where the model allows it
BENCH_BATCH = 4
BENCH_REPEAT = 3
BENCH_MIN_ROUND_S = 0.3


def representatives() -> list[str]:
    """One model per registered family: its preferred default when registered, else its first model."""
    names = zoo.list_models()
    chosen: dict[str, str] = {}
    for name in names:
        family = zoo.get_spec(name).family
        if family not in chosen or (name in PREFERRED and chosen[family] not in PREFERRED):
            chosen[family] = name
    return list(chosen.values())


def bench_models() -> tuple[list[str], list[str]]:
    """The four benchmark models, and notes on any role that had to be filled otherwise or left out."""
    names = zoo.list_models()
    picked, notes = [], []
    for role, preferred, families in BENCH_ROLES:
        candidates = [n for n in preferred if n in names]
        if candidates and candidates[0] != preferred[0]:
            notes.append(f"{role}: {preferred[0]} is not registered; using {candidates[0]}")
        if not candidates:
            candidates = [n for n in names if any(f in zoo.get_spec(n).family for f in families)]
            if candidates:
                notes.append(f"{role}: none of {', '.join(preferred)} is registered; using {candidates[0]}")
        candidates = [n for n in candidates if n not in picked]
        if not candidates:
            notes.append(f"{role}: no {role} model is registered; left out of the benchmark")
            continue
        picked.append(candidates[0])
    return picked, notes


def crosscheck_size(name: str) -> int:
    signature = zoo.get_spec(name).signature()
    if signature.fixed_size:
        return signature.fixed_size
    return min(zoo.get_spec(name).input_size[1], max(signature.min_size, CROSSCHECK_SIZE))


def run_tour(out: str | Path = "runs/tour") -> int:
    start = time.perf_counter()
    frameworks = resolve_frameworks(None)
    out = writable_dir(out)
    print(f"Classic CNN Zoo tour: {len(zoo.list_models())} registered models, frameworks here: "
          f"{', '.join(frameworks)}\n")

    status = 0
    models = representatives()
    reference = zoo.FRAMEWORKS[zoo.REFERENCE_FRAMEWORK].title
    if zoo.REFERENCE_FRAMEWORK in frameworks and len(frameworks) > 1:
        sizes = {name: crosscheck_size(name) for name in models}
        print(f"1. Cross-check, one model per family ({len(models)}): random {reference} weights carried to every "
              f"framework, same inputs, every pair compared")
        records = crosscheck_module.crosscheck(models, frameworks, batch=2, sizes=sizes)
        print(crosscheck_module.table(records))
        failing = [r for r in records if not r["ok"]]
        print(crosscheck_module.summary_line(records, crosscheck_module.DEFAULT_TOL, crosscheck_module.NOISE_FACTOR))
        write_json(out / "crosscheck.json", {"tolerance": crosscheck_module.DEFAULT_TOL,
                                             "noise_factor": crosscheck_module.NOISE_FACTOR, "records": records})
        status = 1 if failing else 0
    elif zoo.REFERENCE_FRAMEWORK not in frameworks:
        print(f"1. Cross-check skipped: it takes its random weights from {reference}, which is not installed here")
    else:
        print(f"1. Cross-check skipped: only {reference} is installed here, and it compares frameworks with each other")

    picked, notes = bench_models()
    print(f"\n2. CPU inference benchmark, batch {BENCH_BATCH}, default input sizes: {', '.join(picked)}")
    for note in notes:
        print(f"   note: {note}")
    buildable = [fw for fw in frameworks if any(can_build(fw, m) for m in picked)]
    if not picked or not buildable:
        print("   nothing to benchmark")
        return status
    records, machine = run_bench(models=picked, frameworks=buildable, batch_sizes=[BENCH_BATCH], modes=["infer"],
                                 device="cpu", repeat=BENCH_REPEAT, out=out / "bench",
                                 min_round_s=BENCH_MIN_ROUND_S, overwrite=True)  # each tour is a new one
    print(report.console_summary(records, machine))
    if any(r.get("status") == "error" for r in records):
        status = status or 1
    print(f"\nfiles: {out / 'crosscheck.json'}; {out / 'bench' / 'results.json'}, results.csv, report.md, "
          f"images_per_sec.png, speed_vs_gflops.png")
    print(f"tour finished in {time.perf_counter() - start:.0f} s. More: `python -m compare --help`.")
    return status


if __name__ == "__main__":
    try:
        sys.exit(run_tour())
    except UsageError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        sys.exit(2)
