"""`bench`: speed, latency, memory and achieved FLOP/s of every (model, framework, batch size, mode) cell.

Each framework runs in its own worker process (`worker.py`) the way its experts run it; the parent
only schedules. For one (model, batch size, mode) the timed rounds of every framework, and with
--reference of each framework's own implementation too (in a worker process of its own), are
interleaved (A, B, A-reference, B-reference, then the same in reverse order, ...), so slow
drifts of the machine (clock ramps, thermal throttling) hit all of them alike and show up as spread,
instead of favouring whichever cell happens to be measured second. Results are written atomically
after every cell, JSON first, then CSV; the report and plots are made from the JSON at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import selectors
import statistics
import subprocess
import sys
import time
from pathlib import Path

import zoo

from . import flops
from .common import (UsageError, add_batch_size_option, add_frameworks_option, add_input_size_option,
                     add_models_arguments, add_out_option, can_build, fmt_num, input_size_for, positive_float,
                     positive_int, resolve_frameworks, selected_models, split_list, writable_dir, write_csv,
                     write_json)
from zoo.benchtools import PEAK_MAX_REPEAT, PEAK_MIN_REPEAT, PEAK_MIN_S

from .progress import Progress
from .worker import GPU_WARMUP_CHUNK_S, GPU_WARMUP_MAX_S, GPU_WARMUP_S, GPU_WARMUP_SETTLE

MODES = ("infer", "train")
DEVICES = ("auto", "cpu", "gpu")
# A training step is forward + backward, the backward about twice the forward's multiply-adds.
TRAIN_FLOP_FACTOR = 3
CSV_COLUMNS = (
    "model", "framework", "implementation", "mode", "batch_size", "input_size", "device", "status",
    "images_per_sec", "latency_ms", "latency_p25_ms", "latency_p75_ms", "latency_min_ms", "latency_max_ms",
    "compile_s", "warmup_s", "peak_memory_mb", "gflops", "gflops_per_sec", "framework_peak_gflops_per_sec",
    "machine_peak_gflops_per_sec", "peak_share", "precision", "method", "error",
)


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
    parser.add_argument("--timeout", type=positive_int, default=1800, metavar="SECONDS",
                        help="longest wait for one step of a cell before its worker is stopped (default 1800)")
    parser.add_argument("--fresh-workers", action="store_true",
                        help="a new worker process for every (model, batch size, mode): exact peak memory per "
                             "cell, at the cost of the frameworks' start-up time")
    parser.add_argument("--no-plots", action="store_true", help="write report.md but no PNG plots")
    parser.set_defaults(run=run)


# ---------------------------------------------------------------- the plan

def cell_key(record: dict) -> tuple:
    return (record["model"], record["framework"], record.get("implementation", "zoo"), record["mode"],
            int(record["batch_size"]), int(record["input_size"]), record.get("device_requested", "auto"),
            bool(record.get("compile", False)), record.get("amp", "auto"), record.get("threads_requested"))


def plan_cells(models: list[str], frameworks: list[str], batch_sizes: list[int], modes: list[str], *,
               device: str = "auto", input_size: int | None = None, compile: bool = False, amp: str = "auto",
               channels_last: str = "auto", reference: bool = False, min_round_s: float = 0.5,
               warmup_s: float = 0.2, threads: int | None = None) -> list[dict]:
    """Every cell, grouped so that the frameworks of one (model, batch size, mode) are adjacent.

    With `reference`, each framework's backend is imported here to look up its own implementations."""
    cells = []
    for model in models:
        spec = zoo.get_spec(model)
        size = input_size_for(model, input_size)
        implementations = ["zoo", "reference"] if reference else ["zoo"]
        for batch in batch_sizes:
            for mode in modes:
                for implementation in implementations:
                    for framework in frameworks:
                        ref = variant = None
                        if implementation == "reference":
                            backend = zoo.backend(framework)
                            ref = backend.reference_name(model)
                            if ref is None:
                                continue
                            variant = backend.reference_variant(model)
                        cells.append({
                            "model": model, "family": spec.family, "framework": framework,
                            "implementation": implementation, "reference_name": ref,
                            "reference_variant": variant,
                            "mode": mode,
                            "batch_size": batch, "input_size": size, "num_classes": spec.num_classes,
                            "device_requested": device, "compile": compile, "amp": amp,
                            "channels_last": channels_last, "min_round_s": min_round_s, "warmup_s": warmup_s,
                            "threads_requested": threads,
                        })
    return cells


# ---------------------------------------------------------------- workers

class WorkerDied(RuntimeError):
    pass


class Worker:
    """A framework's worker process, spoken to in JSON lines."""

    def __init__(self, framework: str, device: str, log_path: Path, timeout: float, threads: int | None = None) -> None:
        self.framework, self.device, self.timeout = framework, device, timeout
        self.log = open(log_path, "a", buffering=1)
        package_root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)  # frameworks that size their pools by it read it when they start
        self.process = subprocess.Popen(
            [sys.executable, "-m", "compare.worker", framework, device, str(threads or 0)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env, bufsize=1)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.process.stdout, selectors.EVENT_READ)
        self.info = self._read()
        if not self.info.get("ok"):
            self.close()
            raise WorkerDied(f"{framework} worker could not start: {self.info.get('error')}")

    def _read(self) -> dict:
        if not self.selector.select(self.timeout):
            self.kill()
            raise WorkerDied(f"no answer from the {self.framework} worker within {self.timeout:.0f} s; stopped it")
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            why = (f"killed by signal {-code}" + (" (likely out of memory)" if code == -9 else "")
                   if code < 0 else f"exit status {code}")
            raise WorkerDied(f"the {self.framework} worker process died ({why}); see {self.log.name}")
        return json.loads(line)

    def ask(self, op: str, **payload) -> dict:
        if self.process.poll() is not None:
            raise WorkerDied(f"the {self.framework} worker process is gone")
        try:
            self.process.stdin.write(json.dumps({"op": op, **payload}) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            raise WorkerDied(f"the {self.framework} worker process is gone") from None
        return self._read()

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write(json.dumps({"op": "exit"}) + "\n")
                self.process.stdin.flush()
                self.process.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired, OSError):
                self.kill()
        self.selector.close()
        self.log.close()


# ---------------------------------------------------------------- the run

class Bench:
    def __init__(self, out: Path, device: str, *, repeat: int, timeout: float = 1800, show_progress: bool = True,
                 records: list[dict] | None = None, peak_n: int | None = None, threads: int | None = None,
                 fresh_workers: bool = False) -> None:
        self.peak_n, self.threads, self.fresh_workers = peak_n, threads, fresh_workers
        self.cells_in_worker: dict[str, int] = {}
        self.out, self.device, self.repeat, self.timeout = out, device, repeat, timeout
        self.show_progress = show_progress
        self.records: list[dict] = list(records or [])
        self.workers: dict[str, Worker] = {}
        self.machine: dict[str, dict] = {}
        (out / "logs").mkdir(parents=True, exist_ok=True)

    # Workers are started on first use and again after one died. A framework's zoo models and its own
    # reference implementations live in two processes, so that the two cells of one (model, batch size,
    # mode) can both stay prepared and have their timed rounds interleaved.
    @staticmethod
    def worker_key(framework: str, implementation: str = "zoo") -> str:
        return framework if implementation == "zoo" else f"{framework}-{implementation}"

    def worker(self, framework: str, implementation: str = "zoo") -> Worker:
        key = self.worker_key(framework, implementation)
        worker = self.workers.get(key)
        if worker is not None and worker.alive():
            return worker
        worker = Worker(framework, self.device, self.out / "logs" / f"worker-{key}.log", self.timeout, self.threads)
        self.cells_in_worker[key] = 0
        self.workers[key] = worker
        if framework not in self.machine:
            info = dict(worker.info)
            info.pop("ok", None)
            peak = worker.ask("peak", n=self.peak_n) if not info.get("unavailable") else {"ok": False}
            info["peak_gflops_per_sec"] = peak.get("gflops_per_sec")
            if peak.get("amp_gflops_per_sec"):
                info[f"peak_{peak['amp_dtype']}_gflops_per_sec"] = peak["amp_gflops_per_sec"]
                info["amp_peak_gflops_per_sec"] = peak["amp_gflops_per_sec"]
            info["peak_method"] = (f"fastest of {PEAK_MIN_REPEAT}-{PEAK_MAX_REPEAT} float32 {peak.get('n')}x{peak.get('n')} "
                                   f"matrix products (at least {PEAK_MIN_S:g} s in all), 2n^3/t")
            self.machine[framework] = info
            write_json(self.out / "machine.json", self.machine)
        return worker

    def machine_peak(self, device: str | None) -> float | None:
        """The machine's measured float32 peak on `device`: the best of the frameworks' probes there.

        Each framework's probe runs its own BLAS, and one may reach far less of the hardware than the
        framework's convolutions do; the best probe is the truest lower bound on what the machine can do,
        and one yardstick makes the shares of different frameworks comparable."""
        probes = [m["peak_gflops_per_sec"] for m in self.machine.values()
                  if m.get("device") == device and m.get("peak_gflops_per_sec")]
        return max(probes, default=None)

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()
        self.workers.clear()

    def probe(self, frameworks: list[str]) -> dict[str, dict]:
        """Start every framework's worker and report which device each one uses (and why)."""
        for framework in frameworks:
            try:
                self.worker(framework)
            except WorkerDied as error:
                self.machine[framework] = {"unavailable": str(error), "device": None}
        return self.machine

    def save(self) -> None:
        write_json(self.out / "results.json", self.records)
        write_csv(self.out / "results.csv", self.records, CSV_COLUMNS)

    def record(self, cell: dict, **fields) -> dict:
        info = self.machine.get(cell["framework"], {})
        record = {key: cell.get(key) for key in ("model", "family", "framework", "implementation", "reference_name",
                                                 "reference_variant", "mode", "batch_size", "input_size",
                                                 "device_requested", "compile", "amp")}
        record["threads_requested"] = cell.get("threads_requested")
        record.update({
            "device": info.get("device"), "device_note": info.get("device_note"),
            "framework_version": info.get("framework_version"), "threads": info.get("threads"),
            "status": "ok", "error": None, "images_per_sec": None, "latency_ms": None, "peak_memory_mb": None,
            "gflops": None, "gflops_per_sec": None,
            "framework_peak_gflops_per_sec": info.get("peak_gflops_per_sec"),
            "machine_peak_gflops_per_sec": self.machine_peak(info.get("device")),
            "peak_share": None, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        })
        record.update(fields)
        self.records = [r for r in self.records if cell_key(r) != cell_key(record)] + [record]
        self.save()
        return record

    def fail(self, cell: dict, error: str, status: str = "error") -> dict:
        return self.record(cell, status=status, error=error)

    def run_group(self, group: list[dict], progress: Progress) -> None:
        """One (model, batch size, mode) across frameworks and implementations, timed rounds interleaved.

        Every cell of the group is set up (built, first call, warm-up) before any is timed; then each
        round times every cell once, in the plan's order on even rounds and the reverse order on odd
        rounds, so that no cell is systematically the first after a pause or the one after another."""
        active: list[tuple[dict, Worker, dict]] = []
        for cell in group:
            label = f"{cell['model']} {cell['framework']} {cell['mode']} b{cell['batch_size']}"
            if cell["implementation"] == "reference":
                label += " (reference)"
            progress.describe(label)
            try:
                info = self.machine.get(cell["framework"], {})
                if info.get("unavailable") and info.get("device") is None:
                    raise WorkerDied(info["unavailable"])
                worker = self.worker(cell["framework"], cell["implementation"])
                if worker.info.get("unavailable"):
                    raise WorkerDied(worker.info["unavailable"])
                if cell["implementation"] == "zoo" and not can_build(cell["framework"], cell["model"]):
                    reply = {"ok": False, "skipped": f"{cell['framework']} has no builder for the "
                                                     f"{cell['family']} family here"}
                else:
                    reply = worker.ask("setup", cell=cell)
            except WorkerDied as error:
                progress.step(f"{label}: FAILED ({error})")
                self.fail(cell, str(error))
                continue
            if not reply.get("ok"):
                if reply.get("skipped"):
                    self.fail(cell, reply["skipped"], status="skipped")
                    progress.step(f"{label}: skipped ({reply['skipped']})")
                else:
                    self.fail(cell, reply.get("error", "unknown error"))
                    progress.step(f"{label}: FAILED ({reply.get('error')})")
                continue
            key = self.worker_key(cell["framework"], cell["implementation"])
            self.cells_in_worker[key] += 1
            reused = self.cells_in_worker[key] > 1
            active.append((cell, worker, {"setup": reply, "rounds": [], "reused_worker": reused}))
        for round_index in range(self.repeat):
            for entry in round_order(active, round_index):
                cell, worker, state = entry
                try:
                    reply = worker.ask("round", min_round_s=cell["min_round_s"])
                except WorkerDied as error:
                    reply = {"ok": False, "error": str(error)}
                if not reply.get("ok"):
                    active.remove(entry)
                    self.fail(cell, reply.get("error", "unknown error"))
                    progress.step(f"{cell['model']} {cell['framework']}"
                                  f"{' (reference)' if cell['implementation'] == 'reference' else ''}: "
                                  f"FAILED ({reply.get('error')})")
                    continue
                state["rounds"].append(reply["seconds"] / reply["iterations"])
                state["iterations"] = state.get("iterations", 0) + reply["iterations"]
        for cell, worker, state in active:
            try:
                reply = worker.ask("finish")
            except WorkerDied as error:
                reply = {"ok": False, "error": str(error)}
            info = self.machine.get(cell["framework"], {})
            record = self.record(cell, **summarise(cell, state, reply, info, self.machine_peak(info.get("device"))))
            progress.step(f"{cell['model']} {cell['framework']} {cell['mode']} b{cell['batch_size']}"
                          f"{' (reference)' if cell['implementation'] == 'reference' else ''}: "
                          f"{fmt_num(record['images_per_sec'])} images/s")

    def run(self, cells: list[dict]) -> list[dict]:
        groups = group_cells(cells)
        with Progress(len(cells), "bench", enabled=self.show_progress) as progress:
            for group in groups:
                self.run_group(group, progress)
                if self.fresh_workers:
                    self.close()
        return self.records


def group_cells(cells: list[dict]) -> list[list[dict]]:
    """Adjacent cells of the same (model, batch size, mode), zoo and reference alike, as one group."""
    groups: list[list[dict]] = []
    for cell in cells:
        key = (cell["model"], cell["batch_size"], cell["mode"])
        if groups and (groups[-1][0]["model"], groups[-1][0]["batch_size"], groups[-1][0]["mode"]) == key:
            groups[-1].append(cell)
        else:
            groups.append([cell])
    return groups


def round_order(entries: list, round_index: int) -> list:
    """The order in which one round times a group's cells: as planned, reversed every other round."""
    return list(entries) if round_index % 2 == 0 else list(reversed(entries))


TIMING_METHOD = (
    "rounds of N iterations, device synchronised before each clock read, each round preceded by about a tenth "
    "as many untimed iterations; latency = round time / N, median over rounds. The cells of one (model, batch "
    "size, mode) - every framework, zoo and reference implementation each in its own worker process - are all "
    "set up before any is timed, and their rounds interleaved, order reversed every other round. Warm-up "
    "(untimed, after the first call that also runs cudnn.benchmark autotuning): on GPU at least {gpu_s:g} s "
    "in chunks of about {chunk_s:g} s until two consecutive chunks agree within {settle:.0%} (at most "
    "{max_s:g} s), on CPU the requested warm-up time")


def summarise(cell: dict, state: dict, finish: dict, machine: dict, machine_peak: float | None) -> dict:
    """A finished cell's record fields from its setup reply, round timings and memory reply.

    `machine` is the cell's framework's entry of machine.json, `machine_peak` the device's float32 peak."""
    setup, latencies = state["setup"], sorted(state["rounds"])
    median = statistics.median(latencies)
    quartiles = statistics.quantiles(latencies, n=4, method="inclusive") if len(latencies) > 1 else [median] * 3
    images_per_sec = cell["batch_size"] / median
    fields = {
        "images_per_sec": images_per_sec, "latency_ms": median * 1e3,
        "latency_p25_ms": quartiles[0] * 1e3, "latency_p75_ms": quartiles[2] * 1e3,
        "latency_min_ms": latencies[0] * 1e3, "latency_max_ms": latencies[-1] * 1e3,
        "spread_pct": (latencies[-1] - latencies[0]) / median * 100,
        "rounds": len(latencies), "iterations_timed": state.get("iterations"),
        "build_s": setup["build_s"], "compile_s": setup["compile_s"], "warmup_s": setup["warmup_s"],
        "method": setup["method"], "precision": setup["precision"], "notes": setup.get("notes") or [],
        "peak_memory_mb": finish.get("peak_memory_mb"), "memory_method": finish.get("memory_method"),
        "timing_method": TIMING_METHOD.format(gpu_s=GPU_WARMUP_S, chunk_s=GPU_WARMUP_CHUNK_S,
                                              settle=GPU_WARMUP_SETTLE, max_s=GPU_WARMUP_MAX_S),
        "warmup_settled": setup.get("warmup_settled"),
    }
    if state.get("reused_worker") and fields["memory_method"] and "host RSS" in fields["memory_method"]:
        fields["memory_method"] += ("; worker reused from earlier cells, whose freed memory the framework may "
                                    "reuse uncounted (--fresh-workers for exact figures)")
    if not finish.get("ok"):
        fields["notes"] = fields["notes"] + [f"memory not measured: {finish.get('error')}"]
    try:
        macs = flops.count_macs(cell["model"], cell["input_size"])
        factor = TRAIN_FLOP_FACTOR if cell["mode"] == "train" else 1
        fields["gflops"] = macs / 1e9
        fields["gflops_per_sec"] = 2 * macs * factor * images_per_sec / 1e9
        fields["flop_model"] = ("2 FLOPs per multiply-add" + (", training step = 3x forward" if factor > 1 else ""))
        # Mixed-precision cells are measured against their own framework's 16-bit probe: the frameworks
        # differ in which 16-bit type they use.
        amp = setup["precision"].startswith("amp") and machine.get("amp_peak_gflops_per_sec")
        peak = machine["amp_peak_gflops_per_sec"] if amp else machine_peak
        fields["machine_peak_gflops_per_sec"] = peak
        if peak:
            fields["peak_share"] = fields["gflops_per_sec"] / peak
    except flops.FlopsUnavailable as error:
        fields["notes"] = fields["notes"] + [f"GFLOP/s not computed: {error}"]
    return fields


def load_existing(path: Path) -> list[dict]:
    if not path.exists():
        return []
    try:
        records = json.loads(path.read_text())
    except ValueError as error:
        raise UsageError(f"cannot resume: {path} is not valid JSON ({error})") from None
    if not isinstance(records, list):
        raise UsageError(f"cannot resume: {path} does not hold a list of records")
    return records


def run_bench(*, models: list[str], frameworks: list[str], batch_sizes: list[int], modes: list[str],
              device: str, repeat: int, out: Path, resume: bool = False, retry_errors: bool = False,
              input_size: int | None = None, compile: bool = False, amp: str = "auto", channels_last: str = "auto",
              reference: bool = False, min_round_s: float = 0.5, timeout: float = 1800, plots: bool = True,
              show_progress: bool = True, peak_n: int | None = None, warmup_s: float = 0.2,
              threads: int | None = None, fresh_workers: bool = False) -> tuple[list[dict], dict]:
    """Run the cells not yet done, write results, report and plots; return (records, machine)."""
    from . import report

    cells = plan_cells(models, frameworks, batch_sizes, modes, device=device, input_size=input_size,
                       compile=compile, amp=amp, channels_last=channels_last, reference=reference,
                       min_round_s=min_round_s, warmup_s=warmup_s, threads=threads)
    existing = load_existing(out / "results.json") if resume else []
    done = {cell_key(r) for r in existing if not (retry_errors and r.get("status") == "error")}
    todo = [c for c in cells if cell_key(c) not in done]
    if resume and len(todo) < len(cells):
        print(f"resuming: {len(cells) - len(todo)} of {len(cells)} cell(s) already in {out / 'results.json'}",
              file=sys.stderr)
    bench = Bench(out, device, repeat=repeat, timeout=timeout, show_progress=show_progress, records=existing,
                  peak_n=peak_n, threads=threads, fresh_workers=fresh_workers)
    try:
        if todo:
            machine = bench.probe(sorted({c["framework"] for c in todo}, key=list(zoo.FRAMEWORKS).index))
            if device == "gpu" and not any(m.get("device") not in (None, "cpu") for m in machine.values()):
                reasons = "; ".join(f"{fw}: {m.get('unavailable')}" for fw, m in machine.items())
                raise UsageError(f"--device gpu, but no framework sees a GPU here ({reasons})")
            bench.run(todo)
        bench.save()
    finally:
        bench.close()
    machine_path = out / "machine.json"
    machine = json.loads(machine_path.read_text()) if machine_path.exists() else {}
    report.write_report(out, bench.records, machine, plots=plots)
    return bench.records, machine


def run(args: argparse.Namespace) -> int:
    models = selected_models(args)
    frameworks = resolve_frameworks(args.frameworks)
    batch_sizes = args.batch_size
    modes = split_list(args.modes)
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise UsageError(f"--modes must be among {', '.join(MODES)}; got {args.modes!r}")
    for model in models:
        input_size_for(model, args.input_size)
    out = writable_dir(args.out)
    records, machine = run_bench(
        models=models, frameworks=frameworks, batch_sizes=batch_sizes, modes=list(dict.fromkeys(modes)),
        device=args.device, repeat=args.repeat, out=out, resume=args.resume, retry_errors=args.retry_errors,
        input_size=args.input_size, compile=args.compile, amp=args.amp, channels_last=args.channels_last,
        reference=args.reference, min_round_s=args.min_time, timeout=args.timeout, plots=not args.no_plots,
        threads=args.threads, fresh_workers=args.fresh_workers)
    from . import report

    print(report.console_summary(records, machine))
    print(f"\nresults: {out / 'results.json'}, {out / 'results.csv'}; report: {out / 'report.md'}")
    failed = [r for r in records if r.get("status") == "error"]
    if failed:
        print(f"{len(failed)} cell(s) failed; their errors are in the results and the report", file=sys.stderr)
        return 1
    return 0
