"""What every backend's benchmark runner shares, framework-neutral: host memory measurement, the timed
loop and the peak probe's timing rule.

Timing rule everywhere: the clock is read only after the device has finished the work queued before
it (each framework's `Prepared.sync`).
"""
from __future__ import annotations

import ctypes
import gc
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

from .contract import Prepared

# Matrix size of the peak probe per device: about 17 GFLOP on CPU, 1.1 TFLOP on GPU, large enough
# that the product runs at the BLAS's full speed and small enough for a few seconds in all.
PEAK_N = {"cpu": 2048, "gpu": 8192}
PEAK_MIN_REPEAT, PEAK_MAX_REPEAT, PEAK_MIN_S = 5, 50, 1.0


# ---------------------------------------------------------------- host memory

def _status_kb(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _malloc_trim() -> None:
    # Hand freed heap pages back to the OS so that a cell's baseline RSS does not hide its own peak
    # behind memory the previous cell freed but glibc kept.
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class HostMemory:
    """Peak resident memory of this process during a cell: VmHWM after a reset, minus VmRSS at the start."""

    def start(self) -> None:
        gc.collect()
        _malloc_trim()
        self.base = _status_kb("VmRSS")
        self.resettable = False
        try:  # writing 5 to clear_refs resets the high-water mark (Linux >= 4.0)
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
            self.resettable = True
        except OSError:
            pass
        self.hwm_at_start = _status_kb("VmHWM")

    def peak_mb(self) -> float | None:
        hwm = _status_kb("VmHWM")
        if hwm is None or self.base is None:
            return None
        return max(0, hwm - self.base) / 1024

    @property
    def method(self) -> str:
        if self.base is None:
            return "unavailable (no /proc/self/status)"
        if self.resettable:
            return "host RSS high-water mark (VmHWM, reset per cell via /proc/self/clear_refs) minus RSS at cell start"
        return ("host RSS high-water mark since the worker started (VmHWM; clear_refs not permitted) minus RSS at "
                "cell start: may include earlier cells of this worker")


# ---------------------------------------------------------------- timing

def timed_rounds(prepared: Prepared, iterations: int) -> float:
    """Seconds for `iterations` steps, the device synchronised before the clock is read at both ends."""
    prepared.sync(None)
    start = time.perf_counter()
    out = None
    for _ in range(iterations):
        out = prepared.step()
    prepared.sync(out)
    return time.perf_counter() - start


def best_seconds(run: Callable[[], None], sync: Callable[[], None]) -> float:
    """The fastest of repeated timed calls (at least PEAK_MIN_REPEAT and PEAK_MIN_S in all), after an
    untimed one. A peak is a best case: slower calls are the machine's noise, not its capability."""
    run()
    sync()
    times: list[float] = []
    while len(times) < PEAK_MAX_REPEAT and (len(times) < PEAK_MIN_REPEAT or sum(times) < PEAK_MIN_S):
        start = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - start)
    return min(times)


# ---------------------------------------------------------------- references

@dataclass(frozen=True)
class ReferenceCatalogue:
    """A framework's own collection of these architectures, for the bench's reference columns: the name
    of its builder for each zoo model it has, and where that builder makes another variant of the
    architecture than the zoo's model, what differs (the backends' `reference_name`/`reference_variant`)."""

    prefix: str
    builders: Mapping[str, str] = field(default_factory=dict)
    variants: Mapping[str, str] = field(default_factory=dict)

    def name(self, model: str) -> str | None:
        """The dotted name of the reference implementation of `model`, or None where it has none."""
        return f"{self.prefix}.{self.builders[model]}" if model in self.builders else None

    def variant(self, model: str) -> str | None:
        return self.variants.get(model)


# A reference that builds the paper's ResNet v1 where the zoo builds torchvision's v1.5 (the backends'
# `reference_variant`); "{}" takes what else that reference does differently.
RESNET_V1 = ("ResNet v1: the stride in each bottleneck's first 1x1 convolution (about 6% fewer multiply-adds "
             "than the zoo's v1.5){}; zoo.create_model(..., stride_in_1x1=True) builds it")


# ---------------------------------------------------------------- datasheet peaks

# Dense (no 2:4 sparsity) tensor-core TFLOP/s from NVIDIA's datasheets, by the device name the
# frameworks report ("NVIDIA H100 80GB HBM3", "NVIDIA H200"). The probe says what a framework's matrix
# product reaches; the datasheet what the hardware promises: a bench shows its share of both.
DATASHEET_TFLOPS = (
    # (name contains, precision -> dense TFLOP/s, datasheet)
    ("H200", {"bfloat16": 989.4, "float16": 989.4, "float32": 66.9}, "NVIDIA H200 SXM datasheet"),
    ("H100 PCIe", {"bfloat16": 756.5, "float16": 756.5, "float32": 51.2}, "NVIDIA H100 PCIe datasheet"),
    ("H100 NVL", {"bfloat16": 835.5, "float16": 835.5, "float32": 60.0}, "NVIDIA H100 NVL datasheet"),
    ("H100", {"bfloat16": 989.4, "float16": 989.4, "float32": 66.9}, "NVIDIA H100 SXM datasheet"),
    ("A100", {"bfloat16": 312.0, "float16": 312.0, "float32": 19.5}, "NVIDIA A100 datasheet"),
)


def datasheet_peak(device_name: str | None, precision: str) -> tuple[float, str] | None:
    """(GFLOP/s, source) of the datasheet's dense peak of the GPU named `device_name` in `precision`
    ('bfloat16', 'float16', 'float32', or a bench precision such as 'amp bfloat16' / 'fp32'), or None
    for a device or precision the table does not know."""
    if not device_name:
        return None
    dtype = "float32" if precision in ("fp32", "float32") else precision.split()[-1].replace("mixed_", "")
    for key, peaks, source in DATASHEET_TFLOPS:
        if key in device_name and dtype in peaks:
            return peaks[dtype] * 1e3, f"{source}, dense {dtype}"
    return None
