"""A benchmark worker: one process per framework, driven by `bench` over JSON lines on stdin/stdout.

Running each framework in its own process keeps their thread pools and allocators apart, makes the
process's peak resident memory that framework's own, and turns a crash or an out-of-memory kill into
a recorded failure of one cell instead of the end of the run.

    python -m compare.worker FRAMEWORK DEVICE [THREADS]

Requests: {"op": "setup", "cell": {...}} -> build, compile, warm up, calibrate the iterations per round;
{"op": "round"} -> seconds of one timed round; {"op": "finish"} -> peak memory, the cell's model freed;
{"op": "peak"} -> machine peak FLOP/s; {"op": "exit"}.
"""
from __future__ import annotations

import gc
import json
import math
import os
import statistics
import sys
import time
import traceback

from .common import load_plugins
from .runners import PEAK_N, RUNNERS, Skip, timed_rounds

MAX_ITERATIONS = 100_000


def main(argv: list[str]) -> int:
    framework, device = argv[0], argv[1]
    threads = int(argv[2]) if len(argv) > 2 else 0
    # The protocol owns the real stdout; anything the frameworks print goes to stderr (the worker log).
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def send(message: dict) -> None:
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    try:
        load_plugins()
        runner = RUNNERS[framework](device, {"threads": threads or None})
    except Exception as error:  # noqa: BLE001
        send({"ok": False, "error": f"{type(error).__name__}: {error}"})
        return 1
    send({"ok": True, **runner.info()})
    prepared, iterations = None, 1
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        try:
            if op == "exit":
                break
            if op == "peak":
                n = request.get("n", PEAK_N)
                half = runner.amp_dtype()
                # Mixed-precision cells are measured against the 16-bit peak of the same device.
                send({"ok": True, "gflops_per_sec": runner.machine_peak(n), "n": n, "amp_dtype": half,
                      "amp_gflops_per_sec": runner.machine_peak(n, half) if half else None})
            elif op == "setup":
                prepared = None
                gc.collect()
                prepared, reply = setup(runner, request["cell"])
                iterations = reply["iterations"]
                send(reply)
            elif op == "round":
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


def setup(runner, cell: dict):
    """Build and prepare the cell, time its first call (tracing/compilation), warm up, calibrate."""
    runner.memory_start()
    start = time.perf_counter()
    prepared = runner.prepare(cell)
    build_s = time.perf_counter() - start
    first_call_s = timed_rounds(prepared, 1)
    warm_start, warm_times = time.perf_counter(), []
    while len(warm_times) < cell.get("warmup_iterations", 2) or (
            time.perf_counter() - warm_start < cell.get("warmup_s", 0.2) and len(warm_times) < 50):
        warm_times.append(timed_rounds(prepared, 1))
    warmup_s = time.perf_counter() - warm_start
    # The median warm iteration sets how many iterations make one timed round.
    per_iteration = statistics.median(warm_times)
    iterations = max(1, min(MAX_ITERATIONS, math.ceil(cell.get("min_round_s", 0.5) / max(per_iteration, 1e-9))))
    return prepared, {
        "ok": True, "method": prepared.method, "precision": prepared.precision, "notes": prepared.notes,
        "build_s": build_s, "compile_s": first_call_s,
        "warmup_s": warmup_s, "warmup_iterations": len(warm_times),
        "iterations": iterations,
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
