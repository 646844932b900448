"""`zoo-compare bench`: its options, checked before any work and made into BenchOptions, and `run_bench`,
which runs the cells a folder does not hold yet and writes the report, however the run ends."""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace

import zoo

from ..files import writable_dir
from ..frameworks import resolve_frameworks
from ..knobs import add_set_option, check_knobs, input_size_for, knob_variants
from ..options import (UsageError, add_batch_size_option, add_frameworks_option, add_input_size_option,
                       add_models_arguments, add_out_option, add_overwrite_option, positive_float, positive_int,
                       selected_models, split_list)
from .cells import cell_key, plan_cells
from .options import DEVICES, MODES, BenchOptions
from .output import OutputLock, previous_machine, previous_results, read_machine
from .schedule import Bench, Terminated, sigterm_stops_cleanly

# Exit statuses of an interrupted run, the shell's 128 + signal number.
INTERRUPTED_STATUS, TERMINATED_STATUS = 130, 143


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "bench", help="benchmark models across frameworks, batch sizes and modes",
        description="For every (model, framework, batch size, mode) cell: images/s, latency median and spread, "
                    "compile/warm-up time, peak memory, achieved GFLOP/s and its share of the machine's "
                    "measured peak (the best of the frameworks' float32 matrix-product probes on that device). "
                    "Results go to DIR/results.json and DIR/results.csv after every cell, then DIR/report.md "
                    "and PNG plots.")
    add_models_arguments(parser)
    add_frameworks_option(parser)
    add_batch_size_option(parser, (1, 8, 32), many=True)
    parser.add_argument("--modes", default="infer,train", help="infer, train or both (default infer,train)")
    parser.add_argument("--device", default="auto", choices=DEVICES,
                        help="auto: each framework's GPU when it sees one, else CPU (default)")
    parser.add_argument("--repeat", type=positive_int, default=5, help="timed rounds per cell (default 5)")
    parser.add_argument("--min-time", type=positive_float, default=0.5, metavar="SECONDS",
                        help="least duration of one timed round; sets the iterations per round (default 0.5)")
    add_input_size_option(parser)
    parser.add_argument("--threads", type=positive_int, metavar="N",
                        help="intra-op threads of every framework (default: each framework's own choice)")
    parser.add_argument("--compile", action="store_true",
                        help="each framework's optional compiler, where it has one (see the method column)")
    parser.add_argument("--amp", choices=("auto", "on", "off"), default="auto",
                        help="mixed precision on GPU where the framework supports it (auto: on for GPU)")
    parser.add_argument("--channels-last", choices=("auto", "on", "off"), default="auto",
                        help="memory format, for the frameworks that have the choice (auto: the faster of the "
                             "two by a short trial on CPU)")
    parser.add_argument("--reference", action="store_true",
                        help="also time each framework's own implementation of the model (its model zoo or "
                             "applications) where one exists and is installed")
    add_out_option(parser, "runs/bench")
    parser.add_argument("--resume", action="store_true", help="skip the cells already in DIR/results.json")
    parser.add_argument("--retry-errors", action="store_true", help="with --resume, run failed cells again")
    add_overwrite_option(parser)
    parser.add_argument("--timeout", type=positive_int, default=1800, metavar="SECONDS",
                        help="longest wait for one step of a cell before its worker is stopped (default 1800)")
    parser.add_argument("--fresh-workers", action="store_true",
                        help="a new worker process for every (model, batch size, mode): exact peak memory per "
                             "cell, at the cost of the frameworks' start-up time")
    parser.add_argument("--no-plots", action="store_true", help="write report.md but no PNG plots")
    add_set_option(parser, sweep=True)
    parser.set_defaults(run=run)


def run_bench(options: BenchOptions | None = None, /, **fields) -> tuple[list[dict], dict]:
    """Run the cells not yet done, write results, report and plots; return (records, machine).

    `fields` are BenchOptions fields by name: alone they make the options (`run_bench(models=[...], ...)`),
    beside `options` they replace its fields. A folder that already holds results needs `resume` (keep them,
    run the missing cells) or `overwrite` (replace them); another bench writing into `out` at the same time is
    refused (UsageError). On SIGTERM or Ctrl-C (Terminated / KeyboardInterrupt, raised again after the
    clean-up) the workers are stopped and the report is made of the cells measured so far."""
    from .. import report

    options = replace(options, **fields) if options is not None else BenchOptions(**fields)
    out = options.out
    if options.resume and options.overwrite:
        raise UsageError("--resume keeps the cells already in the folder and --overwrite replaces them; give one")
    cells = plan_cells(options.models, options.frameworks, options.batch_sizes, options.modes, device=options.device,
                       input_size=options.input_size, compile=options.compile, amp=options.amp,
                       channels_last=options.channels_last, reference=options.reference,
                       min_round_s=options.min_round_s, warmup_s=options.warmup_s, threads=options.threads,
                       variants=options.variants)
    with OutputLock(out), sigterm_stops_cleanly():
        existing = previous_results(out, resume=options.resume, overwrite=options.overwrite)
        done = {cell_key(r) for r in existing if not (options.retry_errors and r.get("status") == "error")}
        todo = [c for c in cells if cell_key(c) not in done]
        if options.resume and len(todo) < len(cells):
            print(f"resuming: {len(cells) - len(todo)} of {len(cells)} cell(s) already in {out / 'results.json'}",
                  file=sys.stderr)
        bench = Bench(options, records=existing, machine=previous_machine(out) if options.resume else None)
        try:
            if todo:
                machine = bench.probe(sorted({c["framework"] for c in todo}, key=list(zoo.FRAMEWORKS).index))
                if options.device == "gpu" and not any(m.get("device") not in (None, "cpu") for m in machine.values()):
                    reasons = "; ".join(f"{fw}: {m.get('unavailable')}" for fw, m in machine.items())
                    raise UsageError(f"--device gpu, but no framework sees a GPU here ({reasons})")
                bench.run(todo)
            bench.save()
        except KeyboardInterrupt:
            # Every finished cell is already in results.json; stop the workers before anything slower.
            bench.close(kill=True)
            report.write_report(out, bench.records, read_machine(out), plots=options.plots)
            raise
        finally:
            bench.close()
        machine = read_machine(out)
        report.write_report(out, bench.records, machine, plots=options.plots)
    return bench.records, machine


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    """The command line's options, every model, knob and size checked and the output folder made writable,
    before any work."""
    models = selected_models(args)
    frameworks = resolve_frameworks(args.frameworks)
    modes = split_list(args.modes)
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise UsageError(f"--modes must be among {', '.join(MODES)}; got {args.modes!r}")
    variants = knob_variants(args.knobs, sweep=True)
    for model in models:
        for overrides in variants:
            check_knobs(model, overrides)
            input_size_for(model, args.input_size, overrides)
    return BenchOptions(
        models=models, frameworks=frameworks, batch_sizes=args.batch_size, modes=list(dict.fromkeys(modes)),
        variants=variants, input_size=args.input_size, reference=args.reference, device=args.device,
        compile=args.compile, amp=args.amp, channels_last=args.channels_last, threads=args.threads,
        repeat=args.repeat, min_round_s=args.min_time, timeout=args.timeout, fresh_workers=args.fresh_workers,
        out=writable_dir(args.out), resume=args.resume, retry_errors=args.retry_errors, overwrite=args.overwrite,
        plots=not args.no_plots)


def run(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    out = options.out
    try:
        records, machine = run_bench(options)
    except KeyboardInterrupt as stop:
        why = "terminated" if isinstance(stop, Terminated) else "interrupted"
        print(f"zoo-compare: {why}; the cells measured so far are in {out / 'results.json'} and {out / 'report.md'} "
              f"(--resume runs the rest)", file=sys.stderr)
        return TERMINATED_STATUS if isinstance(stop, Terminated) else INTERRUPTED_STATUS
    from .. import report

    print(report.console_summary(records, machine))
    print(f"\nresults: {out / 'results.json'}, {out / 'results.csv'}; report: {out / 'report.md'}")
    failed = [r for r in records if r.get("status") == "error"]
    if failed:
        print(f"{len(failed)} cell(s) failed; their errors are in the results and the report", file=sys.stderr)
        return 1
    return 0
