"""The run: each (model, knobs, batch size, mode) group set up in every framework's worker, then timed in
interleaved rounds; workers started on first use and again after one died, the machine's peak probed
once per framework, every finished cell recorded at once. SIGTERM stops it as cleanly as Ctrl-C."""
from __future__ import annotations

import contextlib
import json
import signal
import threading
import time

from zoo.benchtools import PEAK_MAX_REPEAT, PEAK_MIN_REPEAT, PEAK_MIN_S

from ..files import write_json
from ..frameworks import can_build
from ..progress import Progress
from ..tables import fmt_num
from .cells import cell_key, cell_label, knobs_of
from .options import BenchOptions
from .output import save_results
from .stats import summarise
from .workers import Worker, WorkerDied


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


# What a worker's info says about its setting; a machine record taken with another is probed again.
SETTING = ("device", "framework_version", "threads")


class Bench:
    """One run's workers, machine record and records; `records` are those it starts from (--resume)."""

    def __init__(self, options: BenchOptions, *, records: list[dict] | None = None,
                 machine: dict[str, dict] | None = None) -> None:
        self.options = options
        self.cells_in_worker: dict[str, int] = {}
        self.records: list[dict] = list(records or [])
        self.workers: dict[str, Worker] = {}
        # The machine record (machine.json): each framework's setting and peak probe, kept from the
        # folder's first run on --resume; `live` is what this run's workers report.
        self.machine: dict[str, dict] = dict(machine or {})
        self.live: dict[str, dict] = {}
        (options.out / "logs").mkdir(parents=True, exist_ok=True)

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
        options = self.options
        worker = Worker(framework, options.device, options.out / "logs" / f"worker-{key}.log", options.timeout,
                        options.threads)
        self.cells_in_worker[key] = 0
        self.workers[key] = worker
        live = {k: v for k, v in worker.info.items() if k != "ok"}
        self.live[framework] = live
        recorded = self.machine.get(framework)
        if recorded is None or any(recorded.get(k) != live.get(k) for k in SETTING):
            self.machine[framework] = self.probe_peak(worker, live)
            write_json(options.out / "machine.json", self.machine)
        return worker

    def probe_peak(self, worker: Worker, info: dict) -> dict:
        """The framework's entry of the machine record: its setting and its matrix-product peak."""
        info = {k: v for k, v in info.items() if k != "memory_peak_resets"}
        peak = worker.ask("peak", n=self.options.peak_n) if not info.get("unavailable") else {"ok": False}
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
        save_results(self.options.out, self.records)

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
        key = cell_key(record)
        self.records = [r for r in self.records if cell_key(r) != key] + [record]
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
        for round_index in range(self.options.repeat):
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
        with Progress(len(cells), "bench", enabled=self.options.show_progress) as progress:
            for group in groups:
                self.run_group(group, progress)
                if self.options.fresh_workers:
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
