"""`bench`: speed, latency, memory and achieved FLOP/s of every (model, framework, batch size, mode) cell.

Each framework runs in its own worker process (`compare.worker`) the way its experts run it; the parent
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

One module per concern: `options` (BenchOptions, what a run does), `cells` (the plan), `output` (the
folder's lock and files), `workers` (the worker processes, spoken to in JSON lines), `schedule` (the
interleaved rounds), `stats` (a cell's figures from its timings), `cli` (the sub-command and `run_bench`).
"""
from __future__ import annotations

from ..tables import fmt_num
from .cells import cell_key, cell_label, knobs_of, plan_cells
from .cli import INTERRUPTED_STATUS, TERMINATED_STATUS, add_parser, run, run_bench
from .options import DEVICES, MODES, BenchOptions
from .output import CSV_COLUMNS, OutputLock, load_existing, previous_machine, previous_results
from .schedule import Bench, Terminated, group_cells, round_order, sigterm_stops_cleanly
from .stats import TIMING_METHOD, TRAIN_FLOP_FACTOR, summarise
from .workers import Worker, WorkerDied

__all__ = [
    "CSV_COLUMNS", "DEVICES", "INTERRUPTED_STATUS", "MODES", "TERMINATED_STATUS", "TIMING_METHOD", "TRAIN_FLOP_FACTOR",
    "Bench", "BenchOptions", "OutputLock", "Terminated", "Worker", "WorkerDied",
    "add_parser", "cell_key", "cell_label", "fmt_num", "group_cells", "knobs_of", "load_existing", "plan_cells",
    "previous_machine", "previous_results", "round_order", "run", "run_bench", "sigterm_stops_cleanly", "summarise",
]
