"""A benchmark worker: one process per framework, driven by `bench` over JSON lines on stdin/stdout.

Running each framework in its own process keeps their thread pools and allocators apart, makes the
process's peak resident memory that framework's own, and turns a crash or an out-of-memory kill into
a recorded failure of one cell instead of the end of the run.

    python -m compare.worker FRAMEWORK DEVICE [THREADS]

A worker never outlives the bench that started it ($ZOO_BENCH_PARENT, its process id): on Linux the
kernel kills it when the parent dies (prctl PR_SET_PDEATHSIG), and everywhere a watchdog thread ends it
once its parent process is gone, even in the middle of a long round. Ctrl-C is the parent's to handle: the
worker ignores SIGINT, and the parent stops it.

Requests: {"op": "setup", "cell": {...}} -> build, compile, warm up, calibrate the iterations per round;
{"op": "round"} -> seconds of one timed round; {"op": "finish"} -> peak memory, the cell's model freed;
{"op": "peak"} -> machine peak FLOP/s; {"op": "exit"}.
"""
from __future__ import annotations

import ctypes
import gc
import json
import math
import os
import signal
import statistics
import sys
import threading
import time
import traceback

import zoo
from zoo.benchtools import PEAK_N, timed_rounds
from zoo.contract import BenchCell, Skip

from .frameworks import load_plugins

MAX_ITERATIONS = 100_000
# GPU warm-up: clocks ramp up, cudnn/cublas pick and cache kernels, the caching allocator fills. Warm up
# for at least GPU_WARMUP_S, in chunks of about GPU_WARMUP_CHUNK_S (pipelined: one sync per chunk), until
# two consecutive chunks agree within GPU_WARMUP_SETTLE, but no longer than GPU_WARMUP_MAX_S.
GPU_WARMUP_S = 1.0
GPU_WARMUP_CHUNK_S = 0.1
GPU_WARMUP_SETTLE = 0.03
GPU_WARMUP_MAX_S = 15.0
# Before each timed round, this share of its iterations runs untimed: another cell (in another process)
# ran in between and left the caches, and on GPU the kernel queue, cold.
PRE_ROUND_SHARE = 0.1
PARENT_ENV = "ZOO_BENCH_PARENT"
# How often the watchdog looks for its parent: the worker is gone well within 2 s of the bench's death.
WATCHDOG_S = 0.2
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _orphaned() -> None:
    # os._exit: a worker whose bench is gone has no one to report to, and a framework's atexit hooks
    # (thread pools joining, caches flushing) could keep it alive.
    os._exit(128 + signal.SIGHUP)


def watch_parent(parent: int) -> None:
    """End this process as soon as `parent` (the bench) dies, however it dies (SIGKILL included)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # died before the line above took effect
        _orphaned()

    def watchdog() -> None:
        # An orphan is adopted by init or a subreaper, so its parent id changes.
        while os.getppid() == parent:
            time.sleep(WATCHDOG_S)
        _orphaned()

    threading.Thread(target=watchdog, name="bench-parent-watchdog", daemon=True).start()


def main(argv: list[str]) -> int:
    framework, device = argv[0], argv[1]
    threads = int(argv[2]) if len(argv) > 2 else 0
    watch_parent(int(os.environ.get(PARENT_ENV) or os.getppid()))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The protocol owns the real stdout; anything the frameworks print goes to stderr (the worker log).
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def send(message: dict) -> None:
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    try:
        load_plugins()
        runner = zoo.backend(framework).bench_runner(device, {"threads": threads or None})
    except Exception as error:  # noqa: BLE001
        send({"ok": False, "error": f"{type(error).__name__}: {error}"})
        return 1
    info = runner.info()
    gpu = info.get("device") not in (None, "cpu")
    # Where the runner does not say, its peak is taken as the process's (the host RSS high-water mark, or
    # an allocator's peak that cannot be reset): the bench then gives each training cell a fresh worker.
    info.setdefault("memory_peak_resets", False)
    send({"ok": True, **info})
    prepared, iterations = None, 1
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        try:
            if op == "exit":
                break
            if op == "peak":
                n = request.get("n") or PEAK_N["gpu" if gpu else "cpu"]
                half = runner.amp_dtype()
                # Mixed-precision cells are measured against the 16-bit peak of the same device.
                send({"ok": True, "gflops_per_sec": runner.machine_peak(n), "n": n, "amp_dtype": half,
                      "amp_gflops_per_sec": runner.machine_peak(n, half) if half else None})
            elif op == "setup":
                prepared = None
                gc.collect()
                prepared, reply = setup(runner, request["cell"], gpu=gpu)
                iterations = reply["iterations"]
                send(reply)
            elif op == "round":
                if prepared is None:
                    raise RuntimeError("no cell set up in this worker")
                timed_rounds(prepared, max(1, math.ceil(iterations * PRE_ROUND_SHARE)))  # untimed
                seconds = timed_rounds(prepared, iterations)
                send({"ok": True, "seconds": seconds, "iterations": iterations})
                # A machine busier than at calibration would stretch rounds far past their target: rescale.
                target = request.get("min_round_s", 0.5)
                if seconds > 2 * target or seconds < target / 2:
                    iterations = max(1, min(MAX_ITERATIONS, math.ceil(iterations * target / max(seconds, 1e-9))))
            elif op == "finish":
                peak, method = runner.memory_peak()
                prepared = None
                gc.collect()
                send({"ok": True, "peak_memory_mb": peak, "memory_method": method})
            else:
                send({"ok": False, "error": f"unknown request {op!r}"})
        except Skip as reason:
            prepared = None
            send({"ok": False, "skipped": str(reason)})
        except BaseException as error:  # noqa: BLE001  (MemoryError, framework errors: the run goes on)
            prepared = None
            gc.collect()
            print(traceback.format_exc(), file=sys.stderr, flush=True)
            message = str(error).strip().splitlines()
            send({"ok": False, "error": f"{type(error).__name__}: {message[0] if message else ''}"[:2000]})
    return 0


def warm_up_cpu(prepared, cell: dict) -> tuple[float, int, bool]:
    """Single synchronised iterations for the requested warm-up time: (seconds per iteration, count, settled)."""
    warm_start, warm_times = time.perf_counter(), []
    while len(warm_times) < cell.get("warmup_iterations", 2) or (
            time.perf_counter() - warm_start < cell.get("warmup_s", 0.2) and len(warm_times) < 50):
        warm_times.append(timed_rounds(prepared, 1))
    # The median warm iteration sets how many iterations make one timed round.
    return statistics.median(warm_times), len(warm_times), True


def warm_up_gpu(prepared, cell: dict) -> tuple[float, int, bool]:
    """Pipelined chunks until the GPU's speed has settled: (seconds per iteration, count, settled)."""
    least = max(cell.get("warmup_s", 0.2), GPU_WARMUP_S)
    warm_start, per_chunk, count, n = time.perf_counter(), [], 0, 1
    while True:
        seconds = timed_rounds(prepared, n)
        count += n
        per_chunk.append(seconds / n)
        elapsed = time.perf_counter() - warm_start
        if len(per_chunk) >= 3 and elapsed >= least:
            last, before = per_chunk[-1], per_chunk[-2]
            if abs(last - before) <= GPU_WARMUP_SETTLE * min(last, before):
                return last, count, True
        if elapsed >= GPU_WARMUP_MAX_S:
            return per_chunk[-1], count, False
        n = max(1, min(MAX_ITERATIONS, math.ceil(GPU_WARMUP_CHUNK_S / max(per_chunk[-1], 1e-9))))


def setup(runner, cell: dict, gpu: bool = False):
    """Build and prepare the cell, time its first call (tracing/compilation, cudnn autotuning), warm up,
    calibrate the iterations of a round: everything untimed by the rounds. `cell` is as the bench sent it
    (`BenchCell.to_json`); the runner gets the BenchCell."""
    runner.memory_start()
    start = time.perf_counter()
    prepared = runner.prepare(BenchCell.from_json(cell))
    build_s = time.perf_counter() - start
    first_call_s = timed_rounds(prepared, 1)
    compile_s = first_call_s
    if prepared.compile_s is not None:  # a framework that compiles ahead of the first call
        build_s -= prepared.compile_s
        compile_s += prepared.compile_s
    warm_start = time.perf_counter()
    per_iteration, warm_count, settled = (warm_up_gpu if gpu else warm_up_cpu)(prepared, cell)
    warmup_s = time.perf_counter() - warm_start
    iterations = max(1, min(MAX_ITERATIONS, math.ceil(cell.get("min_round_s", 0.5) / max(per_iteration, 1e-9))))
    return prepared, {
        "ok": True, "method": prepared.method, "precision": prepared.precision, "notes": prepared.notes,
        "build_s": build_s, "compile_s": compile_s,
        "warmup_s": warmup_s, "warmup_iterations": warm_count, "warmup_settled": settled,
        "iterations": iterations,
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
