"""The output folder: one bench at a time writes there (an OS lock), the results already there are resumed
or replaced, never silently lost, and every cell's record is written atomically, JSON first, then CSV."""
from __future__ import annotations

import json
import os
import shlex
import socket
import sys
import time
from pathlib import Path

from ..files import write_csv, write_json
from ..options import UsageError

CSV_COLUMNS = (
    "model", "knobs", "framework", "implementation", "mode", "batch_size", "input_size", "device", "status",
    "images_per_sec", "latency_ms", "latency_p25_ms", "latency_p75_ms", "latency_min_ms", "latency_max_ms",
    "compile_s", "warmup_s", "peak_memory_mb", "gflops", "gflops_per_sec", "framework_peak_gflops_per_sec",
    "machine_peak_gflops_per_sec", "peak_share", "datasheet_peak_gflops_per_sec", "datasheet_share", "precision", "method",
    "memory_exact", "error",
)
LOCK_NAME = ".bench.lock"


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


def read_machine(out: Path) -> dict:
    """DIR/machine.json: every framework's setting and peak probe; {} where the folder has none."""
    path = out / "machine.json"
    return json.loads(path.read_text()) if path.exists() else {}


def save_results(out: Path, records: list[dict]) -> None:
    write_json(out / "results.json", records)
    write_csv(out / "results.csv", records, CSV_COLUMNS)
