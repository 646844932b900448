"""A finished cell's figures from its timed rounds: images/s, latency median and quartiles, achieved FLOP/s
and its share of the machine's measured peak and of the datasheet's."""
from __future__ import annotations

import statistics

from zoo.benchtools import datasheet_peak

from .. import flops
from ..worker import GPU_WARMUP_CHUNK_S, GPU_WARMUP_MAX_S, GPU_WARMUP_S, GPU_WARMUP_SETTLE
from .cells import knobs_of

# A training step is forward + backward, the backward about twice the forward's multiply-adds.
TRAIN_FLOP_FACTOR = 3

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
