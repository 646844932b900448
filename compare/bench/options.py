"""What a bench run does, as one value: `zoo-compare bench`'s options build it, `run_bench` takes it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

MODES = ("infer", "train")
DEVICES = ("auto", "cpu", "gpu")


@dataclass(frozen=True, kw_only=True)
class BenchOptions:
    """One bench run's options; `zoo-compare bench --help` says what each one does."""

    # The cells: every model (in each knob variant) x framework x batch size x mode.
    models: Sequence[str]
    frameworks: Sequence[str]
    batch_sizes: Sequence[int]
    modes: Sequence[str]
    variants: Sequence[dict] | None = None  # the knob combinations (override dicts); None: the canonical model
    input_size: int | None = None           # None: each model's own
    reference: bool = False                 # also each framework's own implementation, where it has one
    # How each cell is run and timed.
    device: str                             # one of DEVICES
    compile: bool = False
    amp: str = "auto"
    channels_last: str = "auto"
    threads: int | None = None
    repeat: int                             # timed rounds per cell
    min_round_s: float = 0.5
    warmup_s: float = 0.2
    timeout: float = 1800                   # longest wait for one step of a cell before its worker is stopped
    peak_n: int | None = None               # matrix size of the peak probe; None: the worker's default
    fresh_workers: bool = False             # a new worker for every (model, batch size, mode)
    # Where the results go, and what happens to those already there.
    out: Path
    resume: bool = False
    retry_errors: bool = False
    overwrite: bool = False
    plots: bool = True
    show_progress: bool = True
