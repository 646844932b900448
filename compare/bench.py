"""`bench`: speed, latency, memory and achieved FLOP/s of every (model, framework, batch size, mode) cell.

Each framework runs in its own worker process (`worker.py`) the way its experts run it; the parent
only schedules. For one (model, batch size, mode) the timed rounds of every framework, and with
--reference of each framework's own implementation too (in a worker process of its own), are
interleaved (A, B, A-reference, B-reference, then the same in reverse order, ...), so slow
drifts of the machine (clock ramps, thermal throttling) hit all of them alike and show up as spread,
instead of favouring whichever cell happens to be measured second. `--set KEY=V1,V2` makes one cell per
knob combination (e.g. DenseNet's memory_efficient off and on), recorded with its `knobs`.

Nothing measured is lost: results are written atomically after every cell, JSON first, then CSV, and
the report and plots are made from the JSON at the end. One bench at a time writes into a folder (an OS
lock on DIR/.bench.lock, released by the kernel however its holder ends); a folder that already holds
results is added to (--resume, which keeps the first run's machine record as the yardstick of every
share) or replaced (--overwrite), never silently emptied. SIGTERM stops a run as Ctrl-C does: the
workers are stopped, the cells measured so far stay, the report is written, and the exit status is 143
(130 for Ctrl-C). Workers end by themselves within a second of the bench's death, even a SIGKILL.

Peak memory per cell is exact in training: where a framework cannot reset its peak statistics (on the
CPU the peak is the worker process's RSS high-water mark), each training cell gets a fresh worker.
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import selectors
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Sequence

import zoo

from . import flops
from .common import (UsageError, add_batch_size_option, add_frameworks_option, add_input_size_option,
                     add_models_arguments, add_out_option, add_overwrite_option, add_set_option, can_build, check_knobs, fmt_num,
                     input_size_for, knob_label, knob_variants, positive_float, positive_int, resolve_frameworks,
                     selected_models, split_list, writable_dir, write_csv, write_json)
from zoo.benchtools import PEAK_MAX_REPEAT, PEAK_MIN_REPEAT, PEAK_MIN_S, datasheet_peak

from .progress import Progress
from .worker import GPU_WARMUP_CHUNK_S, GPU_WARMUP_MAX_S, GPU_WARMUP_S, GPU_WARMUP_SETTLE, PARENT_ENV

MODES = ("infer", "train")
DEVICES = ("auto", "cpu", "gpu")
# A training step is forward + backward, the backward about twice the forward's multiply-adds.
TRAIN_FLOP_FACTOR = 3
CSV_COLUMNS = (
    "model", "knobs", "framework", "implementation", "mode", "batch_size", "input_size", "device", "status",
    "images_per_sec", "latency_ms", "latency_p25_ms", "latency_p75_ms", "latency_min_ms", "latency_max_ms",
    "compile_s", "warmup_s", "peak_memory_mb", "gflops", "gflops_per_sec", "framework_peak_gflops_per_sec",
    "machine_peak_gflops_per_sec", "peak_share", "datasheet_peak_gflops_per_sec", "datasheet_share", "precision", "method",
    "memory_exact", "error",
)
# Exit statuses of an interrupted run, the shell's 128 + signal number.
INTERRUPTED_STATUS, TERMINATED_STATUS = 130, 143
LOCK_NAME = ".bench.lock"


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


# ---------------------------------------------------------------- the plan

def knobs_of(record: dict) -> dict:
    """The family knobs of a cell (its `overrides`) or of a record (its `knobs`); {} for the canonical
    configuration, and for results written before knobs were recorded."""
    return record.get("knobs", record.get("overrides")) or {}


def cell_key(record: dict) -> tuple:
    # JSON, not repr: a knob's tuple comes back from results.json as a list, and must be the same cell.
    return (record["model"], record["framework"], record.get("implementation", "zoo"), record["mode"],
            int(record["batch_size"]), int(record["input_size"]), record.get("device_requested", "auto"),
            bool(record.get("compile", False)), record.get("amp", "auto"), record.get("threads_requested"),
            json.dumps(knobs_of(record), sort_keys=True))


def cell_label(cell: dict) -> str:
    """'densenet121 [memory_efficient=True] torch train b8 (reference)' for progress lines."""
    knobs = knob_label(knobs_of(cell))
    label = f"{cell['model']}{f' [{knobs}]' if knobs else ''} {cell['framework']} {cell['mode']} b{cell['batch_size']}"
    return label + (" (reference)" if cell["implementation"] == "reference" else "")


def plan_cells(models: list[str], frameworks: list[str], batch_sizes: list[int], modes: list[str], *,
               device: str = "auto", input_size: int | None = None, compile: bool = False, amp: str = "auto",
               channels_last: str = "auto", reference: bool = False, min_round_s: float = 0.5,
               warmup_s: float = 0.2, threads: int | None = None,
               variants: Sequence[dict] | None = None) -> list[dict]:
    """Every cell, grouped so that the frameworks of one (model, knobs, batch size, mode) are adjacent.

    `variants` are the knob combinations (override dicts) to build each model with, default the canonical
    configuration only. With `reference`, each framework's backend is imported here to look up its own
    implementations; those have none of the zoo's knobs, so they are timed once, beside the first variant."""
    cells = []
    variants = [dict(v) for v in variants] if variants else [{}]
    for model in models:
        spec = zoo.get_spec(model)
        # A knob may change the size the model is built for (LeNet's image_size); references have no knobs.
        sizes = [input_size_for(model, input_size, overrides) for overrides in variants]
        for batch in batch_sizes:
            for mode in modes:
                for index, overrides in enumerate(variants):
                    implementations = ["zoo", "reference"] if reference and index == 0 else ["zoo"]
                    for implementation, framework in itertools.product(implementations, frameworks):
                        size = sizes[index] if implementation == "zoo" else input_size_for(model, input_size)
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
                            "overrides": overrides if implementation == "zoo" else {},
                            "mode": mode,
                            "batch_size": batch, "input_size": size, "num_classes": spec.num_classes,
                            "device_requested": device, "compile": compile, "amp": amp,
                            "channels_last": channels_last, "min_round_s": min_round_s, "warmup_s": warmup_s,
                            "threads_requested": threads,
                        })
    return cells


# ---------------------------------------------------------------- the output folder

class OutputLock:
    """One bench at a time in an output folder: an exclusive OS lock on DIR/.bench.lock for the whole run.

    The kernel drops the lock when its holder's process ends, however it ends (a crash, SIGKILL, the
    machine rebooting), so no stale lock is ever left to clean up. The file also keeps the holder's
    details (pid, host, start time, command line), which another run names when it is refused."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME
        self.fd: int | None = None

    def __enter__(self) -> OutputLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock_file(fd)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            raise UsageError(f"--out {self.path.parent}: another bench is writing there ({holder}); wait for it "
                             f"to end or give another --out") from None
        self.fd = fd
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "command": shlex.join(getattr(sys, "orig_argv", sys.argv))}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)  # while still held, so nobody reads a former holder's details
            _unlock_file(self.fd)
            os.close(self.fd)
            self.fd = None


if os.name == "nt":
    import msvcrt

    # Windows locks are mandatory over the bytes they cover: lock one byte far past the holder's details.
    _LOCK_OFFSET = 1 << 30

    def _lock_file(fd: int) -> None:
        os.lseek(fd, _LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock_file(fd: int) -> None:
        os.lseek(fd, _LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _lock_file(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock_file(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _read_holder(fd: int) -> str:
    """The lock holder in words. It writes its details just after taking the lock: wait a moment for them."""
    deadline = time.monotonic() + 1.0
    while True:
        try:
            holder = json.loads(os.pread(fd, 64 * 1024, 0))
            return (f"pid {holder['pid']} on {holder['host']}, started {holder['started']}, "
                    f"command: {holder['command']}")
        except (ValueError, KeyError, TypeError, OSError):
            if time.monotonic() > deadline:
                return "its pid, host and command were not written to the lock file"
            time.sleep(0.05)


def previous_results(out: Path, *, resume: bool, overwrite: bool) -> list[dict]:
    """The records a run starts from: those in DIR/results.json with --resume, none otherwise; a folder
    that holds results is refused unless --resume or --overwrite says what to do with them."""
    path = out / "results.json"
    if resume:
        return load_existing(path)
    if not path.exists():
        return []
    try:
        count = len(json.loads(path.read_text()))
        held = f"{count} benchmark cell(s)"
    except (ValueError, TypeError, OSError) as error:
        count, held = 1, f"results that cannot be read ({error})"
    if not count:
        return []
    if not overwrite:
        raise UsageError(f"--out {out} already holds {held} in results.json; give --resume to keep them and add "
                         f"the missing cells, or --overwrite to replace them")
    print(f"overwriting: {held} in {path} replaced by this run", file=sys.stderr)
    return []


def previous_machine(out: Path) -> dict[str, dict]:
    """The machine record of the folder's first run, for --resume: every framework whose peak was probed.

    A resumed run keeps it, so that old and new cells are shares of one yardstick (a framework whose
    worker reports another version, device or thread count than recorded is probed again)."""
    try:
        machine = json.loads((out / "machine.json").read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(machine, dict):
        return {}
    return {fw: info for fw, info in machine.items() if isinstance(info, dict) and info.get("peak_gflops_per_sec")}


class Terminated(KeyboardInterrupt):
    """SIGTERM: the same clean stop as Ctrl-C (the cells so far kept, workers stopped, report written)."""


@contextlib.contextmanager
def sigterm_stops_cleanly():
    """Within the block, SIGTERM raises Terminated in the main thread (where Python runs signal handlers)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return

    def handler(signum, frame):
        # One clean stop: a second SIGTERM must not cut the clean-up short (SIGKILL still does).
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---------------------------------------------------------------- workers

class WorkerDied(RuntimeError):
    pass


class Worker:
    """A framework's worker process, spoken to in JSON lines."""

    def __init__(self, framework: str, device: str, log_path: Path, timeout: float, threads: int | None = None) -> None:
        self.framework, self.device, self.timeout = framework, device, timeout
        self.log = open(log_path, "a", buffering=1)
        self.log.write(f"---- {time.strftime('%Y-%m-%dT%H:%M:%S%z')}: {framework} worker started\n")
        package_root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env[PARENT_ENV] = str(os.getpid())  # the worker ends itself when this process is gone
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
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        self.selector.close()
        self.log.close()


# ---------------------------------------------------------------- the run

# What a worker's info says about its setting; a machine record taken with another is probed again.
SETTING = ("device", "framework_version", "threads")


class Bench:
    def __init__(self, out: Path, device: str, *, repeat: int, timeout: float = 1800, show_progress: bool = True,
                 records: list[dict] | None = None, peak_n: int | None = None, threads: int | None = None,
                 fresh_workers: bool = False, machine: dict[str, dict] | None = None) -> None:
        self.peak_n, self.threads, self.fresh_workers = peak_n, threads, fresh_workers
        self.cells_in_worker: dict[str, int] = {}
        self.out, self.device, self.repeat, self.timeout = out, device, repeat, timeout
        self.show_progress = show_progress
        self.records: list[dict] = list(records or [])
        self.workers: dict[str, Worker] = {}
        # The machine record (machine.json): each framework's setting and peak probe, kept from the
        # folder's first run on --resume; `live` is what this run's workers report.
        self.machine: dict[str, dict] = dict(machine or {})
        self.live: dict[str, dict] = {}
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
        live = {k: v for k, v in worker.info.items() if k != "ok"}
        self.live[framework] = live
        recorded = self.machine.get(framework)
        if recorded is None or any(recorded.get(k) != live.get(k) for k in SETTING):
            self.machine[framework] = self.probe_peak(worker, live)
            write_json(self.out / "machine.json", self.machine)
        return worker

    def probe_peak(self, worker: Worker, info: dict) -> dict:
        """The framework's entry of the machine record: its setting and its matrix-product peak."""
        info = {k: v for k, v in info.items() if k != "memory_peak_resets"}
        peak = worker.ask("peak", n=self.peak_n) if not info.get("unavailable") else {"ok": False}
        info["peak_gflops_per_sec"] = peak.get("gflops_per_sec")
        if peak.get("amp_gflops_per_sec"):
            info[f"peak_{peak['amp_dtype']}_gflops_per_sec"] = peak["amp_gflops_per_sec"]
            info["amp_peak_gflops_per_sec"] = peak["amp_gflops_per_sec"]
            info["amp_dtype"] = peak["amp_dtype"]
        info["peak_method"] = (f"fastest of {PEAK_MIN_REPEAT}-{PEAK_MAX_REPEAT} float32 {peak.get('n')}x{peak.get('n')} "
                               f"matrix products (at least {PEAK_MIN_S:g} s in all), 2n^3/t")
        info["probed_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        return info

    def machine_peak(self, device: str | None) -> float | None:
        """The machine's measured float32 peak on `device`: the best of the frameworks' probes there.

        Each framework's probe runs its own BLAS, and one may reach far less of the hardware than the
        framework's convolutions do; the best probe is the truest lower bound on what the machine can do,
        and one yardstick makes the shares of different frameworks comparable."""
        return self.yardstick(device)[0]

    def yardstick(self, device: str | None) -> tuple[float | None, str | None]:
        """(the machine's float32 peak on `device`, which probe it is: framework and time), as recorded in
        the cells so that a share always says what it is a share of."""
        probes = [(m["peak_gflops_per_sec"], fw) for fw, m in self.machine.items()
                  if m.get("device") == device and m.get("peak_gflops_per_sec")]
        if not probes:
            return None, None
        peak, framework = max(probes)
        return peak, f"{framework} float32 probe of {self.machine[framework].get('probed_at', 'an earlier run')}"

    def stop_worker(self, key: str) -> None:
        worker = self.workers.pop(key, None)
        if worker is not None:
            worker.close()

    def close(self, *, kill: bool = False) -> None:
        """Stop every worker: politely, or at once (`kill`) when the run is interrupted."""
        for worker in self.workers.values():
            if kill:
                worker.kill()
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
        info = {**self.machine.get(cell["framework"], {}), **self.live.get(cell["framework"], {})}
        peak, source = self.yardstick(info.get("device"))
        record = {key: cell.get(key) for key in ("model", "family", "framework", "implementation", "reference_name",
                                                 "reference_variant", "mode", "batch_size", "input_size",
                                                 "device_requested", "compile", "amp")}
        # As results.json will give it back (tuples as lists), so that this run's records and resumed ones agree.
        record["knobs"] = json.loads(json.dumps(knobs_of(cell)))
        record["threads_requested"] = cell.get("threads_requested")
        record.update({
            "device": info.get("device"), "device_note": info.get("device_note"),
            "framework_version": info.get("framework_version"), "threads": info.get("threads"),
            "status": "ok", "error": None, "images_per_sec": None, "latency_ms": None, "peak_memory_mb": None,
            "gflops": None, "gflops_per_sec": None,
            "framework_peak_gflops_per_sec": self.machine.get(cell["framework"], {}).get("peak_gflops_per_sec"),
            "machine_peak_gflops_per_sec": peak, "machine_peak_source": source,
            "peak_share": None, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        })
        record.update(fields)
        self.records = [r for r in self.records if cell_key(r) != cell_key(record)] + [record]
        self.save()
        return record

    def fail(self, cell: dict, error: str, status: str = "error") -> dict:
        return self.record(cell, status=status, error=error)

    def needs_own_worker(self, cell: dict, key: str) -> bool:
        """Whether the cell must not run in its framework's current worker: a training cell, whose peak memory
        would otherwise include what earlier cells left, where the framework cannot reset its peak."""
        worker = self.workers.get(key)
        return (cell["mode"] == "train" and worker is not None and worker.alive()
                and self.cells_in_worker.get(key, 0) > 0 and not worker.info.get("memory_peak_resets"))

    def run_group(self, group: list[dict], progress: Progress) -> None:
        """One (model, knobs, batch size, mode) across frameworks and implementations, timed rounds interleaved.

        Every cell of the group is set up (built, first call, warm-up) before any is timed; then each
        round times every cell once, in the plan's order on even rounds and the reverse order on odd
        rounds, so that no cell is systematically the first after a pause or the one after another."""
        active: list[tuple[dict, Worker, dict]] = []
        for cell in group:
            label = cell_label(cell)
            progress.describe(label)
            key = self.worker_key(cell["framework"], cell["implementation"])
            buildable = cell["implementation"] != "zoo" or can_build(cell["framework"], cell["model"])
            try:
                info = self.machine.get(cell["framework"], {})
                if info.get("unavailable") and info.get("device") is None:
                    raise WorkerDied(info["unavailable"])
                if buildable and self.needs_own_worker(cell, key):
                    self.stop_worker(key)
                worker = self.worker(cell["framework"], cell["implementation"])
                if worker.info.get("unavailable"):
                    raise WorkerDied(worker.info["unavailable"])
                if not buildable:
                    reply = {"ok": False, "skipped": f"{cell['framework']} has no builder for the "
                                                     f"{cell['family']} family here"}
                else:
                    # Counted before the answer: a setup that fails has still touched the worker's memory.
                    self.cells_in_worker[key] += 1
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
            exact = bool(worker.info.get("memory_peak_resets")) or self.cells_in_worker[key] == 1
            active.append((cell, worker, {"setup": reply, "rounds": [], "memory_exact": exact}))
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
                    progress.step(f"{cell_label(cell)}: FAILED ({reply.get('error')})")
                    continue
                state["rounds"].append(reply["seconds"] / reply["iterations"])
                state["iterations"] = state.get("iterations", 0) + reply["iterations"]
        for cell, worker, state in active:
            try:
                reply = worker.ask("finish")
            except WorkerDied as error:
                reply = {"ok": False, "error": str(error)}
            info = self.machine.get(cell["framework"], {})
            record = self.record(cell, **summarise(cell, state, reply, info, *self.yardstick(info.get("device"))))
            progress.step(f"{cell_label(cell)}: {fmt_num(record['images_per_sec'])} images/s")

    def run(self, cells: list[dict]) -> list[dict]:
        groups = group_cells(cells)
        with Progress(len(cells), "bench", enabled=self.show_progress) as progress:
            for group in groups:
                self.run_group(group, progress)
                if self.fresh_workers:
                    self.close()
        return self.records


def group_cells(cells: list[dict]) -> list[list[dict]]:
    """Adjacent cells of the same (model, knobs, batch size, mode) as one group; the cells of the frameworks'
    own implementations (which have no knobs) join the group they follow."""
    groups: list[list[dict]] = []
    for cell in cells:
        if groups and _same_group(groups[-1][0], cell):
            groups[-1].append(cell)
        else:
            groups.append([cell])
    return groups


def _same_group(first: dict, cell: dict) -> bool:
    if (first["model"], first["batch_size"], first["mode"]) != (cell["model"], cell["batch_size"], cell["mode"]):
        return False
    return cell["implementation"] != "zoo" or knobs_of(cell) == knobs_of(first)


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


def summarise(cell: dict, state: dict, finish: dict, machine: dict, machine_peak: float | None,
              peak_source: str | None = None) -> dict:
    """A finished cell's record fields from its setup reply, round timings and memory reply.

    `machine` is the cell's framework's entry of machine.json, `machine_peak` the device's float32 peak
    and `peak_source` which probe that is."""
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
        # False: the worker had run earlier cells, whose freed memory the framework may reuse uncounted.
        "memory_exact": state.get("memory_exact", True),
        "timing_method": TIMING_METHOD.format(gpu_s=GPU_WARMUP_S, chunk_s=GPU_WARMUP_CHUNK_S,
                                              settle=GPU_WARMUP_SETTLE, max_s=GPU_WARMUP_MAX_S),
        "warmup_settled": setup.get("warmup_settled"),
    }
    if not finish.get("ok"):
        fields["notes"] = fields["notes"] + [f"memory not measured: {finish.get('error')}"]
    try:
        knobs = knobs_of(cell) if cell.get("implementation", "zoo") == "zoo" else {}
        macs = flops.count_macs(cell["model"], cell["input_size"], overrides=knobs or None)
        factor = TRAIN_FLOP_FACTOR if cell["mode"] == "train" else 1
        fields["gflops"] = macs / 1e9
        fields["gflops_per_sec"] = 2 * macs * factor * images_per_sec / 1e9
        fields["flop_model"] = ("2 FLOPs per multiply-add" + (", training step = 3x forward" if factor > 1 else ""))
        # Mixed-precision cells are measured against their own framework's 16-bit probe: the frameworks
        # differ in which 16-bit type they use.
        amp = setup["precision"].startswith("amp") and machine.get("amp_peak_gflops_per_sec")
        if amp:
            peak = machine["amp_peak_gflops_per_sec"]
            peak_source = (f"{cell['framework']} {machine.get('amp_dtype', '16-bit')} probe of "
                           f"{machine.get('probed_at', 'an earlier run')}")
        else:
            peak = machine_peak
        fields["machine_peak_gflops_per_sec"], fields["machine_peak_source"] = peak, peak_source
        if peak:
            fields["peak_share"] = fields["gflops_per_sec"] / peak
        datasheet = datasheet_peak(machine.get("device_note"), setup["precision"])
        if datasheet:
            fields["datasheet_peak_gflops_per_sec"], fields["datasheet_source"] = datasheet
            fields["datasheet_share"] = fields["gflops_per_sec"] / datasheet[0]
    except flops.FlopsUnavailable as error:
        fields["notes"] = fields["notes"] + [f"GFLOP/s not computed: {error}"]
    except Exception as error:  # noqa: BLE001  (the count is an addition to a measurement, not worth losing it)
        fields["notes"] = fields["notes"] + [f"GFLOP/s not computed: {type(error).__name__}: {error}"]
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
              overwrite: bool = False, input_size: int | None = None, compile: bool = False, amp: str = "auto",
              channels_last: str = "auto", reference: bool = False, min_round_s: float = 0.5,
              timeout: float = 1800, plots: bool = True, show_progress: bool = True, peak_n: int | None = None,
              warmup_s: float = 0.2, threads: int | None = None, fresh_workers: bool = False,
              variants: Sequence[dict] | None = None) -> tuple[list[dict], dict]:
    """Run the cells not yet done, write results, report and plots; return (records, machine).

    A folder that already holds results needs `resume` (keep them, run the missing cells) or `overwrite`
    (replace them); another bench writing into `out` at the same time is refused (UsageError). On SIGTERM
    or Ctrl-C (Terminated / KeyboardInterrupt, raised again after the clean-up) the workers are stopped
    and the report is made of the cells measured so far."""
    from . import report

    if resume and overwrite:
        raise UsageError("--resume keeps the cells already in the folder and --overwrite replaces them; give one")
    cells = plan_cells(models, frameworks, batch_sizes, modes, device=device, input_size=input_size,
                       compile=compile, amp=amp, channels_last=channels_last, reference=reference,
                       min_round_s=min_round_s, warmup_s=warmup_s, threads=threads, variants=variants)
    with OutputLock(out), sigterm_stops_cleanly():
        existing = previous_results(out, resume=resume, overwrite=overwrite)
        done = {cell_key(r) for r in existing if not (retry_errors and r.get("status") == "error")}
        todo = [c for c in cells if cell_key(c) not in done]
        if resume and len(todo) < len(cells):
            print(f"resuming: {len(cells) - len(todo)} of {len(cells)} cell(s) already in {out / 'results.json'}",
                  file=sys.stderr)
        bench = Bench(out, device, repeat=repeat, timeout=timeout, show_progress=show_progress, records=existing,
                      peak_n=peak_n, threads=threads, fresh_workers=fresh_workers,
                      machine=previous_machine(out) if resume else None)
        try:
            if todo:
                machine = bench.probe(sorted({c["framework"] for c in todo}, key=list(zoo.FRAMEWORKS).index))
                if device == "gpu" and not any(m.get("device") not in (None, "cpu") for m in machine.values()):
                    reasons = "; ".join(f"{fw}: {m.get('unavailable')}" for fw, m in machine.items())
                    raise UsageError(f"--device gpu, but no framework sees a GPU here ({reasons})")
                bench.run(todo)
            bench.save()
        except KeyboardInterrupt:
            # Every finished cell is already in results.json; stop the workers before anything slower.
            bench.close(kill=True)
            report.write_report(out, bench.records, _read_machine(out), plots=plots)
            raise
        finally:
            bench.close()
        machine = _read_machine(out)
        report.write_report(out, bench.records, machine, plots=plots)
    return bench.records, machine


def _read_machine(out: Path) -> dict:
    path = out / "machine.json"
    return json.loads(path.read_text()) if path.exists() else {}


def run(args: argparse.Namespace) -> int:
    models = selected_models(args)
    frameworks = resolve_frameworks(args.frameworks)
    batch_sizes = args.batch_size
    modes = split_list(args.modes)
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise UsageError(f"--modes must be among {', '.join(MODES)}; got {args.modes!r}")
    variants = knob_variants(args.knobs, sweep=True)
    for model in models:
        for overrides in variants:
            check_knobs(model, overrides)
            input_size_for(model, args.input_size, overrides)
    out = writable_dir(args.out)
    try:
        records, machine = run_bench(
            models=models, frameworks=frameworks, batch_sizes=batch_sizes, modes=list(dict.fromkeys(modes)),
            device=args.device, repeat=args.repeat, out=out, resume=args.resume, retry_errors=args.retry_errors,
            overwrite=args.overwrite, input_size=args.input_size, compile=args.compile, amp=args.amp,
            channels_last=args.channels_last, reference=args.reference, min_round_s=args.min_time,
            timeout=args.timeout, plots=not args.no_plots, threads=args.threads, fresh_workers=args.fresh_workers,
            variants=variants)
    except KeyboardInterrupt as stop:
        why = "terminated" if isinstance(stop, Terminated) else "interrupted"
        print(f"zoo-compare: {why}; the cells measured so far are in {out / 'results.json'} and {out / 'report.md'} "
              f"(--resume runs the rest)", file=sys.stderr)
        return TERMINATED_STATUS if isinstance(stop, Terminated) else INTERRUPTED_STATUS
    from . import report

    print(report.console_summary(records, machine))
    print(f"\nresults: {out / 'results.json'}, {out / 'results.csv'}; report: {out / 'report.md'}")
    failed = [r for r in records if r.get("status") == "error"]
    if failed:
        print(f"{len(failed)} cell(s) failed; their errors are in the results and the report", file=sys.stderr)
        return 1
    return 0
